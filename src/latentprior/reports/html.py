"""A static HTML page for a set of runs: warnings, plots, the summary table, the configs that differ, and one
card per run (samples, reconstructions, interpolation, loss curves, links).

Every link and image is relative to the page and points inside the report folder (reports/assets.py copies
the runs' files in), so the folder can be moved or served as it is. The one exception is each run's
TensorBoard folder, linked where it lies with an absolute ``file://`` address.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.reports.assets import RunAssets
from latentprior.reports.collect import RunRecord
from latentprior.reports.tables import arrow, better, fmt

__all__ = ["write_html", "PageInput"]

_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1500px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3;vertical-align:bottom}.l{text-align:left}.r{text-align:right}
.warn{background:#fff4d6;border:1px solid #e0b84c;padding:.5em 1em}.note{color:#555;font-size:13px}
.plots img{margin:4px;border:1px solid #eee}.run{border-top:1px solid #ddd;padding:.6em 0}
.run h3{margin:.2em 0;font-size:16px}.run .meta{font-size:13px;color:#444;margin:.2em 0 .5em}
.imgs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}figure{margin:0}
figcaption{font-size:11px;color:#555;max-width:320px}img.px{image-rendering:pixelated}
.failed h3{color:#b00}code{font-size:12px;background:#f6f6f6;padding:1px 3px}"""


@dataclass(kw_only=True)
class PageInput:
    """What the page shows; built by :func:`latentprior.reports.write_report`."""

    title: str
    records: list[RunRecord]
    summary: list[dict[str, Any]]
    plots: list[Path]  # PNGs, each with an SVG beside it
    files: list[Path]  # tables to link
    note: str
    warnings: list[str]
    assets: dict[str, RunAssets]  # run name -> its copied files
    differences: list[dict[str, Any]]


def _rel(target: Path, page_dir: Path) -> str:
    return html.escape(Path(os.path.relpath(target, page_dir)).as_posix(), quote=True)


def _e(value: Any) -> str:
    return html.escape(fmt(value) if not isinstance(value, str) else value)


def _summary_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><i>no runs</i></p>"
    cols = [c for c in rows[0] if not (c.endswith("_mean") or c.endswith("_std"))]
    mets = [c[: -len("_mean")] for c in rows[0] if c.endswith("_mean")]
    head = "".join(f"<th class='l'>{html.escape(c)}</th>" for c in cols)
    head += "".join(f"<th class='r'>{html.escape(m + arrow(m))}<br>mean ± std</th>" for m in mets)
    body = []
    for r in rows:
        cells = "".join(f"<td class='l'>{_e(r[c])}</td>" for c in cols)
        for m in mets:
            mean, std = r[f"{m}_mean"], r[f"{m}_std"]
            text = "–" if math.isnan(mean) else fmt(mean) + ("" if math.isnan(std) else f" ± {fmt(std, 2)}")
            cells += f"<td class='r'>{html.escape(text)}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _differences_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><i>one run, or every run has the same config</i></p>"
    head = "".join(f"<th class='l'>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td class='l'>{_e(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _caption(r: RunRecord) -> str:
    """Model label and β first (what a reader compares), then seed and latent size."""
    lab = r.labels
    parts = [str(lab.get("model_label") or lab.get("model") or r.name)]
    parts += [f"β = {fmt(lab['beta'])}"] if lab.get("beta") is not None else []
    parts += [f"seed {lab['seed']}"] if lab.get("seed") is not None else []
    parts += [f"latent dim {lab['latent_dim']}"] if lab.get("latent_dim") is not None else []
    return " · ".join(parts)


def _run_card(r: RunRecord, assets: RunAssets, page: Path) -> str:
    metrics = " · ".join(f"{html.escape(k + arrow(k))} = {fmt(v)}" for k, v in r.metrics.items()) or "no eval results"
    n = f" (n = {r.eval_n} samples)" if r.eval_n is not None else ""
    figs = "".join(f"<figure><a href='{_rel(p, page)}'><img class='{'px' if p.stem != 'losses' else ''}' "
                   f"src='{_rel(p, page)}' width='{w}' height='{h}' alt='{html.escape(p.stem)}'></a>"
                   f"<figcaption>{html.escape(cap)}</figcaption></figure>" for p, cap, w, h in assets.images)
    links = [f"<a href='{_rel(p, page)}'>{html.escape(name)}</a>" for name, p in assets.files.items()]
    if assets.tensorboard is not None:
        links.append(f"<a href='{html.escape(assets.tensorboard.as_uri(), quote=True)}'>tb/</a> "
                     f"(<code>tensorboard --logdir {html.escape(str(assets.tensorboard))}</code>)")
    cls = "run failed" if r.status == "failed" else "run"
    return (f"<section class='{cls}' id='{html.escape(r.name, quote=True)}'><h3>{html.escape(_caption(r))}</h3>"
            f"<p class='meta'><code>{html.escape(r.name)}</code> · {html.escape(r.status)} · {metrics}{n}</p>"
            f"<div class='imgs'>{figs or '<i>no pictures: the run has not finished training</i>'}</div>"
            f"<p class='meta'>{' · '.join(links)}</p></section>")


def _directions(metrics: list[str]) -> str:
    lines = [f"{m}: {better(m)} is better" for m in metrics if better(m)]
    return "; ".join(lines) + "." if lines else ""


def write_html(out: str | Path, page_input: PageInput) -> Path:
    """Write ``out`` (an ``index.html``, atomically) from ``page_input``."""
    out, p = Path(out), page_input
    page = out.parent
    counts: dict[str, int] = {}
    for r in p.records:
        counts[r.status] = counts.get(r.status, 0) + 1
    metrics = sorted({k for r in p.records for k in r.metrics})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(p.title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(p.title)}</h1>",
             "<p>" + ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items())) + " runs. "
             f"{html.escape(p.note)} {html.escape(_directions(metrics))}</p>",
             "<p class='note'>Every number is read from <code>runs/&lt;name&gt;/eval/&lt;metric&gt;.json</code>.</p>"]
    parts += [f"<p class='warn'>⚠ {html.escape(w)}</p>" for w in p.warnings]
    parts.append("<h2>Plots</h2><div class='plots'>")
    parts += [f"<a href='{_rel(f.with_suffix('.svg'), page)}'><img src='{_rel(f, page)}' width='640' "
              f"alt='{html.escape(f.stem)}'></a>" for f in p.plots] or \
        ["<p><i>no axis with two or more values and results</i></p>"]
    parts.append("</div>" + ("<p class='note'>Click a plot for its SVG.</p>" if p.plots else "")
                 + "<h2>Summary</h2>" + _summary_table(p.summary))
    parts.append("<p>" + " · ".join(f"<a href='{_rel(f, page)}'>{html.escape(f.name)}</a>" for f in p.files) + "</p>")
    parts.append("<h2>Configs that differ</h2>" + _differences_table(p.differences))
    parts.append("<h2>Runs</h2>")
    parts += [_run_card(r, p.assets[r.name], page) for r in p.records]
    parts.append("</body></html>\n")
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out
