"""Reports from finished runs (never trains, never evaluates): plots, CSV/Markdown tables, a static HTML page.

>>> write_report("runs/fig3_mnist_cpu")   # -> runs/fig3_mnist_cpu/report/{index.html, *.png, *.csv, *.md}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentprior.reports.collect import RunRecord, collect_runs, metric_values
from latentprior.reports.html import write_html
from latentprior.reports.plots import plot_vs_beta, plot_vs_latent_dim
from latentprior.reports.tables import markdown_table, metric_columns, runs_table, summarize, write_csv

__all__ = ["write_report", "collect_runs", "metric_values", "RunRecord", "summarize", "runs_table"]


def write_report(sweep_dir: str | Path, out: str | Path | None = None, *, metric: str = "fid") -> dict[str, Any]:
    """Write ``out`` (default ``SWEEP_DIR/report``): ``summary.csv/.md``, ``runs.csv/.md``, the plots of
    ``metric`` against β and against the latent dimension, and ``index.html``. Returns the paths and counts."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no sweep directory {sweep_dir}")
    out = Path(out) if out is not None else sweep_dir / "report"
    records = collect_runs(sweep_dir)
    if not records:
        raise FileNotFoundError(f"{sweep_dir} holds neither sweep.json nor runs/*/config.yaml")
    metrics = metric_columns(records)
    summary = summarize(records, metrics)
    per_run = runs_table(records, metrics)
    files = [write_csv(summary, out / "summary.csv"), write_csv(per_run, out / "runs.csv")]
    title = sweep_dir.resolve().name
    state = sweep_dir / "sweep.json"
    if state.is_file():
        title = json.loads(state.read_text()).get("sweep", {}).get("name") or title
    sample_counts = sorted({r.eval_n for r in records if r.eval_n is not None})
    note = (f"Mean ± sample std over seeds (n = runs with results); metrics computed on "
            f"{' / '.join(map(str, sample_counts)) or 'an unrecorded number of'} generated samples.")
    md = out / "summary.md"
    md.write_text(f"# {title}\n\n{note}\n\n"
                  + markdown_table(summary) + "\n## Runs\n\n" + markdown_table(per_run))
    files.append(md)
    plots = plot_vs_beta(summary, out, metric) + plot_vs_latent_dim(summary, out, metric)
    page = write_html(out / "index.html", title=title, records=records, summary=summary, plots=plots, files=files,
                      main_metric=metric, note=note)
    return {"out": str(out), "html": str(page), "plots": [str(p) for p in plots], "tables": [str(f) for f in files],
            "runs": len(records), "with_results": sum(1 for r in records if r.metrics), "metrics": metrics,
            "eval_n": sample_counts}
