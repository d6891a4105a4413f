"""Training: the run and its step, the loop, checkpoints, metric logs, resume.

Names are imported on first use, so ``latentprior.training.checkpoint`` (which loads finished runs) can be
imported without the training loop and its dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["train", "open_run", "Run", "load_run", "resolve_device", "EpochSampler", "RunBudget",
           "NonFiniteLossError", "CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "MetricLogger", "MetricWindow", "read_metrics"]

_HOME = {
    "train": "loop",
    "open_run": "run", "Run": "run", "EpochSampler": "run", "RunBudget": "run",
    "load_run": "checkpoint", "CheckpointError": "checkpoint", "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint", "latest_checkpoint": "checkpoint",
    "resolve_device": "device",
    "NonFiniteLossError": "metrics_log", "MetricLogger": "metrics_log", "MetricWindow": "metrics_log",
    "read_metrics": "metrics_log",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'latentprior.training' has no attribute '{name}'")
    return getattr(importlib.import_module(f"latentprior.training.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
