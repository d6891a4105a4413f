"""Hostile and damaged configs, ``--set`` overrides, sweep files and checkpoints: a result or one line.

Budget (examples per target, times ``LATENTPRIOR_FUZZ_SCALE`` for a full run; see fuzz_support.py): config
YAML 200, ``--set`` lists 200, sweep files 100, checkpoint run directories 100. A checkpoint whose pickle
would run code is refused without running it (fixed tests at the end).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from fuzz_support import damaged, fuzz, outcome
from hypothesis import given
from hypothesis import strategies as st

from latentprior.config import Config, apply_overrides, config_to_dict, load_config
from latentprior.errors import UserError
from latentprior.rundir.checkpoints import FORMAT, load_checkpoint, save_checkpoint
from latentprior.sweeps.grid import load_sweep

SECTIONS = {k: list(v) for k, v in config_to_dict(Config()).items()}
VALID_CONFIG = yaml.safe_dump(config_to_dict(Config()), sort_keys=False).encode()

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["auto", "vae", "aae", "realnvp", "adversarial", "normal", "gaussian", "bf16", "cpu", "mnist"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=8)
KEYS = st.sampled_from([f"{s}.{k}" for s, keys in SECTIONS.items() for k in keys]) | st.text(max_size=12)
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


VALID_SWEEP = b"""name: s
base: base.yaml
overrides: {train.progress: false}
models:
  vae: {objective.kind: vae, prior.kind: realnvp}
grid:
  objective.beta: [0, 1]
eval: {metrics: [fid], n: 10}
resources: {cpus_per_trial: 1, threads: 1, max_concurrent: 2}
retries: 1
"""
SWEEP_KEYS = st.sampled_from(["name", "base", "overrides", "datasets", "models", "grid", "eval", "resources",
                              "retries"])


@st.composite
def sweep_files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(damaged(VALID_SWEEP, header=120))
    data = draw(st.dictionaries(SWEEP_KEYS | st.text(max_size=5), VALUES | st.dictionaries(KEYS, VALUES, max_size=3),
                                max_size=5))
    return yaml.safe_dump(data).encode()


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(tmp_path_factory):
    """Load a valid sweep once, so the metric registry's first import is not inside a timed example."""
    root = tmp_path_factory.mktemp("warm")
    (root / "base.yaml").write_bytes(VALID_CONFIG)
    (root / "sweep.yaml").write_bytes(VALID_SWEEP)
    with contextlib.suppress(UserError):
        load_sweep(root / "sweep.yaml")


@given(sweep_files())
@fuzz(100)
def test_fuzz_sweep_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base.yaml").write_bytes(VALID_CONFIG)
        path = Path(tmp) / "sweep.yaml"
        path.write_bytes(data)
        outcome(lambda: load_sweep(path))


# -------------------------------------------------------------------------------------------- checkpoints


def _valid_run(root: Path) -> Path:
    run = root / "run"
    save_checkpoint(run, Config(), 5, {"model": {"w": torch.arange(3.0)}, "image_shape": [1, 28, 28]})
    return run


def _payload(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _install(run: Path, data: bytes, *, fix_hash: bool) -> None:
    """Put ``data`` where latest.json points; with ``fix_hash`` the index vouches for it, so the loader must
    survive its content rather than stop at the hash."""
    index_path = run / "checkpoints" / "latest.json"
    index = json.loads(index_path.read_text())
    (run / "checkpoints" / index["file"]).write_bytes(data)
    if fix_hash:
        index.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        index_path.write_text(json.dumps(index))


PAYLOADS = st.one_of(
    VALUES.map(_payload),
    st.dictionaries(st.sampled_from(["format", "config", "step", "model"]), VALUES, max_size=4).map(_payload),
    st.builds(lambda c: _payload({"format": FORMAT, "step": 1, "config": c}), VALUES),
)
INDEXES = st.one_of(
    VALUES.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda f, s: json.dumps({"file": f, "sha256": s, "step": 5}).encode(),
              st.sampled_from(["../../x", "/etc/hostname", "", ".", "step_00000005.pt"]) | VALUES, VALUES),
)


@st.composite
def checkpoint_damage(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    kind = draw(st.sampled_from(["step", "payload", "index"]))
    if kind == "step":
        with tempfile.TemporaryDirectory() as tmp:
            valid = (_valid_run(Path(tmp)) / "checkpoints" / "step_00000005.pt").read_bytes()
        return kind, draw(damaged(valid, header=300)), draw(st.booleans())
    if kind == "payload":
        return kind, draw(PAYLOADS), True
    return kind, draw(INDEXES | damaged(b'{"file": "step_00000005.pt", "sha256": "00", "step": 5}')), False


@given(checkpoint_damage())
@fuzz(100)
def test_fuzz_checkpoint_loader(case):
    kind, data, fix_hash = case
    with tempfile.TemporaryDirectory() as tmp:
        run = _valid_run(Path(tmp))
        if kind == "index":
            (run / "checkpoints" / "latest.json").write_bytes(data)
        else:
            _install(run, data, fix_hash=fix_hash)
        out = outcome(lambda: load_checkpoint(run), max_bytes=256 << 20)
    if out.error is None:
        assert out.value["format"] == FORMAT and isinstance(out.value["config"], Config)


class _Touch:
    """Unpickling this runs ``os.system('touch MARKER')``: the payload a hostile checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_checkpoint_with_code_in_its_pickle_is_refused_and_never_runs_it(tmp_path, container):
    run = _valid_run(tmp_path)
    marker = tmp_path / "pwned"
    obj = {"format": FORMAT, "step": 5, "config": config_to_dict(Config()), "model": _Touch(marker)}
    data = _payload(obj) if container == "torch.save" else pickle.dumps(obj, protocol=2)
    _install(run, data, fix_hash=True)  # the index vouches for it: only weights_only stands in the way
    with pytest.raises(UserError, match="could not be read as a checkpoint") as err:
        load_checkpoint(run)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    shutil.rmtree(run)
