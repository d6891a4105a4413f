"""Metrics of a run: windowed means of the per-step losses, the finiteness check, and the JSON Lines log.

A step's metrics stay on the device as detached scalars; :class:`MetricWindow` sums them and reads them back
in one transfer per log step (the only host sync of the loop), averaged over processes in multi-process runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from latentprior.errors import UserError
from latentprior.rundir import MetricsWriter, RunDir
from latentprior.training import distributed
from latentprior.training.loggers import open_loggers

__all__ = ["MetricWindow", "NonFiniteLossError", "MetricLogger"]


class NonFiniteLossError(FloatingPointError, UserError):
    """A loss became NaN or inf; the last checkpoint on disk is the last good state."""


class MetricWindow:
    """Sums of every metric over the steps since the last log, and the images those steps saw.

    ``checked`` is the last step at which every loss was seen finite: a non-finite loss found at ``step``
    happened in the steps after it (exactly at ``step`` when the check runs every step).
    """

    def __init__(self, ctx: distributed.DistContext, run_dir: Path | None, step: int) -> None:
        self.ctx, self.run_dir, self.checked = ctx, run_dir, step
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.images, self.t0 = 0, 0, time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor], images: int) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.images += images

    def check(self, step: int, phase: str) -> None:
        """Raise :class:`NonFiniteLossError` if a loss summed since the last log is NaN or inf (one host sync;
        in multi-process runs a NaN on any process is seen by all)."""
        self._raise_if_nonfinite(self._means([k for k in self.sums if k.endswith("/loss")]), step, phase)
        self.checked = step

    def means(self, step: int, phase: str) -> tuple[dict[str, float], float]:
        """Every metric's mean over the window, checked finite, and the window's images/s; starts a new window."""
        out = self._means(list(self.sums))
        self._raise_if_nonfinite(out, step, phase)
        images_per_s = self.images / max(time.perf_counter() - self.t0, 1e-9)
        self.checked = step
        self.sums, self.count, self.images, self.t0 = {}, 0, 0, time.perf_counter()
        return out, images_per_s

    def _means(self, keys: list[str]) -> dict[str, float]:
        if not keys:  # a step without updates (nothing to train in this phase)
            return {}
        values = torch.stack([self.sums[k].float() for k in keys]) / self.count
        if self.ctx.enabled:
            values = distributed.all_reduce_mean(values)  # every shard's metrics: the global batch's
        return dict(zip(keys, values.tolist(), strict=True))

    def _raise_if_nonfinite(self, values: dict[str, float], step: int, phase: str) -> None:
        bad = [k.removesuffix("/loss") for k, v in values.items() if k.endswith("/loss") and not math.isfinite(v)]
        if not bad:
            return
        where = f"at step {step}" if step == self.checked + 1 else f"in steps {self.checked + 1}..{step}"
        kept = f"{RunDir(self.run_dir).checkpoints} keeps" if self.run_dir is not None else "the last checkpoint keeps"
        raise NonFiniteLossError(
            f"non-finite loss of the {' and '.join(bad)} update {where} (phase {phase}); the run stopped and {kept} "
            f"the last good state — lower the learning rate or check the data, then `latentprior resume`"
        )


class MetricLogger:
    """Appends to ``RUN_DIR/metrics.jsonl`` (through :class:`~latentprior.rundir.MetricsWriter`) and gives the same
    numbers, and the previews, to each logger of ``train.loggers`` (``self.loggers``, training/loggers.py:
    TensorBoard in ``RUN_DIR/tb`` by default, MLflow, W&B).

    On resume, records after the resume step are dropped first (unparsed; a malformed line before it is dropped
    with a logged notice) so the file reads as one uninterrupted run; the TensorBoard events after it are purged
    the same way.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0, loggers: Iterable[str] = ("tensorboard",)) -> None:
        rd = RunDir(run_dir)
        self._log = MetricsWriter(rd, resume_step)
        self.loggers = open_loggers(loggers, rd, resume_step)

    def log(self, step: int, values: dict[str, Any]) -> None:
        self._log.write(step, values)
        for logger in self.loggers:
            logger.scalars(step, values)

    def images(self, step: int, grids: dict[str, Any]) -> None:
        """Preview grids (uint8 (H, W, 3)) to every logger."""
        for logger in self.loggers:
            logger.images(step, grids)

    def close(self) -> None:
        """Close the log and every logger (a second call does nothing)."""
        if self._log.closed:
            return
        self._log.close()
        for logger in self.loggers:
            logger.close()
