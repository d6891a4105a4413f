"""``RUN_DIR/eval/<metric>.json``: one record per metric, written whole (atomically) by evaluation, read by sweeps,
studies, TensorBoard's hparams and reports.

A record is a JSON object: ``value`` (a number or a mapping of numbers), ``protocol`` (how it was computed: n, seed,
network, ...), ``results`` (the fields that are results) and bookkeeping. A file that is not such an object
(a foreign or hand-edited file) reads as absent: the metric is computed again, never trusted half-way.

Whether a stored record can be reused is decided here, by the sample counts its protocol states
(:func:`sample_count`, :func:`missing_metrics`), so an n changed in a sweep file re-evaluates the run instead of
mixing sample counts in one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.config import EvalConfig
from latentprior.rundir.layout import RunDir, UnsafePathError, child_name, run_dir_of

__all__ = ["write_eval_record", "read_eval_record", "read_eval_records", "eval_value", "sample_count",
           "missing_metrics", "has_eval_records", "remove_eval_records"]


def write_eval_record(run_dir: str | os.PathLike[str] | RunDir, metric: str, record: dict[str, Any], *,
                      temperature: float = 1.0) -> None:
    """Write ``record`` as ``RUN_DIR/eval/<metric>.json`` (sorted keys, atomically); a record of samples drawn at
    ``temperature`` != 1 goes to ``eval/temperature=<t>/<metric>.json``."""
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(run_dir_of(run_dir).eval_record(metric, temperature), data)


def read_eval_record(run_dir: str | os.PathLike[str] | RunDir, metric: str, *,
                     temperature: float = 1.0) -> dict[str, Any] | None:
    """The record of ``metric`` (at ``temperature``), or None when it is absent or not a record (unparseable, not
    an object)."""
    path = run_dir_of(run_dir).eval_record(metric, temperature)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_eval_records(run_dir: str | os.PathLike[str] | RunDir, *,
                      temperature: float = 1.0) -> dict[str, dict[str, Any]]:
    """Every readable record of the run (at ``temperature``), ``{metric: record}`` in name order (files with
    unsafe names ignored)."""
    folder = run_dir_of(run_dir).eval_dir(temperature)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            metric = child_name(path.stem, "metric name")
        except UnsafePathError:
            continue
        record = read_eval_record(run_dir, metric, temperature=temperature)
        if record is not None:
            out[metric] = record
    return out


def eval_value(run_dir: str | os.PathLike[str] | RunDir, metric: str) -> Any:
    """The ``value`` of a stored record (None when there is none)."""
    record = read_eval_record(run_dir, metric)
    return None if record is None else record.get("value")


def sample_count(ev: EvalConfig, metric: str) -> dict[str, int]:
    """The sample counts a metric's record states in its protocol (what decides whether a stored record is
    reused): its own n, and for the test-reference metrics the reference size asked for."""
    own = {"separability": ev.separability_n, "ppl": ev.ppl_n}.get(metric.split("_")[0])
    return {"n": own} if own is not None else {"n": ev.n, "n_ref_asked": ev.n_ref}


def _reusable(record: dict[str, Any] | None, wanted: dict[str, int]) -> bool:
    """A record exists and, for each key of ``wanted`` its protocol states, was computed with that value."""
    if record is None:
        return False
    protocol = record.get("protocol")
    if not isinstance(protocol, dict):
        return True
    return all(protocol[k] == v for k, v in wanted.items() if k in protocol)


def missing_metrics(run_dir: str | os.PathLike[str] | RunDir, ev: EvalConfig,
                    metrics: Iterable[str] | None = None) -> list[str]:
    """Those of ``metrics`` (default ``ev.metrics``) without a reusable record at their own sample count (and at
    ``ev.temperature``, whose records live apart)."""
    return [m for m in (ev.metrics if metrics is None else metrics)
            if not _reusable(read_eval_record(run_dir, m, temperature=ev.temperature), sample_count(ev, m))]


def has_eval_records(run_dir: str | os.PathLike[str] | RunDir) -> bool:
    return bool(read_eval_records(run_dir))


def remove_eval_records(run_dir: str | os.PathLike[str] | RunDir) -> list[str]:
    """Delete every record of ``run_dir`` (``eval/*.json`` and the tempered ones), e.g. a refitted prior's, whose
    records describe the prior it replaced. Returns the removed files' names relative to ``eval/``."""
    folder = run_dir_of(run_dir).eval
    gone = sorted(folder.glob("*.json")) + sorted(folder.glob("temperature=*/*.json")) if folder.is_dir() else []
    for path in gone:
        path.unlink(missing_ok=True)
    return [str(p.relative_to(folder)) for p in gone]
