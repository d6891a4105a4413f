"""Fig. 3 and Fig. 5 style plots from summary rows (see :func:`latentprior.reports.tables.summarize`).

* metric vs β, one panel per dataset, one line per model, mean ± std over seeds as error bars. As in the
  paper, the β axis is categorical ("not to scale"): 0 and 1e-2 would not share a log axis.
* metric vs latent dimension, one panel per dataset, one line per (model, β).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["plot_metric_vs", "plot_vs_beta", "plot_vs_latent_dim", "pyplot", "save_figure"]

_NAMES = {"beta": "β", "latent_dim": "dim"}


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _distinct(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return sorted({r[key] for r in rows if r.get(key) is not None})


def save_figure(fig, out: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG (parent folders made), close it, return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
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
        err = [0.0 if math.isnan(r[f"{metric}_std"]) else r[f"{metric}_std"] for r in members]
        ns = sorted({r["n"] for r in members})
        label = ", ".join(str(members[0].get("model_label")) if k == "model" else
                          f"{_NAMES.get(k, k)} = {v:g}" if isinstance(v, int | float) else f"{k} = {v}"
                          for k, v in zip(line_keys, key, strict=True))
        label += f" (n={ns[0]})" if len(ns) == 1 else f" (n={ns[0]}–{ns[-1]})"
        ax.errorbar(px, py, yerr=err, marker="os^Dv<>p"[i % 8], capsize=3, label=label)
    if categorical:
        ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, int | float) else str(v) for v in xs])
    else:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(v) for v in xs])
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(f"{metric.upper() if metric == 'fid' else metric} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, out, dpi=110)


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
    """One :func:`plot_metric_vs` figure per dataset whose runs take at least two values of ``x``."""
    paths = []
    for ds in _distinct(rows, "dataset"):
        sub = [r for r in rows if r["dataset"] == ds]
        if len(_distinct(sub, x)) < 2:
            continue
        p = plot_metric_vs(sub, x, metric, Path(out_dir) / f"{metric}_vs_{x}_{ds}.png", line_keys=line_keys(sub),
                           categorical=categorical, xlabel=xlabel, title=title.format(ds=ds, m=metric.upper()))
        if p:
            paths.append(p)
    return paths
