"""Pictures of a run for people: samples, reconstructions next to their inputs, one interpolation strip.

The loop draws them at the end of training into ``RUN_DIR/samples/`` (what a report shows) and, every
``train.images_every`` steps, into TensorBoard. They use fixed inputs and fixed generator seeds and no global
random state, so drawing them never changes the training run (resume stays exact) and grids of one run
compare across steps.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from latentprior.rundir import RunDir, run_dir_of
from latentprior.sampling.grid import make_grid, save_image_grid
from latentprior.sampling.interpolate import interpolate

__all__ = ["preview_images", "preview_grids", "save_previews", "sample_images", "RECON_PAIRS", "INTERP_STEPS"]

RECON_PAIRS = 8  # inputs shown with their reconstructions
INTERP_STEPS = 8  # decoded points between the two real endpoint images


@torch.no_grad()
def preview_images(model, x: Tensor, *, n_samples: int = 64, seed: int = 0,
                   with_interpolation: bool = True) -> dict[str, tuple[Tensor, int]]:
    """``name -> (images (N, C, H, W) in [0, 1], images per grid row)`` for a model and real images x (B, C, H, W).

    * samples: ``n_samples`` draws G(z), z ~ p(z), from a generator seeded with ``seed`` (for a conditional model,
      given the conditions of x in turn);
    * reconstructions: the first row the inputs x[:8], the second G(mean of q(z|x)) below each one;
    * interpolation (unconditional models): x[0], the slerp path between the posterior means of x[0] and x[1], x[1].
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    try:
        samples = sample_images(model, x, n_samples, seed)
        model.eval()  # BatchNorm on its running statistics, which stay unchanged
        inputs = x[:RECON_PAIRS].float()
        y = model.condition(inputs)  # None for an unconditional model
        mean, _ = model.encode(inputs, y)
        recon = model.decode(mean, y).float().clamp(0, 1)
        out = {"samples": (samples, round(n_samples ** 0.5)),
               "reconstructions": (torch.cat([inputs, recon]), len(inputs))}
        if with_interpolation and len(x) >= 2 and not model.conditional:
            path = interpolate(model, x[:1].float(), x[1:2].float(), steps=INTERP_STEPS)[0]  # (T, C, H, W)
            out["interpolation"] = (torch.cat([x[:1].float(), path, x[1:2].float()]), INTERP_STEPS + 2)
        return out
    finally:
        model.train(was_training)


@torch.no_grad()
def sample_images(model, x: Tensor, n: int, seed: int = 0) -> Tensor:
    """n draws from a generator seeded with ``seed``: G(z), z ~ p(z); for a conditional model G(z, y),
    z ~ p(z | y), with y the conditions of the real images x (B, C, H, W) taken in turn."""
    generator = torch.Generator(x.device).manual_seed(seed)
    y = model.condition(x[torch.arange(n, device=x.device) % len(x)].float())  # (n, C, H, W), or None
    return model.sample(n, generator=generator, y=y)


def preview_grids(images: dict[str, tuple[Tensor, int]]) -> dict[str, object]:
    """The previews as uint8 (H, W, 3) grids (numpy), the form TensorBoard and PNG files take."""
    return {name: make_grid(x, nrow=nrow) for name, (x, nrow) in images.items()}


def save_previews(images: dict[str, tuple[Tensor, int]], run_dir: str | Path | RunDir) -> list[Path]:
    """Write each preview into the run's ``samples/`` folder under its role's file name (PNG, native size;
    atomically)."""
    rd = run_dir_of(run_dir)
    return [save_image_grid(x, rd.preview(name), nrow=nrow) for name, (x, nrow) in images.items()]
