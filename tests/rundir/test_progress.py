"""rundir/progress.py: how far a run has trained, read without torch, for runs old and new."""

from __future__ import annotations

import json

import yaml

from latentprior.rundir import RunDir, read_checkpoint_index, read_progress


def _run(tmp_path, index=None, records=(), train=None):
    rd = RunDir(tmp_path / "run")
    rd.checkpoints.mkdir(parents=True)
    if index is not None:
        rd.checkpoint_index.write_text(index if isinstance(index, str) else json.dumps(index))
    rd.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    rd.config.write_text(yaml.safe_dump({"train": train or {"epochs": 2, "prior_epochs": 0.5}}))
    return rd


def test_progress_from_the_index(tmp_path):
    rd = _run(tmp_path, {"file": "step_00000040.pt", "sha256": "0" * 64, "step": 40, "total_steps": 150})
    p = read_progress(rd)
    assert (p.step, p.total_steps, p.finished, p.describe()) == (40, 150, False, "40/150 steps")


def test_an_older_index_takes_its_budget_from_config_and_log(tmp_path):
    # 60 steps per epoch (step 30 is epoch 0.5): 2 + 0.5 epochs are 150 steps
    rd = _run(tmp_path, {"file": "step_00000060.pt", "sha256": "0" * 64, "step": 60},
              records=[{"step": 30, "epoch": 0.5}, {"step": 60, "epoch": 1.0}])
    p = read_progress(rd)
    assert (p.step, p.total_steps) == (60, 150)


def test_unreadable_or_missing_budget_is_none(tmp_path):
    assert read_progress(_run(tmp_path, "{not json")) is None
    assert read_checkpoint_index(RunDir(tmp_path / "run")) is None
    assert read_progress(_run(tmp_path / "b", {"step": 10}, records=[])) is None  # no epoch to scale by
    assert read_progress(_run(tmp_path / "c", None)) is None
    assert read_progress(_run(tmp_path / "d", {"step": True, "total_steps": 5})) is None


def test_a_run_written_by_0_1_0_reads_as_finished_and_resumes_to_nothing(tmp_path):
    import shutil
    from pathlib import Path

    from latentprior.config import load_config
    from latentprior.training import train

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0", run)
    p = read_progress(run)  # its index has no budget: from its config (2 + 1 epochs) and log (15 steps an epoch)
    assert (p.step, p.total_steps, p.finished) == (45, 45, True)
    summary = train(load_config(RunDir(run).config), run)
    assert summary["nothing_to_do"] == "already trained to step 45 of 45, its whole budget"
