"""``latentprior report``: plots, tables and an HTML page from finished runs (latentprior.reports; never trains)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots, tables and an HTML page from finished runs (never trains)",
                       description="A self-contained report folder (images copied in; it can be moved or shared): "
                       "index.html, PNG + SVG plots, CSV/Markdown tables, per-run samples, reconstructions, "
                       "interpolations and loss curves.")
    p.add_argument("path", type=Path, help="a sweep folder, a plain folder of runs, or one run folder")
    p.add_argument("--out", type=Path, help="output folder (default: PATH/report)")
    p.add_argument("--metric", help="metric plotted against β and latent dimension (default: fid when the runs "
                   "have it, else their first metric)")
    p.set_defaults(run=_report, distributed=False)


def _report(args: argparse.Namespace) -> dict:
    from latentprior.reports import write_report

    return write_report(args.path, args.out, metric=args.metric)
