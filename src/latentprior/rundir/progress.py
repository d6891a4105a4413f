"""How far a run has trained, read without torch: the step of its latest checkpoint against its budget.

The checkpoint index (``checkpoints/latest.json``) records the step and, since the budget was added to it, the
budget's ``total_steps``; for older runs the budget is worked out from ``config.yaml`` and the metrics log, whose
records give the epoch of each logged step (steps per epoch = step / epoch). Reports use this to show a run stopped
early (``--max-steps``) as ``partial (N/M steps)`` rather than as finished.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from latentprior.rundir.config_file import read_run_config
from latentprior.rundir.layout import RunDir, run_dir_of
from latentprior.rundir.metrics_log import read_metrics

__all__ = ["Progress", "read_checkpoint_index", "read_progress"]


@dataclass(frozen=True)
class Progress:
    """``step`` of the latest checkpoint out of the budget's ``total_steps``."""

    step: int
    total_steps: int

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    def describe(self) -> str:
        return f"{self.step}/{self.total_steps} steps"


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def read_checkpoint_index(run_dir: str | os.PathLike[str] | RunDir) -> dict[str, Any] | None:
    """The parsed ``latest.json`` (no hash is checked: it is only read for its numbers), or None when it is absent
    or not a JSON mapping with an integer step."""
    path = run_dir_of(run_dir).checkpoint_index
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and _count(data.get("step")) is not None else None


def _total_from_log(rd: RunDir) -> int | None:
    """An older run's budget: its config's epochs times the steps per epoch its metrics log shows."""
    cfg = read_run_config(rd)
    train = cfg.get("train") if isinstance(cfg, dict) else None
    if not isinstance(train, dict):
        return None
    per_epoch = None
    for record in read_metrics(rd):
        step, epoch = record.get("step"), record.get("epoch")
        if _count(step) and isinstance(epoch, int | float) and epoch > 0:
            per_epoch = round(step / epoch)
    epochs = [train.get(k, 0) for k in ("epochs", "prior_epochs")]
    if not per_epoch or not all(isinstance(e, int | float) and math.isfinite(e) and e >= 0 for e in epochs):
        return None
    return sum(int(round(e * per_epoch)) for e in epochs)


def read_progress(run_dir: str | os.PathLike[str] | RunDir) -> Progress | None:
    """The run's progress, or None when it has no checkpoint or its budget cannot be told."""
    rd = run_dir_of(run_dir)
    index = read_checkpoint_index(rd)
    if index is None:
        return None
    total = _count(index.get("total_steps"))
    total = total if total is not None else _total_from_log(rd)
    return None if total is None else Progress(index["step"], total)
