"""A static HTML page for a set of runs: warnings, plots, the summary table, the configs that differ, and one
card per run (samples, reconstructions, interpolation, loss curves, links).

Every link and image is relative to the page. Images and tables point inside the report folder (reports/assets.py
copies the runs' files in), so the folder can be moved or served as it is; each run's TensorBoard folder is not
copied and is linked where it lies, relative to the page (it resolves while the report stays beside its runs, e.g.
in its sweep folder). Pictures are shown at their own resolution (image grids at an integer multiple, pixels kept
square) and open full-window on a click; without JavaScript the click opens the image file itself.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.reports.assets import RunAssets
from latentprior.reports.collect import RunRecord
from latentprior.reports.tables import arrow, better, fmt, fmt_mean_std, fmt_value, is_value_column

__all__ = ["write_html", "PageInput"]

_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1500px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3;vertical-align:bottom}.l{text-align:left}.r{text-align:right}
.warn{background:#fff4d6;border:1px solid #e0b84c;padding:.5em 1em}.note{color:#555;font-size:13px}
.plots img{margin:4px;border:1px solid #eee}.run{border-top:1px solid #ddd;padding:.6em 0}
.run h3{margin:.2em 0;font-size:16px}.run .meta{font-size:13px;color:#444;margin:.2em 0 .5em}
.imgs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}figure{margin:0}
figcaption{font-size:11px;color:#555;max-width:320px}img.px{image-rendering:pixelated}
.failed h3{color:#b00}code{font-size:12px;background:#f6f6f6;padding:1px 3px}.partial h3{color:#8a5a00}
a.zoom{cursor:zoom-in}#lb{position:fixed;inset:0;background:rgba(0,0,0,.85);display:none;align-items:center;
justify-content:center;cursor:zoom-out;z-index:9}#lb.on{display:flex}#lb img{max-width:96vw;max-height:92vh;
object-fit:contain}#lb img.px{image-rendering:pixelated;width:96vw;height:92vh}
#lb p{position:fixed;bottom:4px;color:#eee;font-size:13px;margin:0}"""

# Click-to-enlarge: any a.zoom opens its image over the page, scaled to the window (pixelated for image grids).
_LIGHTBOX = """<div id='lb' role='dialog' aria-label='enlarged image'><img alt=''><p></p></div>
<script>(() => { const lb = document.getElementById('lb'), im = lb.querySelector('img'), cap = lb.querySelector('p');
document.querySelectorAll('a.zoom').forEach(a => a.addEventListener('click', e => { e.preventDefault();
  const src = a.querySelector('img'); im.src = a.getAttribute('href'); im.className = src ? src.className : '';
  cap.textContent = a.dataset.caption || ''; lb.classList.add('on'); }));
lb.addEventListener('click', () => lb.classList.remove('on'));
document.addEventListener('keydown', e => { if (e.key === 'Escape') lb.classList.remove('on'); }); })();</script>"""


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
        cells = "".join(f"<td class='r'>{html.escape(fmt_value(r[c]))}</td>" if is_value_column(c)
                        and isinstance(r[c], float) else f"<td class='l'>{_e(r[c])}</td>" for c in cols)
        cells += "".join(f"<td class='r'>{html.escape(fmt_mean_std(r[f'{m}_mean'], r[f'{m}_std']))}</td>"
                         for m in mets)
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
    parts = [str(lab.get("model_label") or lab.get("model") or r.name)]  # the sweep's label, else the model name
    parts += [f"β = {fmt(lab['beta'])}"] if lab.get("beta") is not None else []
    parts += [f"seed {lab['seed']}"] if lab.get("seed") is not None else []
    parts += [f"latent dim {lab['latent_dim']}"] if lab.get("latent_dim") is not None else []
    return " · ".join(parts)


def _figure(p: Path, caption: str, w: int, h: int, page: Path) -> str:
    """One picture at its display size, linked to its file and opened full-window on a click."""
    cls = "" if p.stem == "losses" else "px"
    return (f"<figure><a class='zoom' href='{_rel(p, page)}' data-caption='{html.escape(caption, quote=True)}'>"
            f"<img class='{cls}' src='{_rel(p, page)}' width='{w}' height='{h}' alt='{html.escape(p.stem)}'></a>"
            f"<figcaption style='max-width:{max(w, 200)}px'>{html.escape(caption)} ({w} px; click to enlarge)"
            "</figcaption></figure>")


def _run_card(r: RunRecord, assets: RunAssets, page: Path) -> str:
    metrics = " · ".join(f"{html.escape(k + arrow(k))} = {fmt_value(v)}" for k, v in r.metrics.items()) \
        or "no eval results"
    n = f" (n = {r.eval_n} samples)" if r.eval_n is not None else ""
    figs = "".join(_figure(p, cap, w, h, page) for p, cap, w, h in assets.images)
    links = [f"<a href='{_rel(p, page)}'>{html.escape(name)}</a>" for name, p in assets.files.items()]
    if assets.tensorboard is not None:
        rel = Path(os.path.relpath(assets.tensorboard, page)).as_posix()
        links.append(f"<a href='{html.escape(rel, quote=True)}/'>tb/</a> (<code>tensorboard --logdir "
                     f"{html.escape(rel)}</code>, from this page's folder)")
    cls = {"failed": "run failed", "partial": "run partial"}.get(_kind(r.status), "run")
    return (f"<section class='{cls}' id='{html.escape(r.name, quote=True)}'><h3>{html.escape(_caption(r))}</h3>"
            f"<p class='meta'><code>{html.escape(r.name)}</code> · {html.escape(r.status)} · {metrics}{n}</p>"
            f"<div class='imgs'>{figs or '<i>no pictures: the run has not finished training</i>'}</div>"
            f"<p class='meta'>{' · '.join(links)}</p></section>")


def _kind(status: str) -> str:
    """'partial' for 'partial (200/2400 steps)'; other statuses as they are."""
    return status.split(" (")[0]


def _directions(metrics: list[str]) -> str:
    lines = [f"{m}: {better(m)} is better" for m in metrics if better(m)]
    return "; ".join(lines) + "." if lines else ""


def write_html(out: str | Path, page_input: PageInput) -> Path:
    """Write ``out`` (an ``index.html``, atomically) from ``page_input``."""
    out, p = Path(out), page_input
    page = out.parent
    counts: dict[str, int] = {}
    for r in p.records:
        counts[_kind(r.status)] = counts.get(_kind(r.status), 0) + 1
    metrics = sorted({k for r in p.records for k in r.metrics})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(p.title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(p.title)}</h1>",
             "<p>" + ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items())) + " runs. "
             f"{html.escape(p.note)} {html.escape(_directions(metrics))}</p>",
             "<p class='note'>Every number is read from <code>runs/&lt;name&gt;/eval/&lt;metric&gt;.json</code>.</p>"]
    parts += [f"<p class='warn'>⚠ {html.escape(w)}</p>" for w in p.warnings]
    parts.append("<h2>Plots</h2><div class='plots'>")
    parts += [f"<a class='zoom' href='{_rel(f, page)}'><img src='{_rel(f, page)}' width='640' "
              f"alt='{html.escape(f.stem)}'></a> <a href='{_rel(f.with_suffix('.svg'), page)}'>SVG</a>"
              for f in p.plots] or \
        ["<p><i>no axis with two or more values and results</i></p>"]
    parts.append("</div>" + ("<p class='note'>Click a plot to enlarge it; SVG links beside each.</p>"
                             if p.plots else "")
                 + "<h2>Summary</h2>" + _summary_table(p.summary))
    parts.append("<p>" + " · ".join(f"<a href='{_rel(f, page)}'>{html.escape(f.name)}</a>" for f in p.files) + "</p>")
    parts.append("<h2>Configs that differ</h2>" + _differences_table(p.differences))
    parts.append("<h2>Runs</h2>")
    parts += [_run_card(r, p.assets[r.name], page) for r in p.records]
    parts.append(_LIGHTBOX + "</body></html>\n")
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out
