"""``latentprior eval``: its options are the fields of :class:`~latentprior.config.EvalConfig`, whose defaults,
descriptions and checks are the CLI's (one source for the CLI, the runner, sweep files and docs/config.md)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Literal

from latentprior.cli.options import add_data_options, add_weights_options
from latentprior.config import EvalConfig, eval_config_from_dict

__all__ = ["register", "eval_config_from_args"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a finished run (never trains); writes RUN_DIR/eval/<metric>.json")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    defaults, hints = EvalConfig(), typing.get_type_hints(EvalConfig)
    for f in dataclasses.fields(EvalConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        help_text = f.metadata["help"]  # the field's own description (sections.py), as `config keys` shows
        if typing.get_origin(hints[f.name]) is Literal:
            p.add_argument(flag, choices=typing.get_args(hints[f.name]), default=default, help=help_text)
        elif f.name == "metrics":
            # Not listed here: the registry loads torch, which `latentprior report` never needs. A wrong name's
            # error lists every registered metric.
            p.add_argument(flag, default=",".join(default), help="comma-separated " + help_text)
        else:  # the field's checks (e.g. n >= 2) run when EvalConfig is built, with its one-line message
            p.add_argument(flag, type=type(default), default=default, help=help_text)
    add_data_options(p)
    add_weights_options(p, cache=True)
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
    from latentprior.rundir import read_run_config

    eval_cfg = eval_config_from_args(args)
    check_metrics(eval_cfg.metrics)  # before the model and the data are loaded
    read_run_config(args.run_dir, strict=True)  # the summaries below read it: a bad config.yaml fails before any work
    result = evaluate_run(args.run_dir, eval_cfg, data_dir=args.data_dir, device=args.device,
                          weights_dir=args.weights_dir, cache_dir=args.cache_dir, prior=args.prior)
    if args.prior is None and eval_cfg.temperature == 1.0:  # the summaries show the run's own prior, untempered
        from latentprior.training.loggers import write_summaries

        write_summaries(args.run_dir)  # each logger's summary (TensorBoard's hparams table) with these metrics
    return result
