"""A run's TensorBoard folder, ``RUN_DIR/tb``: scalars, images, and the config as hparams.

    tb/events.*           losses, ``epoch``, ``images_per_s/<phase>`` (the prior-only phase is ~10x faster
                          than the joint one, so each phase has its own curve), ``lr/<update group>``, and the
                          image previews ``samples``, ``reconstructions`` and ``interpolation``
    tb/hparams/events.*   the resolved config (dotted keys) with the final losses and, once the run has been
                          evaluated, every ``eval/<metric>.json`` value; rewritten whole each time

Event files are append-only logs. A resumed run writes a purge marker at its checkpoint's step + 1, so
TensorBoard drops the events an interrupted or failed attempt wrote after that checkpoint; a run that starts
from scratch removes a stale ``tb/`` left by an attempt that never reached a checkpoint. Either way no step
appears twice and curves do not zig-zag.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from latentprior.atomic import WriteError, writing
from latentprior.config import flatten
from latentprior.rundir import RunDir, read_eval_records, read_metrics, read_run_config, run_dir_of

__all__ = ["RunBoard", "write_hparams", "flat_config", "HPARAMS_DIR"]

HPARAMS_DIR = "hparams"  # inside RUN_DIR/tb: TensorBoard's own layout, written only here


def _writer(logdir: Path, purge_step: int | None = None):
    from torch.utils.tensorboard import SummaryWriter  # imported here: it is slow to import

    _quiet_writer_threads()
    with writing(logdir):
        return SummaryWriter(str(logdir), purge_step=purge_step)


def _quiet_writer_threads() -> None:
    """TensorBoard writes events from a background thread; when that thread fails (a full disk) its exception is
    kept and raised again by the next ``add_*``, ``flush`` or ``close`` in the caller's thread, where
    :func:`~latentprior.atomic.writing` reports it in one line. Python would also print the thread's traceback:
    this hook leaves that thread's OSError to the caller and passes every other thread's error on."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    previous = threading.excepthook
    if getattr(previous, "_latentprior", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (isinstance(args.thread, _AsyncWriterThread) and issubclass(args.exc_type, OSError)):
            previous(args)

    hook._latentprior = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


class RunBoard:
    """The training loop's TensorBoard writer (rank 0 only)."""

    def __init__(self, run_dir: str | Path | RunDir, resume_step: int = 0) -> None:
        logdir = run_dir_of(run_dir).tensorboard
        if resume_step == 0 and logdir.exists():
            shutil.rmtree(logdir)  # an attempt that never checkpointed: its curves would repeat every step
        self._tb = _writer(logdir, purge_step=resume_step + 1 if resume_step else None)
        self._dir = logdir  # named by a write error (a full disk first met by the writer's thread)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        """Every number of ``values``; ``images_per_s`` is tagged with ``values['phase']``."""
        phase = values.get("phase")
        with writing(self._dir):
            for k, v in values.items():
                if _is_number(v):
                    tag = f"{k}/{phase}" if k == "images_per_s" and phase else k
                    self._tb.add_scalar(tag, v, step)

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None:
        """uint8 (H, W, 3) grids, one image tag each."""
        with writing(self._dir):
            for name, grid in grids.items():
                self._tb.add_image(name, grid, step, dataformats="HWC")

    def close(self) -> None:
        with writing(self._dir):
            try:
                self._tb.flush()
            except OSError:
                with contextlib.suppress(OSError):  # after a failed flush, closing fails the same way
                    self._tb.close()
                raise
            self._tb.close()


def flat_config(data: dict[str, Any]) -> dict[str, Any]:
    """Nested config data as ``{"section.key": value}``, values TensorBoard's hparams accept (number, str, bool)."""
    return {k: v if isinstance(v, int | float | str | bool) else json.dumps(v) for k, v in flatten(data).items()}


def _final_metrics(rd: RunDir) -> tuple[dict[str, float], int]:
    """``final/<loss>``: each loss's last logged value (the prior-only phase logs no autoencoder loss, so not
    simply the last record); ``eval/<metric>``: each eval record's value."""
    metrics: dict[str, float] = {}
    step = 0
    for record in read_metrics(rd):
        step = record["step"]
        metrics.update({f"final/{k}": float(v) for k, v in record.items() if k.endswith("/loss") and _is_number(v)})
    for metric, record in read_eval_records(rd).items():
        value = record.get("value")
        if _is_number(value):
            metrics[f"eval/{metric}"] = float(value)
        elif isinstance(value, dict):
            metrics.update({f"eval/{metric}.{k}": float(v) for k, v in value.items() if _is_number(v)})
    return metrics, step


def write_hparams(run_dir: str | Path) -> Path | None:
    """(Re)write ``RUN_DIR/tb/hparams``: the run's config with its final losses and eval metrics.

    Written into a fresh folder that then replaces the old one, so the hparams table never shows a run twice;
    on any failure (a full disk: :class:`~latentprior.atomic.WriteError` naming ``RUN_DIR/tb``; an interruption)
    the fresh folder is removed and the old one kept. Returns the folder, or None when the run has no
    ``config.yaml``.
    """
    from torch.utils.tensorboard.summary import hparams

    rd = run_dir_of(run_dir)
    config = read_run_config(rd, strict=True)
    if config is None:
        return None
    params = flat_config(config)
    metrics, step = _final_metrics(rd)
    final = rd.tensorboard / HPARAMS_DIR
    tmp = final.with_name(f".{HPARAMS_DIR}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with writing(rd.tensorboard):
            writer = _writer(tmp)
            try:
                for summary in hparams(params, metrics):  # experiment, session start and session end
                    writer.file_writer.add_summary(summary)
                for tag, value in metrics.items():
                    writer.add_scalar(tag, value, step)
                writer.flush()  # a full disk shows here (or in close), raised from the writer's thread
            except BaseException:
                with contextlib.suppress(OSError):  # the error in flight is the one to report
                    writer.close()
                raise
            writer.close()
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, WriteError) and e.path != os.fspath(rd.tensorboard):
            raise WriteError(rd.tensorboard, e.reason) from e.__cause__  # not the temporary folder, now gone
        raise
    return final
