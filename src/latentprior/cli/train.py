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
from latentprior.config.sections import EXPOST_PRIORS
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

    p = sub.add_parser("train-prior", help="train the run's prior alone for more epochs on its frozen encoder "
                       "(--epochs), or fit a new prior into the run without touching the autoencoder (--prior)")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--epochs", type=positive_float, help="prior-only epochs to add to the run's own prior")
    how.add_argument("--prior", choices=EXPOST_PRIORS,
                     help="fit a prior of this kind on the encoded training set into RUN_DIR/priors/NAME/")
    p.add_argument("--name", help="with --prior: the fitted prior's name (default: the kind)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="prior.KEY=VALUE",
                   help="with --prior: a prior option (repeatable), e.g. prior.components=10 prior.epochs=50")
    p.add_argument("--replace", action="store_true", help="with --prior: refit a prior of that name")
    p.add_argument("--device", help="with --prior: cpu, cuda, cuda:N (default: CUDA when available)")
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

    if args.prior is not None:
        return _fit_prior(args)
    extra = [flag for flag, on in (("--name", args.name), ("--set", args.overrides), ("--replace", args.replace),
                                   ("--device", args.device)) if on]
    if extra:
        raise UsageError(f"{', '.join(extra)} only go with --prior (a new prior fitted into the run)")
    cfg = _run_config(args.run_dir, args)
    if not cfg.prior.is_learnable:  # the config would refuse the epochs too, with advice meant for a new config
        raise UsageError(f"{args.run_dir} has a fixed prior (prior.kind '{cfg.prior.kind}', N(0, I)): "
                         "train-prior has nothing to train")
    with _writer_lock(args.run_dir):
        # Re-read under the lock: epochs are added to what the run holds now, not to what it held a moment ago.
        cfg = _run_config(args.run_dir, args)
        return train(cfg.replace(**{"train.prior_epochs": cfg.train.prior_epochs + args.epochs}), args.run_dir)


def _fit_prior(args: argparse.Namespace) -> dict:
    """``train-prior RUN --prior KIND``: one process fits it (under torchrun, rank 0 alone writes it)."""
    from latentprior.config import expost_config
    from latentprior.training.distributed import current
    from latentprior.training.expost import fit_run_prior

    cfg = expost_config(args.prior, args.overrides)  # checked before the run is read
    if not current().is_main:
        return {}
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    return fit_run_prior(args.run_dir, cfg, args.name, data_dir=data_dir, device=args.device, replace=args.replace)
