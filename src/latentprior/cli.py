"""The ``latentprior`` command line.

    latentprior train CONFIG.yaml --out RUN_DIR [--set key=value ...] [--data-dir DIR] [--max-steps N] [--seed S]
    latentprior resume RUN_DIR [--max-steps N]
    latentprior train-prior RUN_DIR --epochs N          # prior-only epochs on a finished run's frozen encoder
    latentprior sample RUN_DIR --n N --out FILE.png
    latentprior interpolate RUN_DIR --out FILE.png [--space z|base]
    latentprior eval RUN_DIR --metrics fid,pr,kid,nll [--n 10000] [--data-dir DIR]

Multi-process (data-parallel) training: ``torchrun --nproc_per_node=N -m latentprior.cli train ...``; the
training commands join the process group torchrun describes (gloo on CPU, nccl on CUDA) and only rank 0
writes and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latentprior.errors import UserError

__all__ = ["main", "build_parser"]


class UsageError(UserError):
    """A command asked for something its run cannot do; reported as one line, exit status 2."""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a run from a YAML config")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--data-dir", help="dataset directory (default: $LATENTPRIOR_DATA_DIR)")
    p.add_argument("--max-steps", type=int, help="stop at this global step (resume later)")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-verify", action="store_true", help="accept data files whose checksums do not match")
    p.add_argument("--download", action="store_true", help="fetch missing data files from the official URLs")

    p = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--data-dir")

    p = sub.add_parser("train-prior", help="train the prior alone for more epochs on a run's frozen encoder")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--epochs", type=float, required=True)
    p.add_argument("--data-dir")


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="write a PNG grid of samples G(z), z ~ p(z)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour enlargement of the PNG")

    p = sub.add_parser("interpolate", help="write a PNG of interpolations between encoded test images")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--space", choices=["z", "base"], default="z",
                   help="z: in the latent space Z_T; base: slerp in the flow's base space Z_0, mapped back by f^-1")
    p.add_argument("--method", choices=["slerp", "lerp"], default="slerp")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--scale", type=int, default=2)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a finished run (never trains); writes RUN_DIR/eval/<metric>.json")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--metrics", default="fid,pr,kid", help="comma-separated: fid, pr, kid, nll, is")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--device")
    p.add_argument("--nll-k", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentprior", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_generate(sub)
    _add_eval(sub)
    from latentprior.experiments.cli import add_experiment_commands

    add_experiment_commands(sub)
    return parser


def _data_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    if getattr(args, "data_dir", None):
        out.append(f"data.dir={json.dumps(str(Path(args.data_dir).resolve()))}")
    if getattr(args, "no_verify", False):
        out.append("data.verify=false")
    if getattr(args, "download", False):
        out.append("data.download=true")
    return out


def _run_config(run_dir: Path, args: argparse.Namespace):
    from latentprior.config import apply_overrides
    from latentprior.training import load_checkpoint

    cfg = load_checkpoint(run_dir)["config"]
    extra = _data_overrides(args)
    return apply_overrides(cfg, extra) if extra else cfg


def _cmd_train(args: argparse.Namespace) -> dict:
    from latentprior.config import load_config
    from latentprior.training import latest_checkpoint, train

    overrides = list(args.overrides) + _data_overrides(args)
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    cfg = load_config(args.config, overrides)
    if latest_checkpoint(args.out) is not None:
        raise UsageError(f"{args.out} already holds a run; use `latentprior resume {args.out}` "
                         "or choose another --out")
    return train(cfg, args.out, max_steps=args.max_steps)


def _cmd_resume(args: argparse.Namespace) -> dict:
    from latentprior.training import train

    return train(_run_config(args.run_dir, args), args.run_dir, max_steps=args.max_steps)


def _cmd_train_prior(args: argparse.Namespace) -> dict:
    from latentprior.training import train

    cfg = _run_config(args.run_dir, args)
    cfg = cfg.replace(**{"train.prior_epochs": cfg.train.prior_epochs + args.epochs})
    return train(cfg, args.run_dir)


def _cmd_sample(args: argparse.Namespace) -> dict:
    import torch

    from latentprior.sampling import save_image_grid
    from latentprior.training import load_run

    model, _ = load_run(args.run_dir)
    dev = next(model.parameters()).device
    images = model.sample(args.n, generator=torch.Generator(dev).manual_seed(args.seed))
    path = save_image_grid(images, args.out, scale=args.scale)
    return {"out": str(path), "n": args.n}


def _cmd_interpolate(args: argparse.Namespace) -> dict:
    import torch

    from latentprior.data import load_dataset
    from latentprior.sampling import interpolate, save_image_grid
    from latentprior.training import load_run

    model, cfg = load_run(args.run_dir)
    if args.data_dir:
        cfg = cfg.replace(**{"data.dir": str(Path(args.data_dir).resolve())})
    dev = next(model.parameters()).device
    test = load_dataset(cfg.data.name, "test", cfg.data.dir, verify=cfg.data.verify)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[: 2 * args.pairs]
    x = test.batch(idx).to(dev)
    xa, xb = x[: args.pairs], x[args.pairs:]
    path = interpolate(model, xa, xb, steps=args.steps, space=args.space, method=args.method)  # (P, T, C, H, W)
    # Each row: the real image a, the decoded path, the real image b (Fig. 4 layout).
    rows = torch.cat([xa[:, None].cpu(), path.cpu(), xb[:, None].cpu()], dim=1)
    out = save_image_grid(rows.flatten(0, 1), args.out, nrow=args.steps + 2, scale=args.scale)
    return {"out": str(out), "pairs": args.pairs, "steps": args.steps, "space": args.space, "method": args.method}


def _cmd_eval(args: argparse.Namespace) -> dict:
    from latentprior.evaluation.runner import evaluate_run

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    return evaluate_run(args.run_dir, metrics, n=args.n, data_dir=args.data_dir, batch_size=args.batch_size,
                        device=args.device, nll_k=args.nll_k, seed=args.seed)


_TRAINING_COMMANDS = ("train", "resume", "train-prior")

COMMANDS = {"train": _cmd_train, "resume": _cmd_resume, "train-prior": _cmd_train_prior, "sample": _cmd_sample,
            "interpolate": _cmd_interpolate, "eval": _cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from latentprior.experiments.cli import EXPERIMENT_COMMANDS

    handler = {**COMMANDS, **EXPERIMENT_COMMANDS}[args.command]
    ctx = None
    if args.command in _TRAINING_COMMANDS:
        from latentprior.training.distributed import init_from_env

        ctx = init_from_env()  # a no-op unless torchrun set WORLD_SIZE > 1
    try:
        result = handler(args)
    except UserError as e:  # bad config, missing/corrupt file, a metric the run cannot give (errors.py)
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if ctx is not None and ctx.enabled:
            import torch.distributed as dist

            dist.destroy_process_group()
    if ctx is None or ctx.is_main:
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
