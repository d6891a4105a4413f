"""Training: the loop, checkpoints, metric logs, resume."""

from latentprior.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from latentprior.training.loop import EpochSampler, NonFiniteLossError, RunBudget, load_run, resolve_device, train
from latentprior.training.metrics_log import MetricLogger, read_metrics

__all__ = ["train", "load_run", "resolve_device", "EpochSampler", "RunBudget", "NonFiniteLossError",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "MetricLogger",
           "read_metrics"]
