"""The examples run as a user runs them (a subprocess, from the repository root), at the tiny budget of --tiny."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(args, tmp_path, **env):
    env = {**os.environ, "LATENTPRIOR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_custom_networks(tmp_path):
    out = _run([EXAMPLES / "custom_networks.py", "--out", tmp_path / "run", "--tiny"], tmp_path).stdout
    assert "stopped at step 2 of 5" in out and "resumed to step 5" in out and "reloaded: True" in out
    assert "'fid'" in out and "'nll'" in out
    run = tmp_path / "run"
    for part in ("config.yaml", "metrics.jsonl", "my_samples.png", "samples/samples.png", "eval/fid.json", "tb"):
        assert (run / part).exists(), part


@pytest.mark.slow
def test_own_images(tmp_path):
    done = _run([EXAMPLES / "own_images.py", "--out", tmp_path / "run", "--tiny"], tmp_path)
    assert "test split: 20 images (images:" in done.stdout and "FID" in done.stdout
    assert "skipped 1 of 201 files" in done.stderr and "broken.png" in done.stderr
    assert (tmp_path / "run" / "eval" / "fid.json").is_file()


@pytest.mark.slow
def test_custom_prior_and_its_run_sampled_by_the_cli(tmp_path):
    out = _run([EXAMPLES / "custom_prior.py", "--out", tmp_path / "run", "--tiny"], tmp_path).stdout
    assert "learned Laplace scales b:" in out and "NLL" in out
    path = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
    _run(["-m", "latentprior.cli", "sample", tmp_path / "run", "--out", tmp_path / "s.png"], tmp_path,
         PYTHONPATH=path, LATENTPRIOR_FACTORY_MODULES="custom_prior")
    assert (tmp_path / "s.png").stat().st_size > 0
