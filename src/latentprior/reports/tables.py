"""Per-run and per-setting tables (mean ± std over seeds) as CSV and Markdown.

A *setting* is everything in a run's labels except the seed, plus the eval sample count: the seeds of one
(dataset, model, β, latent dim) evaluated on the same number of samples are averaged, and runs evaluated on
different numbers are never pooled (FID is biased by n, so a mean over n = 50 and n = 200 means nothing);
:func:`sample_count_warnings` says where that split a setting. The std is the sample standard deviation
(ddof = 1); with one seed it is undefined and written empty. CSV values are written with ``repr`` (exact);
Markdown shows three significant digits, each std to its mean's decimal place (latentprior.formatting). Files are
written atomically. The ``model`` column is the model's label (a sweep's ``label:``, else its name): one column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.config import flatten
from latentprior.formatting import fmt_label, fmt_mean_std, fmt_value
from latentprior.reports.collect import LABEL_KEYS, TIMING, RunRecord

__all__ = ["metric_columns", "summarize", "runs_table", "write_csv", "write_text", "markdown_table", "fmt",
           "fmt_value", "fmt_mean_std", "fmt_label", "is_value_column",
           "sample_count_warnings", "config_differences", "better", "arrow", "LOWER_IS_BETTER", "HIGHER_IS_BETTER"]

LOWER_IS_BETTER = ("fid", "kid", "nll", "cond_fid", "cond_mse", "recon_fid", "prior_nll")
HIGHER_IS_BETTER = ("pr.precision", "pr.recall", "lpips", "cond_lpips")


def better(metric: str) -> str:
    """'lower', 'higher' or '' (unknown) for a metric column such as ``fid`` or ``pr.recall``."""
    if metric in LOWER_IS_BETTER:
        return "lower"
    return "higher" if metric in HIGHER_IS_BETTER else ""


def metric_columns(records: list[RunRecord]) -> list[str]:
    """Metric column names present in any run, FID first."""
    cols = sorted({k for r in records for k in r.metrics})
    return sorted(cols, key=lambda c: (not c.startswith("fid"), c))


def _setting_keys(records: list[RunRecord]) -> list[str]:
    """Label keys that define a setting: the standard ones, then any extra grid axes, never the seed."""
    extra = sorted({k for r in records for k in r.labels} - set(LABEL_KEYS) - {"model_label"})
    return [k for k in LABEL_KEYS if k != "seed"] + extra


def _model(r: RunRecord) -> Any:
    """The model column: its label when the sweep gave one, else its name (never both: they say the same)."""
    return r.labels.get("model_label") or r.labels.get("model")


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def summarize(records: list[RunRecord], metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per setting and eval sample count: its labels, ``eval_n``, ``n`` (runs with results), and
    ``<metric>_mean`` / ``<metric>_std``."""
    metrics = metrics if metrics is not None else metric_columns(records)
    keys = _setting_keys(records)
    groups: dict[tuple, list[RunRecord]] = {}
    for r in sorted(records, key=lambda r: not r.metrics):  # runs with results first: they make the rows
        setting = tuple(r.labels.get(k) for k in keys)
        # A run without results (failed, pending) joins a row of its setting, or gets one of its own.
        n = r.eval_n if r.metrics else next((g[-1] for g in groups if g[:-1] == setting), None)
        groups.setdefault((*setting, n), []).append(r)
    rows = []
    for gkey, members in groups.items():
        row: dict[str, Any] = dict(zip([*keys, "eval_n"], gkey, strict=True))
        if "model" in row:
            row["model"] = _model(members[0])
        row["seeds"] = sorted(m.labels.get("seed") for m in members if m.metrics)
        row["n"] = len(row["seeds"])
        for m in metrics:
            vals = [r.metrics[m] for r in members if m in r.metrics]
            row[f"{m}_mean"] = statistics.fmean(vals) if vals else math.nan
            row[f"{m}_std"] = statistics.stdev(vals) if len(vals) > 1 else math.nan
        rows.append(row)
    order = ("dataset", "model", "latent_dim", "beta", "eval_n")
    rows.sort(key=lambda r: tuple(_sort_key(r.get(k)) for k in order))
    return rows


def runs_table(records: list[RunRecord], metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run: name, status, labels, the eval sample count, each metric (NaN where missing), then the
    sweep's timings in minutes when any run has them (:data:`TIMING`: training over all attempts, the last
    attempt's training, and its training + evaluation)."""
    metrics = metrics if metrics is not None else metric_columns(records)
    keys = _setting_keys(records) + ["seed"]
    timed = [k for k in TIMING if any(k in r.timing for r in records)]
    return [{"name": r.name, "status": r.status, **{k: r.labels.get(k) for k in keys}, "model": _model(r),
             "eval_n": r.eval_n,
             **{m: r.metrics.get(m, math.nan) for m in metrics},
             **{f"{k[:-2]}_min": r.timing[k] / 60 if k in r.timing else math.nan for k in timed}} for r in records]


def arrow(metric: str) -> str:
    """' ↓' (lower is better), ' ↑' (higher is better) or '' for a metric column."""
    return {"lower": " ↓", "higher": " ↑"}.get(better(metric), "")


def sample_count_warnings(records: list[RunRecord]) -> list[str]:
    """One line per setting whose runs were evaluated on different sample counts (shown as separate rows)."""
    keys = _setting_keys(records)
    counts: dict[tuple, set] = {}
    for r in records:
        if r.metrics:
            counts.setdefault(tuple(r.labels.get(k) for k in keys), set()).add(r.eval_n)
    return [", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True) if v is not None)
            + f": evaluated on different sample counts ({', '.join(map(str, sorted(ns, key=_sort_key)))}); shown as "
            "separate rows, never averaged" for key, ns in counts.items() if len(ns) > 1]


def config_differences(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per run with a config: its name, then every dotted config key whose value is not the same in all
    of them (an empty list when there is at most one run, or nothing differs)."""
    flat = {r.name: flatten(r.config) for r in records if r.config}
    if len(flat) < 2:
        return []
    keys = sorted({k for f in flat.values() for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat.values()}) > 1]
    return [{"name": name, **{k: f.get(k) for k in differ}} for name, f in flat.items()] if differ else []


def _csv_cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return "" if v is None else str(v)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Rows (dicts with the same keys) to CSV; floats exact (``repr``), NaN as an empty cell."""
    buf = io.StringIO()
    if rows:
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(rows[0]))
        for row in rows:
            w.writerow([_csv_cell(v) for v in row.values()])
    return write_text(path, buf.getvalue())


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; returns the path."""
    atomic_write_bytes(path, text.encode())
    return Path(path)


def fmt(v: Any) -> str:
    """A setting as written (``fmt_label``); measured numbers go through ``fmt_value`` / ``fmt_mean_std``."""
    return fmt_label(v)


def is_value_column(column: str) -> bool:
    """Whether a table column holds a measured number (a metric or a time), shown to 3 significant digits, rather
    than a setting (β, latent size, seed, sample count), shown as written."""
    return column not in _SETTING_COLUMNS and not column.endswith(("_mean", "_std"))


# Columns of the summary and runs tables that are settings or names, not measurements.
_SETTING_COLUMNS = {"name", "status", "dataset", "model", "beta", "latent_dim", "seed", "seeds", "n", "eval_n"}


def markdown_table(rows: list[dict[str, Any]], metrics: list[str] | None = None) -> str:
    """A GitHub Markdown table; for summary rows each metric is one ``mean ± std`` column."""
    if not rows:
        return "_no runs_\n"
    cols = [c for c in rows[0] if not (c.endswith("_mean") or c.endswith("_std"))]
    mets = [c[: -len("_mean")] for c in rows[0] if c.endswith("_mean")]
    if metrics is not None:
        mets = [m for m in mets if m in metrics]
    header = cols + [f"{m}{arrow(m)} (mean ± std)" for m in mets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    value_cols = {c for c in cols if is_value_column(c) and any(isinstance(r.get(c), float) for r in rows)}
    for row in rows:
        cells = [fmt_value(row[c]) if c in value_cols else fmt(row[c]) for c in cols]
        cells += [fmt_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in mets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
