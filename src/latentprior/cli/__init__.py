"""The ``latentprior`` command line.

    latentprior train CONFIG.yaml --out RUN_DIR [--set key=value ...] [--data-dir DIR] [--max-steps N] [--seed S]
    latentprior resume RUN_DIR [--max-steps N] [--set key=value ...]   # learning rates, budget, bookkeeping
    latentprior train-prior RUN_DIR --epochs N          # prior-only epochs on a finished run's frozen encoder
    latentprior train-prior RUN_DIR --prior KIND [--name NAME] [--set prior.key=value ...]   # an ex-post prior
    latentprior sample RUN_DIR --n N --out FILE.png [--prior NAME] [--temperature T]
    latentprior interpolate RUN_DIR --out FILE.png [--space z|base]
    latentprior eval RUN_DIR [--metrics fid,pr,kid] [--n 10000] [--data-dir DIR] [--prior NAME] [--temperature T]
    latentprior sweep SWEEP.yaml --out DIR [--local | --address RAY_ADDRESS] [--data-dir DIR]
    latentprior figure latent2d RUN_DIR [--out FILE.png]
    latentprior report DIR [--out DIR/report] [--metric fid]
    latentprior experiment NAME FILE.yaml --out DIR    # a paper table end to end, e.g. NAME = disentanglement
    latentprior config show CONFIG [--set key=value ...] | latentprior config keys [--markdown]

Every user error (a bad option, config, sweep file, run directory or checkpoint) ends as one line,
``error: <message>`` on stderr, with exit status 2: each is a :class:`~latentprior.errors.UserError`
raised where the fact is known and caught once, in :func:`main`. Ctrl-C and SIGTERM end as one line too, with
status 130 and 143 (latentprior.interrupts): the training verbs first finish the current step and checkpoint it.

Multi-process (data-parallel) training: ``torchrun --nproc_per_node=N -m latentprior.cli train ...``; the
training commands join the process group torchrun describes (gloo on CPU, nccl on CUDA) and only rank 0
writes and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

import latentprior
from latentprior.cli import config, evaluate, generate, report, study, sweep, train
from latentprior.cli.options import apply_dir_options
from latentprior.errors import UsageError, UserError
from latentprior.interrupts import Interrupted, stop_at_once

__all__ = ["main", "build_parser"]

_VERB_MODULES = (train, generate, evaluate, sweep, study, report, config)  # each registers its verbs with register(sub)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default when there is one (not for flags, nor for options whose absence means "not given")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes cross the same boundary as every other user error (one line, exit 2), and whose
    ``--help`` shows each option's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="latentprior", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"latentprior {latentprior.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)  # sub-parsers are _Parser too (argparse's default)
    for module in _VERB_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    ctx = None
    try:
        with stop_at_once():  # SIGINT/SIGTERM: Interrupted where we are (training defers it to a step's end)
            args = build_parser().parse_args(argv)
            apply_dir_options(args)  # --weights-dir / --cache-dir: the environment variables, for this process
            if args.distributed:
                from latentprior.training.distributed import init_from_env

                ctx = init_from_env()  # a no-op unless torchrun set WORLD_SIZE > 1
            result = args.run(args)
    except UserError as e:  # the one boundary: bad input of any verb (errors.py)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # Ctrl-C or SIGTERM: one line, and the shell's status for it (130, 143)
        if ctx is None or ctx.is_main:
            print(e, file=sys.stderr)
        return e.exit_status
    finally:
        if ctx is not None and ctx.enabled:
            import torch.distributed as dist

            dist.destroy_process_group()
    if ctx is None or ctx.is_main:
        # Text (a config, a key listing, a one-line notice) as it is; anything else as one JSON line.
        if isinstance(result, str):
            print(result, end="" if result.endswith("\n") else "\n")
        else:
            print(json.dumps(result, default=str))
    return 0
