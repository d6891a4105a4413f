"""The one reader of a run's ``metrics.jsonl``: used by training, TensorBoard hparams and reports alike.

It imports neither torch nor the training loop, so reports (which never train) can read logs cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["METRICS_FILE", "read_metrics"]

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``run_dir/metrics.jsonl`` in order; [] when there is none.

    The log is appended line by line, so a crash can cut only its last line: an unreadable line is skipped
    rather than making the whole run unreadable.
    """
    path = Path(run_dir) / METRICS_FILE
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
