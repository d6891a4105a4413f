"""Metrics of a run: windowed means of the per-step losses, the finiteness check, and the JSON Lines log.

A step's metrics stay on the device as detached scalars; :class:`MetricWindow` sums them and reads them back
in one transfer per log step (the only host sync of the loop), averaged over processes in multi-process runs.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from latentprior.atomic import atomic_write_bytes, writing
from latentprior.errors import UserError
from latentprior.training import distributed
from latentprior.training.metrics_file import read_metrics
from latentprior.training.tensorboard import RunBoard

__all__ = ["MetricWindow", "NonFiniteLossError", "MetricLogger", "read_metrics"]  # read_metrics: metrics_file.py


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
        kept = f"{self.run_dir / 'checkpoints'} keeps" if self.run_dir is not None else "the checkpoints keep"
        raise NonFiniteLossError(
            f"non-finite loss of the {' and '.join(bad)} update {where} (phase {phase}); the run stopped and {kept} "
            f"the last good state — lower the learning rate or check the data, then `latentprior resume`"
        )


class MetricLogger:
    """Appends to ``run_dir/metrics.jsonl`` and, through :class:`~latentprior.training.tensorboard.RunBoard`
    (``self.board``), writes the same numbers to ``run_dir/tb``.

    On resume, lines after the resume step are dropped first (an atomic rewrite) so the file reads as one
    uninterrupted run; the TensorBoard events after it are purged the same way.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if self.path.exists():
            lines = [ln for ln in self.path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln)["step"] <= resume_step]
            atomic_write_bytes(self.path, "".join(ln + "\n" for ln in kept).encode())
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a")
        with writing(Path(run_dir) / "tb"):
            self.board = RunBoard(run_dir, resume_step) if tensorboard else None

    def log(self, step: int, values: dict[str, Any]) -> None:
        record = {"step": step, **values}
        with writing(self.path):
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()
        if self.board is not None:
            self.board.scalars(step, values)

    def close(self) -> None:
        """Close the log and the TensorBoard writer (a second call does nothing)."""
        if self._fh.closed:
            return
        self._fh.close()
        if self.board is not None:
            self.board.close()
