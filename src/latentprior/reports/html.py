"""A static HTML page for a sweep: plots, the summary table, links to the CSV/Markdown, every run's samples.

All links are relative to the page, so the sweep folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

from latentprior.reports.collect import RunRecord
from latentprior.reports.tables import fmt

__all__ = ["write_html"]

_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}td.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.run{width:230px;font-size:12px}
.run img{width:230px;image-rendering:pixelated}.failed{color:#b00}.plots img{max-width:640px;margin:4px}"""


def _rel(target: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><i>no runs</i></p>"
    cols = [c for c in rows[0] if not (c.endswith("_mean") or c.endswith("_std"))]
    mets = [c[: -len("_mean")] for c in rows[0] if c.endswith("_mean")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols + [f"{m} mean ± std" for m in mets])
    body = []
    for r in rows:
        cells = "".join(f'<td class="l">{html.escape(fmt(r[c]))}</td>' for c in cols)
        for m in mets:
            mean, std = r[f"{m}_mean"], r[f"{m}_std"]
            text = "–" if math.isnan(mean) else fmt(mean) + ("" if math.isnan(std) else f" ± {fmt(std, 2)}")
            cells += f"<td>{html.escape(text)}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_html(out: str | Path, *, title: str, records: list[RunRecord], summary: list[dict[str, Any]],
               plots: list[Path], files: list[Path], main_metric: str = "fid", note: str = "") -> Path:
    """Write ``out`` (an ``index.html``) linking ``plots``, ``files`` and each run's ``samples/samples.png``."""
    out = Path(out)
    page = out.parent
    page.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p>" + ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items())) + " runs. "
             f"{html.escape(note)} Every number is read from "
             "<code>runs/&lt;name&gt;/eval/&lt;metric&gt;.json</code>.</p>",
             "<h2>Plots</h2><div class='plots'>"]
    parts += [f"<a href='{_rel(p, page)}'><img src='{_rel(p, page)}' alt='{html.escape(p.stem)}'></a>"
              for p in plots] or ["<p><i>no axis with two or more values and results</i></p>"]
    parts.append("</div><h2>Summary</h2>" + _table(summary))
    parts.append("<p>" + " · ".join(f"<a href='{_rel(f, page)}'>{html.escape(f.name)}</a>" for f in files) + "</p>")
    parts.append("<h2>Samples</h2><div class='grid'>")
    for r in records:
        value = r.metrics.get(main_metric)
        caption = f"{r.name}<br>{main_metric} = {fmt(value) if value is not None else '–'}"
        cls = "run failed" if r.status == "failed" else "run"
        img = (f"<a href='{_rel(r.samples, page)}'><img src='{_rel(r.samples, page)}' alt='samples'></a>"
               if r.samples else f"<div>(no samples; status {html.escape(r.status)})</div>")
        parts.append(f"<div class='{cls}'>{img}<div>{caption}</div></div>")
    parts.append("</div></body></html>\n")
    out.write_text("\n".join(parts))
    return out
