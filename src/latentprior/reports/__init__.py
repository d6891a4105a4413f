"""Reports from finished runs: plots, CSV/Markdown tables and a static HTML page.

A report never trains, never evaluates and never loads a checkpoint: it reads run directories and ``sweep.json``
through :mod:`latentprior.rundir` (its torch-free part), so ``import latentprior.reports`` does not import torch.
Figures that need a model (the paper's Figs. 2, 6-8) are drawn by :mod:`latentprior.studies`.

>>> write_report("runs/fig3_mnist_cpu")   # -> runs/fig3_mnist_cpu/report/{index.html, *.png, *.svg, *.csv, *.md}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentprior.errors import UserError
from latentprior.reports.assets import copy_run_assets
from latentprior.reports.collect import RunRecord, collect_runs, metric_values
from latentprior.reports.html import PageInput, write_html
from latentprior.reports.plots import plot_vs_beta, plot_vs_latent_dim
from latentprior.reports.tables import (
    config_differences,
    markdown_table,
    metric_columns,
    runs_table,
    sample_count_warnings,
    summarize,
    write_csv,
    write_text,
)
from latentprior.rundir import RunDir, SweepDir, child_name, read_sweep_state

__all__ = ["ReportError", "write_report", "collect_runs", "metric_values", "RunRecord", "summarize", "runs_table"]


class ReportError(FileNotFoundError, UserError):
    """There is nothing to report on: no such folder, or no runs in it."""


def _title(path: Path) -> str:
    sweep = SweepDir(path)
    described = read_sweep_state(sweep).get("sweep") if sweep.is_sweep() else None
    name = described.get("name") if isinstance(described, dict) else None
    return str(name) if name else path.resolve().name


def _note(records: list[RunRecord]) -> str:
    counts = sorted({r.eval_n for r in records if r.eval_n is not None})
    on = " / ".join(map(str, counts)) or "an unrecorded number of"
    return (f"Mean ± sample std over seeds (n = runs with results); metrics computed on {on} samples "
            "(generated images; test images for NLL).")


def _plotted_metric(metric: str | None, metrics: list[str]) -> str:
    """``metric`` if the runs have it; by default FID, else their first metric column."""
    if metric is None:
        return metrics[0] if metrics else "fid"  # metric_columns puts fid first
    if metrics and metric not in metrics:
        raise ReportError(f"no run has results for metric '{metric}'; the runs have: {', '.join(metrics)}")
    return metric


def write_report(path: str | Path, out: str | Path | None = None, *, metric: str | None = None) -> dict[str, Any]:
    """Write a self-contained report folder ``out`` (default ``PATH/report``) for a sweep folder, a plain folder
    of runs, or one run: ``index.html``, ``summary.csv/.md``, ``runs.csv``, ``config_diff.csv``, the plots of
    ``metric`` against β and against the latent dimension (PNG + SVG), and ``runs/<name>/`` with each run's
    pictures, loss curves, config and metric log. ``metric``: the one plotted (default: FID when the runs have it,
    else their first metric). Returns the paths and counts."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"no such folder {path}")
    out = Path(out) if out is not None else SweepDir(path).report
    records = collect_runs(path)
    if not records:
        sweep, run = SweepDir(path), RunDir(path)
        raise ReportError(f"{path} holds no runs: no {sweep.state.name}, no {run.config.name} in it, in "
                          f"{sweep.runs.name}/*/ or in */")
    metrics = metric_columns(records)
    metric = _plotted_metric(metric, metrics)
    summary = summarize(records, metrics)
    per_run = runs_table(records, metrics)
    differences = config_differences(records)
    warnings = sample_count_warnings(records)
    title, note = _title(path), _note(records)
    files = [write_csv(summary, out / "summary.csv"), write_csv(per_run, out / "runs.csv"),
             write_csv(differences, out / "config_diff.csv")]
    files.append(write_text(out / "summary.md", f"# {title}\n\n{note}\n\n"
                            + "".join(f"> **warning:** {w}\n\n" for w in warnings)
                            + markdown_table(summary) + "\n## Runs\n\n" + markdown_table(per_run)))
    plots = plot_vs_beta(summary, out, metric) + plot_vs_latent_dim(summary, out, metric)
    assets = {r.name: copy_run_assets(r, out / "runs" / child_name(r.name, "run name")) for r in records}
    page = write_html(out / "index.html", PageInput(
        title=title, records=records, summary=summary, plots=plots, files=files, note=note, warnings=warnings,
        assets=assets, differences=differences))
    return {"out": str(out), "html": str(page), "plots": [str(p) for p in plots], "tables": [str(f) for f in files],
            "runs": len(records), "with_results": sum(1 for r in records if r.metrics), "metrics": metrics,
            "eval_n": sorted({r.eval_n for r in records if r.eval_n is not None}), "warnings": warnings}
