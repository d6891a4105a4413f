"""The sweep's state file, ``DIR/sweep.json``: one record per run, written atomically by the driver alone.

A record holds ``status`` (pending | running | done | failed), ``attempts`` (over the sweep's whole
life), ``error`` (the last failure's message and traceback tail), the run's ``labels`` and
``overrides`` (what the report groups by) and, once done, the trial's ``result``.

The file is a record, not the source of truth for "finished": a run is done when every metric's
``RUN_DIR/eval/<metric>.json`` exists, computed with the metric's sample count (:func:`missing_metrics`), so a
sweep killed between writing an eval file and writing this file still skips that run on restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.config import EvalConfig
from latentprior.errors import UserError
from latentprior.experiments.grid import Trial

__all__ = ["SweepState", "SweepStateError", "read_sweep_state", "run_is_done", "missing_metrics", "sample_count",
           "STATUSES", "STATE_FILE"]

STATE_FILE = "sweep.json"
STATUSES = ("pending", "running", "done", "failed")


def _eval_done(path: Path, wanted: dict[str, int] | None) -> bool:
    """An eval file exists and, for each key of ``wanted`` its protocol states, was computed with that value
    (an n changed in the sweep file re-evaluates the run instead of mixing sample counts in one table)."""
    if not path.is_file():
        return False
    if not wanted:
        return True
    try:
        protocol = json.loads(path.read_text()).get("protocol")
    except (json.JSONDecodeError, AttributeError):
        return False
    if not isinstance(protocol, dict):
        return True
    return all(protocol[k] == v for k, v in wanted.items() if k in protocol)


def run_is_done(run_dir: Path, metrics: list[str], wanted: dict[str, int] | None = None) -> bool:
    """Whether ``run_dir`` holds an eval JSON for every one of ``metrics`` (computed as ``wanted`` says, if given)."""
    return all(_eval_done(Path(run_dir) / "eval" / f"{m}.json", wanted) for m in metrics)


def sample_count(ev: EvalConfig, metric: str) -> dict[str, int]:
    """The sample counts a metric's record states in its protocol (what decides whether a stored record is
    reused): its own n, and for the test-reference metrics the reference size asked for."""
    own = {"separability": ev.separability_n, "ppl": ev.ppl_n}.get(metric.split("_")[0])
    return {"n": own} if own is not None else {"n": ev.n, "n_ref_asked": ev.n_ref}


def missing_metrics(run_dir: Path, ev: EvalConfig, metrics: Iterable[str] | None = None) -> list[str]:
    """Those of ``metrics`` (default ``ev.metrics``) without an eval file at their own sample count."""
    return [m for m in (ev.metrics if metrics is None else metrics)
            if not run_is_done(run_dir, [m], sample_count(ev, m))]


class SweepStateError(RuntimeError, UserError):
    """``sweep.json`` cannot be read as a sweep's state file."""


def read_sweep_state(path: Path) -> dict[str, Any]:
    """The data of a ``sweep.json``; unreadable or not a state file: a one-line :class:`SweepStateError`."""
    fix = (f"move it away and rerun the sweep: finished runs are found again from {path.parent / 'runs'}/*/eval, "
           "interrupted ones resume from their checkpoints")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SweepStateError(f"{path} is corrupt ({e}); {fix}") from e
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise SweepStateError(f"{path} is not a sweep state file (no 'runs' mapping); {fix}")
    return data


class SweepState:
    """Load, update and atomically save ``DIR/sweep.json``."""

    def __init__(self, out: Path, data: dict[str, Any]) -> None:
        self.out = Path(out)
        self.data = data

    @property
    def path(self) -> Path:
        return self.out / STATE_FILE

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    @classmethod
    def open(cls, out: str | Path, sweep: dict[str, Any] | None = None) -> SweepState:
        """The state in ``out`` (created empty when absent); ``sweep`` replaces the stored sweep description."""
        out = Path(out)
        path = out / STATE_FILE
        if path.is_file():
            data = read_sweep_state(path)
        else:
            data = {"format": "latentprior-sweep/1", "created": time.time(), "runs": {}}
        if sweep is not None:
            data["sweep"] = sweep
        return cls(out, data)

    def sync(self, trials: list[Trial]) -> None:
        """Add a record for each new trial; a run left 'running' by a killed sweep becomes 'pending' again."""
        for t in trials:
            rec = self.runs.setdefault(t.name, {"status": "pending", "attempts": 0, "error": None})
            rec.update(labels=t.labels, overrides=t.overrides, run_dir=f"runs/{t.name}")
            if rec["status"] == "running":
                rec["status"] = "pending"

    def reset(self, names: list[str]) -> None:
        """Forget what happened to the named runs (their folders were moved aside to be run again)."""
        for name in names:
            if name in self.runs:
                self.runs[name] = {"status": "pending", "attempts": 0, "error": None}

    def mark(self, name: str, status: str, **fields: Any) -> None:
        """Set a run's status (and any other fields), then save."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        rec = self.runs[name]
        rec.update(status=status, updated=time.time(), **fields)
        self.save()

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for rec in self.runs.values():
            out[rec["status"]] += 1
        return out

    def save(self) -> None:
        self.data["updated"] = time.time()
        atomic_write_bytes(self.path, json.dumps(self.data, indent=1, default=str).encode())
