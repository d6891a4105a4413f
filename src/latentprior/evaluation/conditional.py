"""Conditional sampling protocol and diversity: images drawn for the conditions of the test set.

    y_i = c(x_i),  i < n  (the first n test images in file order)
    diversity = (1/n) Σ_i LPIPS(G(z_i, y_i), G(z'_i, y_i)),   z_i, z'_i ~ p(z | y_i) independent

(the paper's Table 2: mean LPIPS between samples for one condition, higher is more diverse). Draws come in
chunks of :data:`~latentprior.evaluation.features.SAMPLE_CHUNK` conditions, each chunk from its own CPU
generator seeded by (seed, chunk start), so a batch size changes the speed, never the samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from latentprior.errors import UserError

from .features import SAMPLE_CHUNK, chunk_generator

__all__ = ["NotConditional", "conditional_images", "conditional_diversity", "check_conditional", "check_unconditional",
           "conditional_fid_sets", "reconstruction_mse"]


class NotConditional(ValueError, UserError):
    """A conditional metric was asked of a model without a condition."""


def check_conditional(model) -> None:
    from latentprior.models.conditional import ConditionalAutoencoder

    if not isinstance(model, ConditionalAutoencoder):
        raise NotConditional("this metric needs a conditional model (data.condition set); this run has none")


def check_unconditional(model) -> None:
    """Refuse, before any work, a metric of unconditional samples for a conditional model."""
    from latentprior.models.conditional import ConditionalAutoencoder, ConditionRequired

    if isinstance(model, ConditionalAutoencoder):
        raise ConditionRequired(f"this run is conditional (data.condition '{model.condition_name}'): it has no "
                                "unconditional samples; use the metrics cond_fid, cond_mse and cond_lpips")


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
