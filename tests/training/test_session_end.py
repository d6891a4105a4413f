"""The loop's session ends: a run already at its end (or past --max-steps) is left byte for byte as it was, and a
run stopped early gets its previews and reads as partial in reports."""

from __future__ import annotations

import hashlib
from pathlib import Path

from latentprior import cli
from latentprior.config import config_from_dict
from latentprior.reports import collect_runs, write_report
from latentprior.rundir import RunDir, read_progress
from latentprior.training import train


def _cfg(**train_keys):
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 2, "checkpoint_every": 4,
                  "progress": False, **train_keys}})


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> its SHA-256 (and every folder), so any write, removal or addition shows."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_resume_of_a_finished_run_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    summary = train(_cfg(), run)  # 6 steps: the whole budget
    assert summary["step"] == summary["total_steps"] == 6
    before = _snapshot(run)
    assert any(k.startswith("tb/") for k in before) and "samples/samples.png" in before
    capsys.readouterr()
    assert cli.main(["resume", str(run)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{run}: already trained to step 6 of 6, its whole budget; nothing to do, nothing changed"
    assert _snapshot(run) == before


def test_resume_below_the_current_step_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(), run, max_steps=4)
    before = _snapshot(run)
    capsys.readouterr()
    assert cli.main(["resume", str(run), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{run}: already at step 4, at or past --max-steps 2; nothing to do, nothing changed"]
    assert _snapshot(run) == before
    # the Python API says the same in its summary, and keeps the run's training time
    summary = train(_cfg(), run, max_steps=4)
    assert summary["steps_this_session"] == 0 and summary["nothing_to_do"] and summary["train_s_total"] > 0
    assert _snapshot(run) == before


def test_a_run_stopped_early_has_previews_and_reads_as_partial(tmp_path):
    run = tmp_path / "run"
    train(_cfg(), run, max_steps=2)
    rd = RunDir(run)
    assert all(rd.preview(role).is_file() for role in ("samples", "reconstructions", "interpolation"))
    progress = read_progress(run)
    assert (progress.step, progress.total_steps, progress.finished) == (2, 6, False)
    (rec,) = collect_runs(run)
    assert rec.status == "partial (2/6 steps)"
    page = Path(write_report(run, tmp_path / "report")["html"]).read_text()
    assert "partial (2/6 steps)" in page
    train(_cfg(), run)  # resumed to the end of its budget: no longer partial
    assert read_progress(run).finished and collect_runs(run)[0].status == "unknown"  # trained, not evaluated
