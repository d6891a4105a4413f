"""Training: the run and its step, the loop, metric windows and logs, previews, speed options, multi-process.

Names are imported on first use, so importing the package does not import the loop and its dependencies.
Checkpoints and the rest of the run directory's files belong to :mod:`latentprior.rundir`; a finished run is
loaded with :func:`latentprior.models.load_run`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["train", "open_run", "Run", "resolve_device", "EpochSampler", "RunBudget", "NonFiniteLossError",
           "MetricLogger", "MetricWindow"]

_HOME = {
    "train": "loop",
    "open_run": "run", "Run": "run", "EpochSampler": "run", "RunBudget": "run",
    "resolve_device": "device",
    "NonFiniteLossError": "metrics_log", "MetricLogger": "metrics_log", "MetricWindow": "metrics_log",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'latentprior.training' has no attribute '{name}'")
    return getattr(importlib.import_module(f"latentprior.training.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
