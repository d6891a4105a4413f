"""``metrics.jsonl``: one tolerant reader and one writer. A bad line (a cut last line, text, a list, a record without a
valid step, invalid UTF-8, a 5,000-digit step) never stops ``resume``, ``report`` or ``eval``; a resume after a cut
line ends equal to an uninterrupted twin."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import pytest

from latentprior.config import EvalConfig, config_from_dict
from latentprior.evaluation import evaluate_run
from latentprior.reports import write_report
from latentprior.rundir import MetricsWriter, RunDir, read_log, read_metrics
from latentprior.training import train

BAD_LINES = {
    "half a record": b'{"step": 31, "au/lo',
    "text": b"disk full, sorry",
    "a list": b"[1, 2]",
    "null": b"null",
    "no step": b'{"x": 1}',
    "step not a number": b'{"step": "abc", "autoencoder/loss": 1.0}',
    "invalid utf-8": b'{"step": 3, "phase": "\xff\xfe"}',
    "5000-digit step": b'{"step": ' + b"9" * 5000 + b"}",
    "step a boolean": b'{"step": true}',
}


def _cfg(**train_keys):
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        # one thread: the twin trained in this process and the one resumed by the command sum alike
        "train": {"epochs": 1, "prior_epochs": 0.5, "batch_size": 100, "log_every": 1, "checkpoint_every": 5,
                  "progress": False, "threads": 1, **train_keys}})


def _losses(run_dir):
    return [(r["step"], r["phase"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """An uninterrupted run, and one stopped at step 10 (its checkpoint) and not yet resumed."""
    root = tmp_path_factory.mktemp("metrics_log")
    cfg = _cfg()
    train(cfg, root / "full")
    train(cfg, root / "stopped", max_steps=10)
    return cfg, root


def test_reader_keeps_valid_records_and_counts_each_bad_line(tmp_path):
    rd = RunDir(tmp_path)
    rd.metrics.write_bytes(b'{"step": 1, "a": 1}\n' + b"\n".join(BAD_LINES.values()) + b'\n{"step": 2}\n')
    log = read_log(rd)
    assert [r["step"] for r in log.records] == [1, 2]
    assert log.skipped == len(BAD_LINES) and log.skipped_lines == [2, 3, 4, 5, 6]
    assert read_log(RunDir(tmp_path / "absent")).records == []


def test_truncation_keeps_records_up_to_the_step_and_never_parses_the_tail(tmp_path, caplog):
    rd = RunDir(tmp_path)
    rd.metrics.write_bytes(b'{"step": 1}\nnull\n{"step": 2}\n{"step": 3}\nthe tail is never read: \xff\n{"step": 4')
    with caplog.at_level(logging.WARNING, logger="latentprior.rundir.metrics_log"):
        writer = MetricsWriter(rd, resume_step=2)
    writer.write(3, {"x": 1.5})
    writer.close()
    assert rd.metrics.read_bytes() == b'{"step": 1}\n{"step": 2}\n{"step": 3, "x": 1.5}\n'
    assert "skipped 1 line(s)" in caplog.text and "line 2" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_resume_report_and_eval_finish_with_a_bad_line(kind, twin, tmp_path):
    cfg, root = twin
    run = tmp_path / "run"
    shutil.copytree(root / "stopped", run)
    lines = RunDir(run).metrics.read_bytes().splitlines()  # records of steps 1..10; the checkpoint is at 10
    # one bad line among the records resume keeps, and the same as a cut last line
    RunDir(run).metrics.write_bytes(b"\n".join(lines[:5] + [BAD_LINES[kind]] + lines[5:]) + b"\n" + BAD_LINES[kind])
    summary = train(cfg, run)
    assert summary["step"] == summary["total_steps"]
    assert _losses(run) == _losses(root / "full")
    RunDir(run).metrics.write_bytes(RunDir(run).metrics.read_bytes() + BAD_LINES[kind])  # again, for the readers
    report = write_report(run, tmp_path / "report")
    assert report["runs"] == 1 and (tmp_path / "report" / "runs" / "run" / "losses.png").is_file()
    records = evaluate_run(run, EvalConfig(metrics=("nll",), n=20, nll_k=2), progress=False)
    assert records["nll"]["value"] > 0


@pytest.mark.slow
def test_cli_resume_after_a_cut_last_line_equals_the_uncut_twin(twin, tmp_path):
    """What a full disk or a power cut leaves: half a record at the end. ``latentprior resume`` continues (a notice,
    no traceback) and the finished log equals the uninterrupted run's."""
    cfg, root = twin
    run = tmp_path / "run"
    shutil.copytree(root / "stopped", run)
    RunDir(run).metrics.write_bytes(RunDir(run).metrics.read_bytes() + BAD_LINES["half a record"])
    done = subprocess.run([sys.executable, "-m", "latentprior.cli", "resume", str(run)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "skipped 1 line(s)" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["step"] == _losses(root / "full")[-1][0]
    assert _losses(run) == _losses(root / "full")
