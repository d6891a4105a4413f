"""``latentprior eval``: its options are the fields of :class:`~latentprior.config.EvalConfig`, whose defaults
and checks are the CLI's (one source for the CLI, the runner and sweep files)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Literal

from latentprior.cli.options import add_data_options
from latentprior.config import EvalConfig, eval_config_from_dict

__all__ = ["register", "eval_config_from_args"]

_HELP = {
    "n": "generated samples (the reference side uses min(n, |test|) test images)",
    "batch_size": "images per forward pass (changes the speed, not the result)",
    "nll_k": "importance samples per test image for the IW-NLL",
    "seed": "the generated set depends on (seed, n) only",
    "n_ref": "test images on the reference side (0: min(n, |test|)); e.g. --n 5000 --n-ref 10000",
    "lpips_net": "trunk of the LPIPS sample-diversity metric",
    "lpips_pairs": "generated pairs the LPIPS diversity averages over",
    "temperature": "sampling temperature of fid, pr and kid (1: the prior itself); records at T != 1 go to "
                   "eval/temperature=T/",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a finished run (never trains); writes RUN_DIR/eval/<metric>.json")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    defaults, hints = EvalConfig(), typing.get_type_hints(EvalConfig)
    for f in dataclasses.fields(EvalConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        help_text = _HELP.get(f.name, f.name.replace("_", " "))
        if typing.get_origin(hints[f.name]) is Literal:
            p.add_argument(flag, choices=typing.get_args(hints[f.name]), default=default, help=help_text)
        elif f.name == "metrics":
            # Not listed here: the registry loads torch, which `latentprior report` never needs. A wrong name's
            # error lists every registered metric.
            p.add_argument(flag, default=",".join(default),
                           help="comma-separated metric names, e.g. fid,pr,kid,nll")
        else:  # the field's checks (e.g. n >= 2) run when EvalConfig is built, with its one-line message
            p.add_argument(flag, type=type(default), default=default, help=help_text)
    add_data_options(p)
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    p.add_argument("--prior", help="evaluate with a prior fitted into the run (RUN_DIR/priors/NAME) instead of its "
                   "own; records go to RUN_DIR/priors/NAME/eval/")
    p.set_defaults(run=_evaluate, distributed=False)


def eval_config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The :class:`EvalConfig` the options describe (``--metrics`` split on commas)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalConfig)}
    values["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    return eval_config_from_dict(values)


def _evaluate(args: argparse.Namespace) -> dict:
    from latentprior.evaluation.registry import check_metrics
    from latentprior.evaluation.runner import evaluate_run

    eval_cfg = eval_config_from_args(args)
    check_metrics(eval_cfg.metrics)  # before the model and the data are loaded
    result = evaluate_run(args.run_dir, eval_cfg, data_dir=args.data_dir, device=args.device, prior=args.prior)
    if args.prior is None and eval_cfg.temperature == 1.0:
        from latentprior.training.tensorboard import write_hparams

        write_hparams(args.run_dir)  # TensorBoard's hparams table: the run's config with these metrics
    return result
