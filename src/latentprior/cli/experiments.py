"""Experiment verbs: ``sweep`` (train and evaluate a sweep file's runs), ``figure`` and ``report`` (read finished
runs, never train)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from latentprior.cli.options import positive_int
from latentprior.experiments.registry import EXPERIMENTS

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train and evaluate every run of a sweep file on Ray (restartable)",
                       description="Check the whole sweep first (configs, metric names, sample counts, changed "
                       "runs: exit 2 having created nothing), then train and evaluate every run not yet done. "
                       "Exit 0: all done; 1: some runs failed (listed); 130: interrupted. Schema: docs/sweeps.md.")
    p.add_argument("sweep", type=Path, help="sweep YAML (see configs/sweeps/ and docs/sweeps.md)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory: DIR/sweep.json and DIR/runs/<name>/")
    p.add_argument("--local", action="store_true", help="run trials one by one in this process, without Ray")
    p.add_argument("--address", help="join this Ray cluster ('auto' or HOST:PORT) instead of starting a local Ray "
                   "(default: a local Ray with max-concurrent x cpus_per_trial CPUs)")
    p.add_argument("--data-dir", help="dataset directory for every run (default: $LATENTPRIOR_DATA_DIR)")
    p.add_argument("--max-concurrent", type=positive_int,
                   help="trials at once (default: resources.max_concurrent, else CPUs / cpus_per_trial)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads per trial (default: resources.threads)")
    p.add_argument("--eval-n", type=positive_int,
                   help="generated samples per metric (default: eval.n; runs evaluated at another n are "
                   "re-evaluated, not retrained)")
    p.add_argument("--models", help="comma-separated model names of the sweep file to run (default: all)")
    p.add_argument("--rerun-changed", action="store_true",
                   help="train again the runs whose saved config differs from the sweep's (old folders move to "
                   "DIR/replaced/); without it such a sweep is refused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per finished run)")
    p.set_defaults(run=_sweep, distributed=False)

    p = sub.add_parser("experiment", help="reproduce a table or figure of the paper: train or reuse its models, "
                       "evaluate them, write tables and figures")
    kinds = p.add_subparsers(dest="experiment", required=True)
    for name, exp in EXPERIMENTS.items():
        e = kinds.add_parser(name, help=exp.summary)
        e.add_argument("file", type=Path, help=f"the experiment's YAML (e.g. {exp.example})")
        e.add_argument("--out", type=Path, required=True,
                       help="output folder: DIR/<model>/ run directories, tables and figures (rerun to resume)")
        e.add_argument("--data-dir", help="dataset directory for every run (default: $LATENTPRIOR_DATA_DIR)")
        e.add_argument("--weights-dir", help="folder of the VGG16/AlexNet trunks (default: $LATENTPRIOR_WEIGHTS_DIR)")
        e.add_argument("--cache-dir", help="feature and classifier cache (default: $LATENTPRIOR_CACHE_DIR)")
        e.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
        e.add_argument("--no-progress", action="store_true", help="no progress bars")
        e.set_defaults(run=_experiment, distributed=False)

    p = sub.add_parser("figure", help="draw a paper figure from a finished run")
    figs = p.add_subparsers(dest="figure", required=True)
    f = figs.add_parser("latent2d", help="Fig. 2: f(z) and q(z) coloured by class, q(z), f^-1(u) (latent dim 2)")
    f.add_argument("run_dir", type=Path, help="a finished run folder with a 2-D latent space")
    f.add_argument("--out", type=Path, help="PNG path (default: RUN_DIR/figures/latent2d.png)")
    f.add_argument("--n", type=positive_int, default=5000, help="images encoded (and prior samples drawn)")
    f.add_argument("--split", default="test", help="dataset split whose labels colour the points")
    f.add_argument("--data-dir", help="dataset directory (default: the run's data.dir)")
    f.add_argument("--seed", type=int, default=0, help="seed of the image choice and of the prior draws")
    f.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    f.set_defaults(run=_latent2d, distributed=False)

    p = sub.add_parser("report", help="plots, tables and an HTML page from finished runs (never trains)",
                       description="A self-contained report folder (images copied in; it can be moved or shared): "
                       "index.html, PNG + SVG plots, CSV/Markdown tables, per-run samples, reconstructions, "
                       "interpolations and loss curves.")
    p.add_argument("path", type=Path, help="a sweep folder, a plain folder of runs, or one run folder")
    p.add_argument("--out", type=Path, help="output folder (default: PATH/report)")
    p.add_argument("--metric", help="metric plotted against β and latent dimension (default: fid when the runs "
                   "have it, else their first metric)")
    p.set_defaults(run=_report, distributed=False)


def _sweep(args: argparse.Namespace) -> dict:
    from latentprior.experiments.executor import run_sweep
    from latentprior.experiments.grid import load_sweep

    spec = load_sweep(args.sweep)

    def _term(signum, frame):  # SIGTERM (kill, a batch system) ends the sweep like Ctrl-C: state saved
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        result = run_sweep(spec, args.out, executor="local" if args.local else "ray", address=args.address,
                           data_dir=args.data_dir, max_concurrent=args.max_concurrent, threads=args.threads,
                           models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
                           eval_n=args.eval_n, progress=not args.no_progress, sweep_file=str(args.sweep.resolve()),
                           rerun_changed=args.rerun_changed)
    except KeyboardInterrupt:  # an interruption, not an error: 130 as a shell reports Ctrl-C
        print(f"interrupted: {args.out}/sweep.json is saved; rerun the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result["failed"]:  # the summary still goes to stdout; the status tells scripts and CI
        print(json.dumps(result, default=str))
        print(f"error: {len(result['failed'])} of {result['trials']} runs failed: {', '.join(result['failed'])} "
              f"(tracebacks in {args.out}/runs/<name>/trial.log)", file=sys.stderr)
        raise SystemExit(1)
    return result


def _experiment(args: argparse.Namespace) -> dict:
    exp = EXPERIMENTS[args.experiment]
    return exp.run(exp.load(args.file), args.out, data_dir=args.data_dir, weights_dir=args.weights_dir,
                   cache_dir=args.cache_dir, device=args.device, progress=not args.no_progress)


def _latent2d(args: argparse.Namespace) -> dict:
    from latentprior.reports.figures import latent2d_figure

    return latent2d_figure(args.run_dir, args.out, n=args.n, split=args.split, data_dir=args.data_dir,
                           seed=args.seed, device=args.device)


def _report(args: argparse.Namespace) -> dict:
    from latentprior.reports import write_report

    return write_report(args.path, args.out, metric=args.metric)
