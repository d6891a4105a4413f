"""A hand-edited ``sweep.json`` cannot make ``report`` (or a rerun of the sweep) write outside its folders: run
names are checked before they become paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "latentprior.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("name", ["../../../../x", "..", ".", "runs/../../y", "/abs/z"])
def test_a_run_name_that_escapes_is_refused_and_nothing_is_written(name, tmp_path):
    sweep = tmp_path / "deep" / "er" / "sweep"
    shutil.copytree(FIXTURE, sweep / "runs" / "good")
    state = {"format": "latentprior-sweep/1", "runs": {
        "good": {"status": "done", "labels": {"model": "m"}},
        name: {"status": "done", "labels": {"model": "evil"}, "run_dir": "runs/good"}}}
    (sweep / "sweep.json").write_text(json.dumps(state))
    before = _tree(tmp_path)
    for args in (["report", sweep], ["report", sweep, "--out", sweep / "report"]):
        done = _cli(*args, cwd=sweep)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "run name" in lines[0], done.stderr
    assert _tree(tmp_path) == before
    assert not any(os.path.exists(p) for p in ("/x", "/abs/z"))


def test_the_sweep_refuses_a_state_file_with_an_escaping_run_name(tmp_path):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("name: s\nbase: {data: {name: digits}, net: {width: 0.0625}, prior: {kind: normal},\n"
                          "       objective: {kind: vae, beta: 1.0}, train: {epochs: 0.1}}\n"
                          "grid: {train.seed: [0]}\neval: {metrics: [nll], n: 10}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"runs": {"../../evil": {"status": "pending"}}}))
    before = _tree(tmp_path)
    done = _cli("sweep", sweep_file, "--out", out, "--local", "--no-progress")
    assert done.returncode == 2 and "run name '../../evil'" in done.stderr, done.stderr
    assert _tree(tmp_path) == before
