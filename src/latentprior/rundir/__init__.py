"""The run directory and the sweep directory: the one package that names, reads and writes their files.

    layout.py          the names (RunDir, SweepDir) and the check that a name read from a file stays inside its root
    config_file.py     config.yaml (safe YAML) and the history of keys changed on resume
    metrics_log.py     metrics.jsonl: the tolerant reader and the appending writer
    eval_records.py    eval/<metric>.json, and which records a given protocol can reuse
    checkpoints.py     checkpoints/ and latest.json: verified, schema-checked payloads (imports torch)
    prior_checkpoints.py  priors/<name>/checkpoints/: a prior fitted after training, verified the same way
    progress.py        how far a run has trained (latest.json's step against its budget), without torch
    logger_ids.py      loggers.json: the MLflow and W&B run ids of a run, so resuming continues them
    sweep_state.py     sweep.json
    lock.py            run.lock: one writer per run directory

Everything except ``checkpoints`` and ``prior_checkpoints`` imports neither torch nor the model code, so reports
read runs cheaply; import ``latentprior.rundir.checkpoints`` (or ``prior_checkpoints``) explicitly where a
checkpoint is needed.
"""

from latentprior.rundir.config_file import append_config_history, read_config_history, read_run_config, write_run_config
from latentprior.rundir.eval_records import (
    eval_value,
    missing_metrics,
    read_eval_record,
    read_eval_records,
    sample_count,
    write_eval_record,
)
from latentprior.rundir.layout import PREVIEW_FILES, RunDir, SweepDir, UnsafePathError, child_name, inside, run_dir_of
from latentprior.rundir.lock import RunLockError, run_lock
from latentprior.rundir.logger_ids import read_logger_ids, write_logger_id
from latentprior.rundir.metrics_log import MetricsLog, MetricsWriter, read_log, read_metrics
from latentprior.rundir.progress import Progress, read_checkpoint_index, read_progress
from latentprior.rundir.sweep_state import SweepState, SweepStateError, read_sweep_state

__all__ = [
    "RunDir", "SweepDir", "UnsafePathError", "child_name", "inside", "run_dir_of", "PREVIEW_FILES",
    "write_run_config", "read_run_config", "append_config_history", "read_config_history",
    "MetricsLog", "MetricsWriter", "read_log", "read_metrics",
    "write_eval_record", "read_eval_record", "read_eval_records", "eval_value", "sample_count", "missing_metrics",
    "SweepState", "SweepStateError", "read_sweep_state", "RunLockError", "run_lock",
    "Progress", "read_progress", "read_checkpoint_index", "read_logger_ids", "write_logger_id",
]
