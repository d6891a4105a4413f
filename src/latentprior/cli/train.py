"""Training verbs: ``train``, ``resume``, ``train-prior`` (the only verbs that join a torchrun process group)."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentprior.cli.options import (
    add_data_options,
    add_weights_options,
    data_overrides,
    positive_float,
    positive_int,
)
from latentprior.errors import UsageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a new run from a YAML config")
    p.add_argument("config", help="run config: a YAML file, or a built-in preset (default, cpu/mnist_vae_flow, ...: "
                   "the configs/ folder, shipped inside the package)")
    p.add_argument("--out", type=Path, required=True, help="run directory (must not hold a run yet)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    add_data_options(p, fetch=True)
    add_weights_options(p)
    p.add_argument("--max-steps", type=positive_int, help="stop at this global step (continue with resume)")
    p.add_argument("--seed", type=int, help="train.seed")
    p.set_defaults(run=_train, distributed=True)

    p = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    p.add_argument("--max-steps", type=positive_int, help="stop at this global step")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="change a key a run may change mid-run (learning rates, budget, intervals, threads, device, "
                   "progress; recorded in the run's config history); repeatable")
    add_data_options(p)
    add_weights_options(p)
    p.set_defaults(run=_resume, distributed=True)

    p = sub.add_parser("train-prior", help="train the prior alone for more epochs on a run's frozen encoder")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    p.add_argument("--epochs", type=positive_float, required=True, help="prior-only epochs to add")
    add_data_options(p)
    add_weights_options(p)
    p.set_defaults(run=_train_prior, distributed=True)


def _writer_lock(run_dir: Path):
    """The run directory's advisory lock (training/lock.py), held by the one process that writes: rank 0 under
    torchrun, which every other rank's shard reports to. A second writer fails at once, naming this one."""
    import contextlib

    from latentprior.rundir.lock import run_lock
    from latentprior.training.distributed import current

    return run_lock(run_dir) if current().is_main else contextlib.nullcontext()


def _run_config(run_dir: Path, args: argparse.Namespace):
    """The checkpoint's config with the data options and (resume) the ``--set`` changes a resume may make."""
    from latentprior.config import apply_overrides
    from latentprior.rundir.checkpoints import check_resume_overrides, load_checkpoint

    changes = list(getattr(args, "overrides", []))
    check_resume_overrides([c.split("=", 1)[0].strip() for c in changes])  # before the checkpoint is read
    cfg = load_checkpoint(run_dir)["config"]
    extra = data_overrides(args) + changes
    return apply_overrides(cfg, extra) if extra else cfg


def _train(args: argparse.Namespace) -> dict:
    from latentprior.config import load_config
    from latentprior.config.presets import resolve_config
    from latentprior.rundir.checkpoints import latest_checkpoint
    from latentprior.training import train

    overrides = list(args.overrides) + data_overrides(args)
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    cfg = load_config(resolve_config(args.config), overrides)
    with _writer_lock(args.out):  # before the check below, so a run still being written is named with its pid
        if latest_checkpoint(args.out) is not None:
            raise UsageError(f"{args.out} already holds a run; use `latentprior resume {args.out}` "
                             "or choose another --out")
        return train(cfg, args.out, max_steps=args.max_steps)


def _resume(args: argparse.Namespace) -> dict | str:
    from latentprior.training import train

    cfg = _run_config(args.run_dir, args)  # first: a folder without a run gets no lock file
    with _writer_lock(args.run_dir):
        summary = train(cfg, args.run_dir, max_steps=args.max_steps)
    if summary.get("nothing_to_do"):  # not an error: one line, exit 0, the run left as it was
        return f"{args.run_dir}: {summary['nothing_to_do']}; nothing to do, nothing changed"
    return summary


def _train_prior(args: argparse.Namespace) -> dict:
    from latentprior.training import train

    cfg = _run_config(args.run_dir, args)
    if not cfg.prior.is_learnable:  # the config would refuse the epochs too, with advice meant for a new config
        raise UsageError(f"{args.run_dir} has a fixed prior (prior.kind '{cfg.prior.kind}', N(0, I)): "
                         "train-prior has nothing to train")
    with _writer_lock(args.run_dir):
        # Re-read under the lock: epochs are added to what the run holds now, not to what it held a moment ago.
        cfg = _run_config(args.run_dir, args)
        return train(cfg.replace(**{"train.prior_epochs": cfg.train.prior_epochs + args.epochs}), args.run_dir)
