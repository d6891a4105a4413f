"""Fig. 3 and Fig. 5 style plots from summary rows (see :func:`latentprior.reports.tables.summarize`).

* metric vs β, one panel per dataset, one line per model, mean ± std over seeds as error bars. As in the
  paper, the β axis is categorical ("not to scale"): 0 and 1e-2 would not share a log axis.
* metric vs latent dimension, one panel per dataset, one line per (model, β).
* a run's loss curves from its ``metrics.jsonl``, one labelled panel per loss (>= 700 px wide), the prior-only
  phase shaded.

Every plot names its eval sample count on the y axis; rows of different sample counts go to separate files
(``…_n200.png``), never onto one axis. Plots are written as PNG (150 dpi) and, for the summary plots, SVG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes
from latentprior.reports.tables import better

__all__ = ["plot_metric_vs", "plot_vs_beta", "plot_vs_latent_dim", "plot_losses", "pyplot", "save_figure",
           "LOSS_DPI"]

LOSS_DPI = 100  # loss curves: one image pixel per CSS pixel, so the page shows them at their own size

_NAMES = {"beta": "β", "latent_dim": "dim"}


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _distinct(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return sorted({r[key] for r in rows if r.get(key) is not None})


def save_figure(fig, out: str | Path, dpi: int = 150, *, svg: bool = False) -> Path:
    """Write a matplotlib figure as PNG (and, with ``svg``, as SVG beside it) atomically, close it, return the
    PNG's path."""
    out = Path(out)
    formats = [("png", out)] + ([("svg", out.with_suffix(".svg"))] if svg else [])
    import matplotlib

    try:
        # SVG text stays text (not glyph outlines): searchable, and editable for a paper's figure.
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            for fmt_, path in formats:
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt_, dpi=dpi, bbox_inches="tight")
                atomic_write_bytes(path, buf.getvalue())
    finally:
        pyplot().close(fig)
    return out


def plot_metric_vs(rows: list[dict[str, Any]], x: str, metric: str, out: str | Path, *, line_keys: tuple[str, ...],
                   title: str = "", categorical: bool = True, xlabel: str | None = None) -> Path | None:
    """One line per distinct ``line_keys`` value, x = ``rows[x]``, y = ``<metric>_mean`` ± ``<metric>_std``.

    Returns None (and writes nothing) when no row has a value for ``metric``.
    """
    rows = [r for r in rows if not math.isnan(r.get(f"{metric}_mean", math.nan))]
    if not rows:
        return None
    plt = pyplot()
    xs = _distinct(rows, x)
    pos = {v: i for i, v in enumerate(xs)} if categorical else {v: v for v in xs}
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault(tuple(r.get(k) for k in line_keys), []).append(r)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (key, members) in enumerate(sorted(lines.items(), key=lambda kv: str(kv[0]))):
        members.sort(key=lambda r: r[x])
        # A small horizontal dodge per line keeps overlapping error bars apart.
        dodge = (i - (len(lines) - 1) / 2) * 0.04
        px = [pos[r[x]] + dodge if categorical else pos[r[x]] * 2 ** dodge for r in members]
        py = [r[f"{metric}_mean"] for r in members]
        stds = [r[f"{metric}_std"] for r in members]
        err = None if all(math.isnan(e) for e in stds) else [0.0 if math.isnan(e) else e for e in stds]
        seeds = sorted({r["n"] for r in members})
        label = ", ".join(str(members[0].get("model")) if k == "model" else
                          f"{_NAMES.get(k, k)} = {v:g}" if isinstance(v, int | float) else f"{k} = {v}"
                          for k, v in zip(line_keys, key, strict=True))
        label += f" ({_range(seeds)} seed{'s' if seeds[-1] != 1 else ''})"
        ax.errorbar(px, py, yerr=err, marker="os^Dv<>p"[i % 8], capsize=3, label=label)
    if categorical:
        ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, int | float) else str(v) for v in xs])
    else:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(v) for v in xs])
    ax.set_xlabel(xlabel or x)
    samples = sorted({r.get("eval_n") for r in rows}, key=str)
    on = f"n = {samples[0]} samples" if samples != [None] else "sample count not recorded"
    direction = better(metric)
    ax.set_ylabel(f"{_metric_name(metric)} ({on}; mean ± std over seeds)"
                  + (f"\n{direction} is better" if direction else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, out, svg=True)


def _range(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _metric_name(metric: str) -> str:
    return metric.upper() if metric in ("fid", "kid", "nll") else metric


def plot_vs_beta(rows: list[dict[str, Any]], out_dir: str | Path, metric: str = "fid") -> list[Path]:
    """``<metric>_vs_beta_<dataset>.png`` for each dataset whose runs vary β."""

    def lines(sub: list[dict[str, Any]]) -> tuple[str, ...]:
        # Several latent sizes in one dataset (a Fig. 5 sweep): keep them apart as separate lines.
        return ("model", "latent_dim") if len(_distinct(sub, "latent_dim")) > 1 else ("model",)

    return _per_dataset(rows, out_dir, metric, "beta", lines, categorical=True, xlabel="β",
                        title="{ds}: {m} vs β (x not to scale)")


def plot_vs_latent_dim(rows: list[dict[str, Any]], out_dir: str | Path, metric: str = "fid") -> list[Path]:
    """``<metric>_vs_latent_dim_<dataset>.png`` for each dataset whose runs vary the latent dimension."""
    return _per_dataset(rows, out_dir, metric, "latent_dim", lambda sub: ("model", "beta"), categorical=False,
                        xlabel="latent dimension", title="{ds}: {m} vs latent dimension")


def _per_dataset(rows: list[dict[str, Any]], out_dir: str | Path, metric: str, x: str,
                 line_keys: Callable[[list[dict[str, Any]]], tuple[str, ...]], *, categorical: bool, xlabel: str,
                 title: str) -> list[Path]:
    """One :func:`plot_metric_vs` figure per dataset (and per eval sample count, when there are several) whose
    runs take at least two values of ``x``."""
    paths = []
    counts = sorted({r.get("eval_n") for r in rows}, key=str)
    for ds in _distinct(rows, "dataset"):
        for n in counts:
            sub = [r for r in rows if r["dataset"] == ds and r.get("eval_n") == n]
            if len(_distinct(sub, x)) < 2:
                continue
            suffix = f"_n{n}" if len(counts) > 1 else ""
            p = plot_metric_vs(sub, x, metric, Path(out_dir) / f"{metric}_vs_{x}_{ds}{suffix}.png",
                               line_keys=line_keys(sub), categorical=categorical, xlabel=xlabel,
                               title=title.format(ds=ds, m=_metric_name(metric)))
            if p:
                paths.append(p)
    return paths


def plot_losses(records: list[dict[str, Any]], out: str | Path, title: str = "") -> Path | None:
    """One panel per ``*/loss`` of a run's metrics.jsonl records against the step, the prior-only phase shaded;
    at least 700 px wide at :data:`LOSS_DPI` (shown at its own size), every axis labelled. None (nothing written)
    when no record holds a loss."""
    keys = sorted({k for r in records for k in r if k.endswith("/loss")})
    if not keys:
        return None
    plt = pyplot()
    ncols = min(len(keys), 3)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.0, 3.4 * ncols), 2.9 * nrows), squeeze=False)
    prior_steps = [r["step"] for r in records if r.get("phase") == "prior"]
    for ax, key in zip(axes.flat, keys, strict=False):  # a last row may have empty panels
        pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        if prior_steps:
            ax.axvspan(min(prior_steps), max(prior_steps), color="0.9", zorder=0, label="prior-only phase")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("training step", fontsize=9)
        ax.set_ylabel(key.split("/")[0] + " loss", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=LOSS_DPI)
