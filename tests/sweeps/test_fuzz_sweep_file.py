"""Fuzzing sweep files: a ConfigError or a valid sweep, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from latentprior.sweeps.grid import load_sweep
from tests.fuzz_support import KEYS, VALID_CONFIG, VALUES, damaged, fuzz, outcome

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


@given(sweep_files())
@fuzz(100)
def test_fuzz_sweep_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base.yaml").write_bytes(VALID_CONFIG)
        path = Path(tmp) / "sweep.yaml"
        path.write_bytes(data)
        outcome(lambda: load_sweep(path))


