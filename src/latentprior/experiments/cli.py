"""Experiment commands of the CLI (sweeps, figures, reports) — registered into ``latentprior``'s parser.

    latentprior sweep SWEEP.yaml --out DIR [--address RAY_ADDRESS] [--data-dir DIR]
                      [--max-concurrent N] [--threads T] [--models A,B] [--eval-n N] [--local]
    latentprior figure latent2d RUN_DIR [--out FILE.png] [--n N] [--split test] [--data-dir DIR]
    latentprior report DIR [--out DIR/report] [--metric fid]
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_experiment_commands", "EXPERIMENT_COMMANDS"]


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train and evaluate every run of a sweep file on Ray (restartable)")
    p.add_argument("sweep", type=Path, help="sweep YAML (see configs/sweeps/)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory: DIR/sweep.json and DIR/runs/<name>/")
    p.add_argument("--address", help="join this Ray cluster ('auto' or HOST:PORT) instead of starting a local Ray")
    p.add_argument("--data-dir", help="dataset directory for every run (default: $LATENTPRIOR_DATA_DIR)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (overrides resources.max_concurrent)")
    p.add_argument("--threads", type=int, help="torch CPU threads per trial (overrides resources.threads)")
    p.add_argument("--eval-n", type=int, help="samples for FID & co. (overrides eval.n; other-n results are redone)")
    p.add_argument("--models", help="comma-separated model names of the sweep to run (default: all)")
    p.add_argument("--local", action="store_true", help="run trials one by one in this process, without Ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def _add_figure(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("figure", help="draw a paper figure from a finished run")
    figs = p.add_subparsers(dest="figure", required=True)
    f = figs.add_parser("latent2d", help="Fig. 2: f(z) and q(z) coloured by class, q(z), f^-1(u) (latent dim 2)")
    f.add_argument("run_dir", type=Path)
    f.add_argument("--out", type=Path, help="PNG path (default: RUN_DIR/figures/latent2d.png)")
    f.add_argument("--n", type=int, default=5000, help="images encoded (and prior samples drawn)")
    f.add_argument("--split", default="test", help="dataset split whose labels colour the points")
    f.add_argument("--data-dir")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--device")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots, tables and an HTML page from a sweep's finished runs (never trains)")
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--out", type=Path, help="output folder (default: SWEEP_DIR/report)")
    p.add_argument("--metric", default="fid", help="metric plotted against β and latent dimension")


def _cmd_sweep(args: argparse.Namespace) -> dict:
    from latentprior.experiments.executor import run_sweep
    from latentprior.experiments.grid import load_sweep

    spec = load_sweep(args.sweep)

    def _term(signum, frame):  # SIGTERM (kill, a batch system) ends the sweep like Ctrl-C: state saved
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        return run_sweep(spec, args.out, executor="local" if args.local else "ray", address=args.address,
                         data_dir=args.data_dir, max_concurrent=args.max_concurrent, threads=args.threads,
                         models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
                         eval_n=args.eval_n,
                         progress=not args.no_progress, sweep_file=str(args.sweep.resolve()))
    except KeyboardInterrupt:
        print(f"interrupted: {args.out}/sweep.json is saved; rerun the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cmd_figure(args: argparse.Namespace) -> dict:
    from latentprior.experiments.figures import latent2d_figure

    if args.figure == "latent2d":
        try:
            return latent2d_figure(args.run_dir, args.out, n=args.n, split=args.split, data_dir=args.data_dir,
                                   seed=args.seed, device=args.device)
        except ValueError as e:  # a run without a 2-D latent or without a flow prior
            raise SystemExit(f"error: {e}") from None
    raise SystemExit(f"error: unknown figure {args.figure!r}")  # pragma: no cover - argparse checks choices


def _cmd_report(args: argparse.Namespace) -> dict:
    from latentprior.reports import write_report

    try:
        return write_report(args.sweep_dir, args.out, metric=args.metric)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}") from None


EXPERIMENT_COMMANDS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "sweep": _cmd_sweep, "figure": _cmd_figure, "report": _cmd_report}


def add_experiment_commands(sub: argparse._SubParsersAction) -> None:
    """Add the experiment sub-commands to the main parser."""
    _add_sweep(sub)
    _add_figure(sub)
    _add_report(sub)
