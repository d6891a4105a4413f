"""Conditional sampling protocol and diversity: images drawn for the conditions of the test set.

    y_i = c(x_i),  i < n  (the first n test images in file order)
    diversity = (1/n) Σ_i LPIPS(G(z_i, y_i), G(z'_i, y_i)),   z_i, z'_i ~ p(z | y_i) independent

(the paper's Table 2: mean LPIPS between samples for one condition, higher is more diverse). Draws come in
chunks of :data:`~latentprior.evaluation.features.SAMPLE_CHUNK` conditions, each chunk from its own CPU
generator seeded by (seed, chunk start), so a batch size changes the speed, never the samples.

How much the output depends on z at all (:func:`conditional_z_share`), on the same two samples s_i, s'_i per
condition, with s'_{i+1} (i + 1 modulo n) a sample for another test image's condition:

    z_share = Σ_i LPIPS(s_i, s'_i) / Σ_i LPIPS(s_i, s'_{i+1})

The numerator is the diversity above (n times it); the denominator compares samples that differ in y and in z.
0 when the decoder ignores z (two samples of one condition are the same image); near 1 when the output ignores y
(samples of one condition differ as much as samples of two); a diversity that is large only because the
conditions are far apart does not raise it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from latentprior.errors import UserError

from .features import SAMPLE_CHUNK, chunk_generator

__all__ = ["TooFewConditions", "conditional_images", "conditional_diversity", "conditional_fid_sets",
           "conditional_z_share", "reconstruction_mse"]


class TooFewConditions(ValueError, UserError):
    """A metric that compares samples of different conditions was given fewer than two."""


def conditional_images(model, images: Tensor, seed: int, draws: int = 1) -> Iterator[tuple[Tensor, ...]]:
    """For each chunk of test ``images`` (N, C, H, W) uint8: (x, y, s_1, .., s_draws), float (B, C, H, W) each,
    with y = c(x) and s_k independent samples for the conditions y, on the model's device."""
    device = next(iter(model.parameters())).device
    for start in range(0, images.shape[0], SAMPLE_CHUNK):
        x = images[start:start + SAMPLE_CHUNK].to(device).float() / 255.0
        y = model.condition(x)
        g = chunk_generator(seed, start)
        yield (x, y, *(model.sample(x.shape[0], generator=g, y=y) for _ in range(draws)))


@torch.no_grad()
def conditional_diversity(model, lpips, images: Tensor, seed: int) -> Tensor:
    """LPIPS between two samples for the condition of each test image: (N,) float64 on the CPU."""
    dev = next(iter(lpips.buffers())).device
    out = [lpips(a.to(dev), b.to(dev)).double().cpu() for _, _, a, b in conditional_images(model, images, seed, 2)]
    return torch.cat(out)


@torch.no_grad()
def conditional_z_share(model, distance, images: Tensor, seed: int, batch_size: int = 100) -> dict:
    """z_share of the conditions of ``images`` (N, C, H, W) uint8, N >= 2 (module docstring), from the samples of
    :func:`conditional_diversity`. ``distance(a, b) -> (B,)`` (LPIPS; on its own device if it is a module).

    Returns ``value``; ``std_err`` (the ratio estimator's: the standard deviation of w_i - value · b_i over
    √N · mean(b)); ``within`` and ``between``, the mean LPIPS of the numerator's and the denominator's pairs.
    """
    if images.shape[0] < 2:
        raise TooFewConditions(f"z_share compares samples of two different conditions; got {images.shape[0]} image")
    first, second = [], []
    for _, _, a, b in conditional_images(model, images, seed, 2):
        first.append(a.cpu())
        second.append(b.cpu())
    a, b = torch.cat(first), torch.cat(second)  # (N, C, H, W) each
    other = b.roll(-1, 0)  # s'_{i+1}: a sample for the next image's condition
    dev = next(iter(distance.buffers())).device if isinstance(distance, torch.nn.Module) else a.device
    w, d = [], []
    for s in range(0, a.shape[0], batch_size):
        sl = slice(s, s + batch_size)
        w.append(distance(a[sl].to(dev), b[sl].to(dev)).double().cpu())
        d.append(distance(a[sl].to(dev), other[sl].to(dev)).double().cpu())
    within, between = torch.cat(w), torch.cat(d)  # (N,) each
    value = (within.sum() / between.sum()).item()
    n = within.numel()
    std_err = ((within - value * between).std() / (n**0.5 * between.mean())).item()
    return {"value": value, "std_err": std_err, "within": within.mean().item(), "between": between.mean().item(),
            "n": n}


def conditional_fid_sets(model, images: Tensor, seed: int, extractor, *, reference, progress: bool = True):
    """Feature sets (real, fake) for the FID of conditional samples: ``reference(images)`` gives the test side
    (cached by the caller), the fake side is one sample for the condition of each test image."""
    from .features import extract

    fake = extract((s for _, _, s in conditional_images(model, images, seed)), extractor, total=images.shape[0],
                   desc="conditional samples", progress=progress)
    return reference(images), fake


@torch.no_grad()
def reconstruction_mse(model, images: Tensor) -> Tensor:
    """Per-image mean squared error of G(E[q(z | x, y)], y) against x, over (N, C, H, W) uint8: (N,) float64."""
    device = next(iter(model.parameters())).device
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, images.shape[0], SAMPLE_CHUNK):
            x = images[start:start + SAMPLE_CHUNK].to(device).float() / 255.0
            y = model.condition(x)
            mean, _ = model.encode(x, y)
            out.append((model.decode(mean, y).clamp(0, 1) - x).pow(2).flatten(1).mean(1).double().cpu())
        return torch.cat(out)
    finally:
        model.train(was_training)
