"""A full disk met first by TensorBoard's background writer thread, during training and during ``eval``'s hparams:
one ``error:`` line naming ``RUN_DIR/tb`` (exit 2), no thread traceback, no temporary folder left, the checkpoint
intact, and a resume that ends equal to an uninterrupted twin."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from tensorboard.summary.writer import record_writer

from benchmarks.fault_tools import fill, small_fs
from latentprior.atomic import WriteError
from latentprior.cli import main
from latentprior.config import config_from_dict
from latentprior.rundir import RunDir, read_metrics
from latentprior.rundir.checkpoints import latest_checkpoint
from latentprior.training import tensorboard as tb
from latentprior.training import train

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"
CONFIG = ("data: {name: digits}\nnet: {width: 0.0625}\nprior: {kind: realnvp, layers: 2, hidden: 16}\n"
          "model: {latent_dim: 4}\nobjective: {kind: vae, beta: 0.0, lr: 1.0e-3}\n"
          "train: {epochs: 1, prior_epochs: 0.5, batch_size: 100, log_every: 1, checkpoint_every: 4, progress: false, "
          "device: cpu}\n")


def _losses(run):
    return [(r["step"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run)]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb_twin")
    (root / "c.yaml").write_text(CONFIG)
    cfg = config_from_dict(yaml.safe_load(CONFIG))
    train(cfg, root / "full")
    return root / "c.yaml", _losses(root / "full")


def _enospc_after(monkeypatch, calls: int) -> dict:
    """RecordWriter.write (run by TensorBoard's writer thread) raises ENOSPC from its ``calls``-th call on."""
    seen = {"n": 0}
    real = record_writer.RecordWriter.write

    def write(self, data):
        seen["n"] += 1
        if seen["n"] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(record_writer.RecordWriter, "write", write)
    return seen


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no thread traceback either
def test_the_writer_thread_meeting_a_full_disk_stops_training_in_one_line(twin, tmp_path, monkeypatch, capsys):
    config, want = twin
    run = tmp_path / "run"
    seen = _enospc_after(monkeypatch, 60)  # ~10 scalars per logged step: around step 6, after the checkpoint at 4
    assert main(["train", str(config), "--out", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert seen["n"] >= 60
    assert line.startswith(f"error: cannot write {run / 'tb'}: No space left on device;"), line
    assert f"continue from the last checkpoint with `latentprior resume {run}`" in line
    assert not list(run.rglob("*.part"))
    index = latest_checkpoint(run)
    assert index is not None and index["step"] >= 4
    data = (run / "checkpoints" / index["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == index["sha256"]
    monkeypatch.undo()
    assert main(["resume", str(run)]) == 0
    assert _losses(run) == want


def test_a_failure_at_close_is_one_line_too(twin, tmp_path, monkeypatch, capsys):
    """The last events are written by ``close`` (the end of the run): the error surfaces there."""
    config, _ = twin
    run = tmp_path / "run"
    real_close = tb.RunBoard.close

    def close(self):
        _enospc_after(monkeypatch, 1)
        self._tb.add_scalar("x", 1.0, 0)  # queued: the thread fails on it while close flushes
        real_close(self)

    monkeypatch.setattr(tb.RunBoard, "close", close)
    assert main(["train", str(config), "--out", str(run), "--max-steps", "5"]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(f"error: cannot write {run / 'tb'}:")


def _fixture_run(root: Path) -> RunDir:
    shutil.copytree(FIXTURE, root / "run")
    return RunDir(root / "run")


def test_write_hparams_removes_its_temporary_folder_on_any_failure(tmp_path, monkeypatch):
    rd = _fixture_run(tmp_path)
    final = tb.write_hparams(rd.path)
    kept = {p.name: p.read_bytes() for p in final.iterdir()}
    real = tb._writer

    class Full:
        """A writer whose events never reach the disk (as TensorBoard's after its thread met ENOSPC)."""

        def __init__(self, logdir):
            self.inner = real(logdir)
            self.file_writer = self.inner.file_writer

        def add_scalar(self, *a, **k):
            self.inner.add_scalar(*a, **k)

        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.inner.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tb, "_writer", lambda logdir, purge_step=None: Full(logdir))
    with pytest.raises(WriteError, match=rf"^cannot write {rd.tensorboard}: No space left on device"):
        tb.write_hparams(rd.path)
    assert sorted(p.name for p in rd.tensorboard.iterdir()) == ["hparams"]  # no .hparams.<pid> left
    assert {p.name: p.read_bytes() for p in final.iterdir()} == kept  # the old table is untouched

    monkeypatch.setattr(tb, "_writer", lambda logdir, purge_step=None: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        tb.write_hparams(rd.path)
    assert sorted(p.name for p in rd.tensorboard.iterdir()) == ["hparams"]


def _can_mount(tmp_path) -> bool:
    with small_fs(tmp_path / "probe", 1) as (_, method):
        return method == "tmpfs"


@pytest.mark.parametrize("free, old_record", [(0, True), (4096, True), (4096, False)])
def test_eval_on_a_full_disk_with_a_page_free_is_one_line_and_leaves_nothing(free, old_record, tmp_path, capsys):
    """tmpfs counts pages: with one free and an old record, the new record takes its place and the hparams fit;
    without an old record the new one takes the page and the hparams meet the full disk (before: a traceback
    from write_hparams and a tb/.hparams.<pid>/ folder left behind)."""
    if not _can_mount(tmp_path):
        pytest.skip("mounting a small tmpfs needs root")
    with small_fs(tmp_path / "fs", 16) as (fs, _):
        rd = _fixture_run(fs)
        assert main(["eval", str(rd.path), "--metrics", "nll", "--n", "10", "--nll-k", "2"]) == 0
        capsys.readouterr()
        if not old_record:
            rd.eval_record("nll").unlink()
        before = {str(p.relative_to(fs)) for p in fs.rglob("*")}
        fill(fs, free)
        rc = main(["eval", str(rd.path), "--metrics", "nll", "--n", "12", "--nll-k", "2"])
        out = capsys.readouterr()
        if not (free and old_record):
            assert rc == 2
            line = _one_error_line(out.err)
            where = f"{rd.path}" if old_record else f"{rd.tensorboard}: "  # the folder, not its temporary twin
            assert line.startswith(f"error: cannot write {where}") and "No space left on device" in line, line
        left = {str(p.relative_to(fs)) for p in fs.rglob("*")} - before - {"filler", "run/eval/nll.json"}
        if rc == 0:  # the new hparams table replaced the old one
            left = {p for p in left if not p.startswith("run/tb/hparams/")}
        assert not left, left  # no .part file, no tb/.hparams.<pid>/
        record = json.loads(rd.eval_record("nll").read_text())
        assert record["protocol"]["n_ref"] == (10 if rc and old_record else 12)  # old or new, never half
        (fs / "filler").unlink()
