"""Attribute directions in latent space and the rate of change along them (paper §6.2, Figs. 6 and 8).

    d = mean(z | attribute) − mean(z | no attribute)          over encoded training images, z ~ q(z|x)

From images without the attribute, a sequence of T images moves each code z along d:

    Z_T:  ẑ(t) = lerp(z, z + d; t)                                  (the encoder's space)
    Z_0:  ẑ(t) = f⁻¹( slerp(f(z), f(z + d); t) )                    (the flow's base space, f: Z_T -> Z_0)

for t evenly spaced in [0, 1], and the perceptual change between adjacent decoded images is the VGG16 feature
distance (:class:`~latentprior.evaluation.lpips.VGGFeatureDistance`). A constant change per step is what a
user editing one attribute wants; the paper's claim is that Z_T is closer to it than Z_0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from latentprior.priors import FlowPrior
from latentprior.sampling.interpolate import InterpolationError, lerp, slerp

__all__ = ["Space", "RateOfChange", "attribute_direction", "encode_codes", "direction_path", "decode_paths",
           "rate_of_change", "first_component", "pca_traversal"]

Space = Literal["z", "base"]  # Z_T, Z_0


def attribute_direction(z: Tensor, has_attribute: Tensor) -> Tensor:
    """mean(z | attribute) − mean(z | no attribute): z (N, D), has_attribute (N,) bool -> (D,)."""
    mask = has_attribute.to(torch.bool)
    if mask.shape != z.shape[:1]:
        raise ValueError(f"has_attribute must have shape ({z.shape[0]},), got {tuple(mask.shape)}")
    if mask.all() or not mask.any():
        raise ValueError("an attribute direction needs images both with and without the attribute")
    return z[mask].mean(0) - z[~mask].mean(0)


@torch.no_grad()
def encode_codes(model, images: Tensor, *, batch_size: int = 500, generator: torch.Generator | None = None,
                 sample: bool = True) -> Tensor:
    """Codes of images (N, C, H, W) — uint8, or float in [0, 1] — as z ~ q(z|x) (``sample``) or the posterior
    means: (N, D) on the CPU. The noise comes from ``generator`` (a CPU generator), so the codes do not depend
    on the batch size; uint8 images become float one batch at a time.
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, images.shape[0], batch_size):
        x = images[s:s + batch_size].to(device)
        mean, logvar = model.encode(x.float() / 255.0 if x.dtype == torch.uint8 else x)
        if sample and logvar is not None:
            eps = torch.randn(mean.shape, generator=generator).to(mean)
            mean = mean + torch.exp(0.5 * logvar) * eps
        out.append(mean.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def direction_path(prior, z: Tensor, direction: Tensor, steps: int = 16, space: Space = "z") -> Tensor:
    """Codes along d from each z: z (B, D), direction (D,) -> (B, steps, D) in Z_T (module docstring)."""
    if steps < 2:
        raise ValueError(f"a sequence needs at least 2 steps, got {steps}")
    t = torch.linspace(0, 1, steps)
    end = z + direction.to(z)
    if space == "z":
        return lerp(z, end, t)
    if space != "base":
        raise InterpolationError(f"space must be 'z' or 'base', got '{space}'")
    if not isinstance(prior, FlowPrior):
        raise InterpolationError(f"space='base' needs a flow prior; this one is {type(prior).__name__}")
    u = slerp(prior.to_base(z)[0], prior.to_base(end)[0], t)  # (B, T, D) in Z_0
    return prior.from_base(u.flatten(0, 1))[0].view(u.shape)


@torch.no_grad()
def decode_paths(model, paths: Tensor) -> Tensor:
    """Decoded codes (B, T, D) -> images (B, T, C, H, W) in [0, 1]."""
    b, t, d = paths.shape
    device = next(model.parameters()).device
    images = model.decode(paths.reshape(b * t, d).to(device)).float().clamp(0, 1).cpu()
    return images.view(b, t, *images.shape[1:])


@dataclass(frozen=True)
class RateOfChange:
    """Perceptual change between adjacent images of each sequence, and its per-step summary.

    ``changes``: (P, T-1); ``median``, ``p5``, ``p95``: (T-1,) over the P sequences.
    """

    changes: np.ndarray

    @property
    def median(self) -> np.ndarray:
        return np.median(self.changes, axis=0)

    @property
    def p5(self) -> np.ndarray:
        return np.percentile(self.changes, 5, axis=0)

    @property
    def p95(self) -> np.ndarray:
        return np.percentile(self.changes, 95, axis=0)

    def flatness(self) -> float:
        """max/min of the median change per step: 1 is a constant rate of change."""
        med = self.median
        return float(med.max() / max(med.min(), 1e-12))


@torch.no_grad()
def rate_of_change(model, codes: Tensor, direction: Tensor, distance, *, space: Space, steps: int = 16,
                   batch_size: int = 50) -> RateOfChange:
    """The perceptual change along ``steps``-image sequences from each code (P, D) along ``direction`` (D,).

    ``distance.path_changes(frames)``: images (B, T, C, H, W) -> (B, T-1), as
    :meth:`~latentprior.evaluation.lpips.VGGFeatureDistance.path_changes`.
    """
    model.eval()
    prior_device = next(model.parameters()).device
    out = []
    for s in range(0, codes.shape[0], batch_size):
        z = codes[s:s + batch_size].to(prior_device)
        frames = decode_paths(model, direction_path(model.prior, z, direction, steps, space))  # (B, T, C, H, W)
        out.append(distance.path_changes(frames).float().cpu())  # (B, T-1)
    return RateOfChange(torch.cat(out).numpy().astype(np.float64))


def first_component(z: Tensor) -> tuple[Tensor, Tensor, float]:
    """PCA of codes z (N, D): the mean (D,), the first principal axis (D,) and its standard deviation."""
    z = z.double()
    mu = z.mean(0)
    _, s, vh = torch.linalg.svd(z - mu, full_matrices=False)
    return mu, vh[0], float(s[0] / max(z.shape[0] - 1, 1) ** 0.5)


def pca_traversal(z: Tensor, codes: Tensor, values: Tensor) -> Tensor:
    """Feature discovery by PCA on q(z) (Fig. 7, right): each code (B, D) with its first principal coordinate
    set to each of ``values`` (T,), in units of that component's standard deviation over ``codes`` (N, D) —
    so [−1.5, 1.5] spans the same share of q(z) whatever its scale — and the other coordinates kept.
    Returns (B, T, D)."""
    mu, axis, sd = first_component(codes)
    c1 = (z.double() - mu) @ axis  # (B,) the current first coordinate
    shift = values.double()[None, :] * sd - c1[:, None]  # (B, T)
    return (z.double()[:, None, :] + shift[..., None] * axis).to(z.dtype)
