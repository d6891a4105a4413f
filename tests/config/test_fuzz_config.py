"""Fuzzing the config readers: YAML files and --set overrides end in a ConfigError or a valid config, never a
traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from latentprior.config import Config, apply_overrides, load_config
from tests.fuzz_support import KEYS, SECTIONS, VALID_CONFIG, VALUES, damaged, fuzz, outcome

# Text that YAML turns into surprises: unclosed brackets, tags, aliases, special floats, deep nesting.
YAML_TOKENS = st.sampled_from([
    "[", "{a: 1", "!!python/name:os.system", "!!python/object/apply:os.system ['true']", ".nan", "-.inf",
    "1e999", "&a [*a, *a]", "- x", "'", '"\\x"', "? a", "1" * 5000, "[" * 400 + "]" * 400, "~", "0x1F",
    "2001-12-14", "!!binary aGk=", "*nope", "a: b: c", "\t", "%YAML 9.9\n---\nx",
])


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(damaged(VALID_CONFIG, header=200))
    if kind == 1:  # known and unknown sections/keys with values of any type
        data = draw(st.dictionaries(st.sampled_from(list(SECTIONS)) | st.text(max_size=6) | st.integers(),
                                    st.dictionaries(st.sampled_from(sum(SECTIONS.values(), [])) | st.integers(),
                                                    VALUES, max_size=4) | VALUES, max_size=4))
        return yaml.safe_dump(data).encode()
    return draw(YAML_TOKENS).encode()


def _refused_or_config(out) -> None:
    assert out.error is not None or isinstance(out.value, Config)


@given(config_files())
@fuzz(200)
def test_fuzz_config_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.yaml"
        path.write_bytes(data)
        _refused_or_config(outcome(lambda: load_config(path)))


OVERRIDES = st.lists(
    st.text(max_size=20) | st.builds(lambda k, v: f"{k}={v}", KEYS, YAML_TOKENS | st.text(max_size=10)),
    min_size=1, max_size=4,
)


@given(OVERRIDES)
@fuzz(200)
def test_fuzz_set_overrides(items):
    _refused_or_config(outcome(lambda: apply_overrides(Config(), items)))


