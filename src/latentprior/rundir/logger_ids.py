"""``RUN_DIR/loggers.json``: the ids of the run in the experiment trackers it logs to (MLflow's run id, W&B's run
id), so that a resumed run, and a later ``latentprior eval``, continue the same tracked run instead of starting one.

    {"mlflow": "26816cd7f8034a5da114c250db2649c6", "wandb": "k3j2h1g0"}

Written atomically by the one writer of the run; a missing or unreadable file reads as no ids (a new tracked run).
"""

from __future__ import annotations

import json
import os

from latentprior.atomic import atomic_write_bytes
from latentprior.rundir.layout import RunDir, run_dir_of

__all__ = ["read_logger_ids", "write_logger_id"]


def read_logger_ids(run_dir: str | os.PathLike[str] | RunDir) -> dict[str, str]:
    """Logger name -> run id; {} when there is no (valid) file."""
    try:
        data = json.loads(run_dir_of(run_dir).logger_ids.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str) and v} if isinstance(data, dict) else {}


def write_logger_id(run_dir: str | os.PathLike[str] | RunDir, logger: str, run_id: str) -> None:
    """Record ``run_id`` as the run's id in ``logger`` (the other ids kept)."""
    rd = run_dir_of(run_dir)
    ids = read_logger_ids(rd) | {logger: run_id}
    atomic_write_bytes(rd.logger_ids, json.dumps(ids, indent=1, sort_keys=True).encode())
