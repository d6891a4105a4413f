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

from latentprior.atomic import WriteError
from latentprior.errors import UserError
from latentprior.rundir import MetricsWriter, RunDir
from latentprior.training import distributed
from latentprior.training.loggers import open_loggers

__all__ = ["MetricWindow", "NonFiniteLossError", "MetricLogger", "stop_advice", "LR_KEYS"]


class NonFiniteLossError(FloatingPointError, UserError):
    """A loss became NaN or inf; the last checkpoint on disk is the last good state."""


# the config key of each update group's learning rate (objectives/base.py builds one Adam per group)
LR_KEYS = {"autoencoder": "objective.lr", "prior": "objective.prior_lr", "discriminator": "objective.disc_lr"}


def stop_advice(run_dir: Path | None, groups: list[str], lrs: dict[str, float]) -> str:
    """What to do after a non-finite loss or weight in the updates ``groups`` (``lrs``: each group's learning
    rate now): continue from the last checkpoint with a lower rate, or, before the first checkpoint, start again.
    Every command it names exists and does what it says."""
    keys = [(LR_KEYS[g], lrs[g]) for g in groups if g in LR_KEYS and g in lrs]
    sets = " ".join(f"--set {k}={v / 10:.3g}" for k, v in keys)  # a diverging rate is rarely just 2x too high
    now = ", ".join(f"{k} is {v:g}" for k, v in keys)
    if run_dir is None or not sets:
        return f"lower the learning rate ({now or 'objective.lr'}) or check the data"
    from latentprior.rundir.checkpoints import latest_checkpoint

    index = latest_checkpoint(run_dir)
    if index is not None:
        return (f"the run stopped and {RunDir(run_dir).checkpoints} keeps the last good state (step {index['step']}); "
                f"lower the learning rate ({now}) and continue: `latentprior resume {run_dir} {sets}`, or check "
                "the data")
    return (f"the run stopped before its first checkpoint, so there is nothing to resume; start it again with a "
            f"lower learning rate ({now}): `latentprior train CONFIG --out {run_dir} {sets}` (the same folder is "
            "reused), or check the data")


class MetricWindow:
    """Sums of every metric over the steps since the last log, and the images those steps saw.

    ``checked`` is the last step at which every loss was seen finite: a non-finite loss found at ``step``
    happened in the steps after it (exactly at ``step`` when the check runs every step).
    """

    def __init__(self, ctx: distributed.DistContext, run_dir: Path | None, step: int,
                 lrs: dict[str, float] | None = None) -> None:
        self.ctx, self.run_dir, self.checked = ctx, run_dir, step
        self.lrs = dict(lrs or {})  # each update group's learning rate, for the advice of a NaN stop
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
        raise NonFiniteLossError(f"non-finite loss of the {' and '.join(bad)} update {where} (phase {phase}); "
                                 + stop_advice(self.run_dir, bad, self.lrs))


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

    def close(self, quiet: bool = False) -> None:
        """Close the log and every logger (a second call does nothing). ``quiet``: while another error is on its
        way out, a write error of the closing (the same full disk) is not raised over it."""
        if self._log.closed:
            return
        self._log.close()
        for logger in self.loggers:
            try:
                logger.close()
            except WriteError:
                if not quiet:
                    raise
