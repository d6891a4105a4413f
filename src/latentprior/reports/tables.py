"""Per-run and per-setting tables (mean ± std over seeds) as CSV and Markdown.

A *setting* is everything in a run's labels except the seed, so the seeds of one (dataset, model, β,
latent dim) are averaged. The std is the sample standard deviation (ddof = 1); with one seed it is
undefined and written empty. CSV values are written with ``repr`` (exact); Markdown rounds for reading.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

from latentprior.reports.collect import LABEL_KEYS, RunRecord

__all__ = ["metric_columns", "summarize", "runs_table", "write_csv", "markdown_table", "fmt"]


def metric_columns(records: list[RunRecord]) -> list[str]:
    """Metric column names present in any run, FID first."""
    cols = sorted({k for r in records for k in r.metrics})
    return sorted(cols, key=lambda c: (not c.startswith("fid"), c))


def _setting_keys(records: list[RunRecord]) -> list[str]:
    """Label keys that define a setting: the standard ones, then any extra grid axes, never the seed."""
    extra = sorted({k for r in records for k in r.labels} - set(LABEL_KEYS) - {"model_label"})
    return [k for k in LABEL_KEYS if k != "seed"] + extra


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def summarize(records: list[RunRecord], metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per setting: its labels, ``n`` (runs with results), and ``<metric>_mean`` / ``<metric>_std``."""
    metrics = metrics if metrics is not None else metric_columns(records)
    keys = _setting_keys(records)
    groups: dict[tuple, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(tuple(r.labels.get(k) for k in keys), []).append(r)
    rows = []
    for gkey, members in groups.items():
        row: dict[str, Any] = dict(zip(keys, gkey, strict=True))
        row["model_label"] = members[0].labels.get("model_label", row.get("model"))
        row["seeds"] = sorted(m.labels.get("seed") for m in members if m.metrics)
        row["n"] = len(row["seeds"])
        for m in metrics:
            vals = [r.metrics[m] for r in members if m in r.metrics]
            row[f"{m}_mean"] = statistics.fmean(vals) if vals else math.nan
            row[f"{m}_std"] = statistics.stdev(vals) if len(vals) > 1 else math.nan
        rows.append(row)
    order = ("dataset", "model", "latent_dim", "beta")
    rows.sort(key=lambda r: tuple(_sort_key(r.get(k)) for k in order))
    return rows


def runs_table(records: list[RunRecord], metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run: name, status, labels, the eval sample count, then each metric (NaN where missing)."""
    metrics = metrics if metrics is not None else metric_columns(records)
    keys = _setting_keys(records) + ["seed"]
    return [{"name": r.name, "status": r.status, **{k: r.labels.get(k) for k in keys}, "eval_n": r.eval_n,
             **{m: r.metrics.get(m, math.nan) for m in metrics}} for r in records]


def _csv_cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return "" if v is None else str(v)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Rows (dicts with the same keys) to CSV; floats exact (``repr``), NaN as an empty cell."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    if rows:
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(rows[0]))
        for row in rows:
            w.writerow([_csv_cell(v) for v in row.values()])
    path.write_text(buf.getvalue())
    return path


def fmt(v: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '–' for a missing one."""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.{digits}g}"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return "" if v is None else str(v)


def markdown_table(rows: list[dict[str, Any]], metrics: list[str] | None = None) -> str:
    """A GitHub Markdown table; for summary rows each metric is one ``mean ± std`` column."""
    if not rows:
        return "_no runs_\n"
    cols = [c for c in rows[0] if not (c.endswith("_mean") or c.endswith("_std"))]
    mets = [c[: -len("_mean")] for c in rows[0] if c.endswith("_mean")]
    if metrics is not None:
        mets = [m for m in mets if m in metrics]
    header = cols + [f"{m} (mean ± std)" for m in mets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [fmt(row[c]) for c in cols]
        for m in mets:
            mean, std = row[f"{m}_mean"], row[f"{m}_std"]
            cells.append("–" if math.isnan(mean) else fmt(mean) + ("" if math.isnan(std) else f" ± {fmt(std, 2)}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
