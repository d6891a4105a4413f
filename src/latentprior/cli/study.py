"""``latentprior experiment`` (a paper table end to end) and ``latentprior figure`` (a paper figure of one run):
the studies of latentprior.studies."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentprior.cli.options import add_weights_options, positive_int
from latentprior.studies.registry import EXPERIMENTS

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
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
        if exp.seeds:
            e.add_argument("--seeds", type=_seed_list, help="comma-separated seeds, e.g. 0,1,2 (replaces the file's "
                           "'seeds'): each seed's study in DIR/seed<k>, mean ± std tables and claim verdicts in DIR")
        e.set_defaults(run=_experiment, distributed=False)

    p = sub.add_parser("figure", help="draw a paper figure from a finished run")
    figs = p.add_subparsers(dest="figure", required=True)
    f = figs.add_parser("latent2d", help="Fig. 2: f(z) and q(z) coloured by class, q(z), f^-1(u) (latent dim 2)")
    f.add_argument("run_dir", type=Path, help="a finished run folder with a 2-D latent space")
    f.add_argument("--out", type=Path, help="PNG path (default: RUN_DIR/figures/latent2d.png)")
    f.add_argument("--n", type=positive_int, default=5000, help="images encoded (and prior samples drawn)")
    f.add_argument("--split", default="test", help="dataset split whose labels colour the points")
    f.add_argument("--data-dir", help="dataset directory (default: the run's data.dir)")
    add_weights_options(f)
    f.add_argument("--seed", type=int, default=0, help="seed of the image choice and of the prior draws")
    f.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    f.set_defaults(run=_latent2d, distributed=False)


def _seed_list(text: str) -> tuple[int, ...]:
    """An argparse type: distinct integers >= 0, comma-separated."""
    from latentprior.config import ConfigError
    from latentprior.studies.replicates import parse_seeds

    try:
        return parse_seeds(text, "--seeds")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--seeds: ")) from None  # argparse names the option


def _experiment(args: argparse.Namespace) -> dict:
    exp = EXPERIMENTS[args.experiment]
    seeds = {} if getattr(args, "seeds", None) is None else {"seeds": args.seeds}
    return exp.run(exp.load(args.file), args.out, data_dir=args.data_dir, weights_dir=args.weights_dir,
                   cache_dir=args.cache_dir, device=args.device, progress=not args.no_progress, **seeds)


def _latent2d(args: argparse.Namespace) -> dict:
    from latentprior.studies.latent2d import latent2d_figure

    return latent2d_figure(args.run_dir, args.out, n=args.n, split=args.split, data_dir=args.data_dir,
                           seed=args.seed, device=args.device)
