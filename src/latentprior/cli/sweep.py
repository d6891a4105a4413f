"""``latentprior sweep``: train and evaluate every run of a sweep file (latentprior.sweeps)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latentprior.cli.options import add_weights_options, positive_int
from latentprior.interrupts import exit_status
from latentprior.rundir import SweepDir

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train and evaluate every run of a sweep file on Ray (restartable)",
                       description="Check the whole sweep first (configs, metric names, sample counts, changed "
                       "runs: exit 2 having created nothing), then train and evaluate every run not yet done. "
                       "Exit 0: all done; 1: some runs failed (listed); 130: interrupted. Schema: docs/sweeps.md.")
    p.add_argument("sweep", type=Path, help="sweep YAML (see configs/sweeps/ and docs/sweeps.md)")
    p.add_argument("--out", type=Path, required=True,
                   help="sweep directory: its state file and one run directory per run (docs/sweeps.md)")
    p.add_argument("--local", action="store_true", help="run trials one by one in this process, without Ray")
    p.add_argument("--address", help="join this Ray cluster ('auto' or HOST:PORT) instead of starting a local Ray "
                   "(default: a local Ray with max-concurrent x cpus_per_trial CPUs)")
    p.add_argument("--data-dir", help="dataset directory for every run (default: $LATENTPRIOR_DATA_DIR)")
    add_weights_options(p, cache=True)
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


def _sweep(args: argparse.Namespace) -> dict:
    from latentprior.sweeps.executor import run_sweep
    from latentprior.sweeps.grid import load_sweep

    spec = load_sweep(args.sweep)
    try:  # SIGTERM (kill, a batch system) ends the sweep like Ctrl-C (cli.main's stop_at_once): state saved
        result = run_sweep(spec, args.out, executor="local" if args.local else "ray", address=args.address,
                           data_dir=args.data_dir, max_concurrent=args.max_concurrent, threads=args.threads,
                           models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
                           eval_n=args.eval_n, progress=not args.no_progress, sweep_file=str(args.sweep.resolve()),
                           rerun_changed=args.rerun_changed)
    except KeyboardInterrupt as e:  # an interruption, not an error: 130 (SIGINT) or 143 (SIGTERM), as a shell says
        print(f"interrupted: {SweepDir(args.out).state} is saved (the runs in flight as 'interrupted', each stopped "
              "at a checkpoint); rerun the same command to continue", file=sys.stderr)
        raise SystemExit(exit_status(e)) from None
    if result["failed"]:  # the summary still goes to stdout; the status tells scripts and CI
        print(json.dumps(result, default=str))
        logs = ", ".join(str(SweepDir(args.out).run(name).trial_log) for name in result["failed"][:3])
        print(f"error: {len(result['failed'])} of {result['trials']} runs failed: {', '.join(result['failed'])} "
              f"(tracebacks in {logs}{', ...' if len(result['failed']) > 3 else ''})", file=sys.stderr)
        raise SystemExit(1)
    return result
