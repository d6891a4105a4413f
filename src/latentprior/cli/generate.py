"""Generation verbs on a finished run: ``sample`` and ``interpolate`` (PNG or JPEG grids)."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentprior.cli.options import add_data_options, add_weights_options, data_overrides, positive_float, positive_int

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="write a PNG or JPEG grid of samples G(z), z ~ p(z)")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    p.add_argument("--n", type=positive_int, default=64, help="number of samples")
    p.add_argument("--out", type=image_path, required=True,
                   help="image path; the extension picks the format (.png, .jpg or .jpeg)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    p.add_argument("--scale", type=positive_int, default=2, help="nearest-neighbour enlargement of the PNG")
    p.add_argument("--prior", help="sample a prior fitted into the run (RUN_DIR/priors/NAME) instead of its own")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="sampling temperature: flows f^-1(tau eps), mixtures tau^2 Sigma_k (1: the prior itself)")
    add_weights_options(p)
    p.set_defaults(run=_sample, distributed=False)

    p = sub.add_parser("interpolate", help="write a PNG of interpolations between encoded test images")
    p.add_argument("run_dir", type=Path, help="a run folder (its latest checkpoint is used)")
    p.add_argument("--out", type=image_path, required=True,
                   help="image path; the extension picks the format (.png, .jpg or .jpeg)")
    p.add_argument("--space", choices=["z", "base"], default="z",
                   help="z: in the latent space Z_T; base: slerp in the flow's base space Z_0, mapped back by f^-1")
    p.add_argument("--method", choices=["slerp", "lerp"], default="slerp", help="path between the two codes")
    p.add_argument("--pairs", type=positive_int, default=8, help="pairs of test images (rows)")
    p.add_argument("--steps", type=positive_int, default=10, help="decoded points per path")
    p.add_argument("--seed", type=int, default=0, help="seed of the choice of test images")
    add_data_options(p)
    add_weights_options(p)
    p.add_argument("--scale", type=positive_int, default=2, help="nearest-neighbour enlargement of the PNG")
    p.set_defaults(run=_interpolate, distributed=False)


def image_path(text: str) -> Path:
    """An argparse type: an output image path whose extension we can write (checked before the model loads)."""
    from latentprior.sampling.grid import IMAGE_FORMATS

    if Path(text).suffix.lower() not in IMAGE_FORMATS:
        raise argparse.ArgumentTypeError(f"{text}: the extension must be one of {', '.join(IMAGE_FORMATS)}")
    return Path(text)


def _sample(args: argparse.Namespace) -> dict:
    import torch

    from latentprior.models.expost import use_run_prior
    from latentprior.models.load import load_run
    from latentprior.sampling import save_image_grid

    model, _ = load_run(args.run_dir)
    use_run_prior(model, args.run_dir, args.prior)
    dev = next(model.parameters()).device
    images = model.sample(args.n, generator=torch.Generator(dev).manual_seed(args.seed), temperature=args.temperature)
    path = save_image_grid(images, args.out, scale=args.scale)
    return {"out": str(path), "n": args.n, "prior": args.prior, "temperature": args.temperature, "seed": args.seed}


def _interpolate(args: argparse.Namespace) -> dict:
    import torch

    from latentprior.config import apply_overrides
    from latentprior.data import load_split
    from latentprior.models.load import load_run
    from latentprior.sampling import interpolate, save_image_grid

    model, cfg = load_run(args.run_dir)
    if args.data_dir:
        cfg = apply_overrides(cfg, data_overrides(args))
    dev = next(model.parameters()).device
    test = load_split(cfg.data, "test")
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[: 2 * args.pairs]
    x = test.batch(idx).to(dev)
    xa, xb = x[: args.pairs], x[args.pairs:]
    path = interpolate(model, xa, xb, steps=args.steps, space=args.space, method=args.method)  # (P, T, C, H, W)
    # Each row: the real image a, the decoded path, the real image b (Fig. 4 layout).
    rows = torch.cat([xa[:, None].cpu(), path.cpu(), xb[:, None].cpu()], dim=1)
    out = save_image_grid(rows.flatten(0, 1), args.out, nrow=args.steps + 2, scale=args.scale)
    return {"out": str(out), "pairs": args.pairs, "steps": args.steps, "space": args.space, "method": args.method}
