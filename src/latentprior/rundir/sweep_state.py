"""The sweep's state file, ``SWEEP_DIR/sweep.json``: one record per run, written atomically by the driver alone.

A record holds ``status`` (pending | running | done | failed | interrupted), ``attempts`` (over the sweep's whole
life), ``error`` (the last failure's message and traceback tail), the run's ``labels`` and ``overrides`` (what the
report groups by) and, once done, the trial's ``result``. Records are keyed by run name; a run's folder is
``SWEEP_DIR/runs/<name>`` (:class:`~latentprior.rundir.layout.SweepDir`), never a path stored in the file.

The file is a record, not the source of truth for "finished": a run is done when every metric's eval record exists
at the metric's sample count (:func:`~latentprior.rundir.eval_records.missing_metrics`), so a sweep killed between
writing an eval file and writing this file still skips that run on restart. Read from disk, the file is untrusted:
every run name must be a plain name (:func:`~latentprior.rundir.layout.child_name`) before it becomes a path.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.errors import UserError
from latentprior.rundir.layout import SweepDir, UnsafePathError, child_name

__all__ = ["SweepState", "SweepStateError", "read_sweep_state", "STATUSES", "FORMAT"]

FORMAT = "latentprior-sweep/1"
STATUSES = ("pending", "running", "done", "failed", "interrupted")


class SweepStateError(RuntimeError, UserError):
    """``sweep.json`` cannot be read as a sweep's state file."""


def read_sweep_state(sweep_dir: str | os.PathLike[str] | SweepDir) -> dict[str, Any]:
    """The data of ``SWEEP_DIR/sweep.json``, checked: a mapping whose ``runs`` map plain run names to mappings.
    Unreadable, not a state file, or a run name that would leave the sweep folder: a one-line error."""
    sd = sweep_dir if isinstance(sweep_dir, SweepDir) else SweepDir(sweep_dir)
    path = sd.state
    fix = (f"move it away and rerun the sweep: finished runs are found again from {sd.runs}/*/eval, "
           "interrupted ones resume from their checkpoints")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SweepStateError(f"{path} is corrupt ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                              f"{fix}") from e
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise SweepStateError(f"{path} is not a sweep state file (no 'runs' mapping); {fix}")
    for name, rec in data["runs"].items():
        try:
            child_name(name, "run name", path)
        except UnsafePathError as e:
            raise SweepStateError(str(e)) from None
        if not isinstance(rec, dict):
            raise SweepStateError(f"{path}: the record of run {name!r} is not a mapping; {fix}")
    return data


class SweepState:
    """Load, update and atomically save ``SWEEP_DIR/sweep.json``."""

    def __init__(self, out: str | os.PathLike[str] | SweepDir, data: dict[str, Any]) -> None:
        self.dir = out if isinstance(out, SweepDir) else SweepDir(out)
        self.data = data

    @property
    def path(self):
        return self.dir.state

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    @classmethod
    def open(cls, out: str | os.PathLike[str] | SweepDir, sweep: dict[str, Any] | None = None) -> SweepState:
        """The state in ``out`` (created empty when absent); ``sweep`` replaces the stored sweep description."""
        sd = out if isinstance(out, SweepDir) else SweepDir(out)
        if sd.state.is_file():
            data = read_sweep_state(sd)
        else:
            data = {"format": FORMAT, "created": time.time(), "runs": {}}
        if sweep is not None:
            data["sweep"] = sweep
        return cls(sd, data)

    def sync(self, runs: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """Add a record for each new ``(name, labels, overrides)``; a run left 'running' or 'interrupted' by a
        stopped sweep becomes 'pending' again."""
        for name, labels, overrides in runs:
            rec = self.runs.setdefault(child_name(name, "run name"), {"status": "pending", "attempts": 0,
                                                                      "error": None})
            rec.update(labels=labels, overrides=overrides, run_dir=f"runs/{name}")  # for people; never read back
            if rec.get("status") in ("running", "interrupted"):
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
            status = rec.get("status")
            out[status if status in out else "pending"] += 1
        return out

    def save(self) -> None:
        self.data["updated"] = time.time()
        atomic_write_bytes(self.path, json.dumps(self.data, indent=1, default=str).encode())
