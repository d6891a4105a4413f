"""Deterministic conditions y = c(x) for image-to-image translation: what a conditional model sees of x.

Each condition maps a batch x (B, C, H, W) in [0, 1] to y (B, C, H, W) in [0, 1], the same shape as x, so
every conditional net reads y at the image's resolution and a sample grid can show y next to x. A condition
is computed from the image itself, never stored: the batch stays a tensor of images, and resuming,
sharding and the prior-only phase need nothing new. Every condition leaves real ambiguity about x:

* ``downsample7``: the 7x7 average-pooled image, shown (and fed) nearest-upsampled back to H x W. Stroke
  width, exact shape and fine texture are lost; the coarse layout stays.
* ``skeleton``: the morphological skeleton (Lantuéjoul) of the digit binarised at 0.5: a pose-like line
  structure. Stroke width and intensity are lost.

Inpainting and colourisation (:mod:`latentprior.data.masks`), where whole regions or the colour of x are lost,
so a sample can only be right if the latent carries them:

* ``top_half``: the top half of x, the bottom half filled with :data:`~latentprior.data.masks.FILL`.
* ``window14``: x with one 14 x 14 window filled, its position a hash of the image (deterministic, so a
  condition is the same in every epoch, on every device and in every evaluation).
* ``grayscale``: the luma of a colour image, repeated to its three channels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from latentprior.data.masks import grayscale, top_half, window14
from latentprior.errors import UserError

__all__ = ["CONDITIONS", "LOW_RES", "UnknownConditionError", "downsample7", "skeleton", "condition_fn",
           "erode", "dilate"]

LOW_RES = 7  # side of the downsampled condition


class UnknownConditionError(ValueError, UserError):
    """A condition name that is not in :data:`CONDITIONS`."""


def downsample7(x: Tensor) -> Tensor:
    """x (B, C, H, W) -> the 7x7 area average, nearest-upsampled to (B, C, H, W)."""
    low = F.adaptive_avg_pool2d(x, LOW_RES)  # (B, C, 7, 7)
    return F.interpolate(low, size=x.shape[-2:], mode="nearest")


def erode(a: Tensor) -> Tensor:
    """Binary erosion of a {0, 1} float mask (B, C, H, W) by the 3x3 square; outside the image is background."""
    return 1.0 - F.max_pool2d(F.pad(1.0 - a, (1, 1, 1, 1), value=1.0), 3, stride=1)


def dilate(a: Tensor) -> Tensor:
    """Binary dilation of a {0, 1} float mask (B, C, H, W) by the 3x3 square."""
    return F.max_pool2d(F.pad(a, (1, 1, 1, 1), value=0.0), 3, stride=1)


def skeleton(x: Tensor, threshold: float = 0.5) -> Tensor:
    """The Lantuéjoul skeleton of ``x > threshold`` by the 3x3 square, as a {0, 1} float (B, C, H, W).

        S(A) = ∪_k  (A ⊖ kB) \\ ((A ⊖ kB) ∘ B)        ⊖: erosion, ∘: opening (erosion then dilation)

    Batched max-pool morphology, so it runs on the batch's device; it stops once every image is eroded away
    (at most H/2 rounds).
    """
    a = (x > threshold).to(x.dtype)
    out = torch.zeros_like(a)
    for _ in range((max(x.shape[-2:]) + 1) // 2 + 1):
        if not a.any():
            break
        opened = dilate(erode(a))
        out = torch.maximum(out, a * (1.0 - opened))  # what the opening removes at this depth
        a = erode(a)
    return out


CONDITIONS: dict[str, Callable[[Tensor], Tensor]] = {"downsample7": downsample7, "skeleton": skeleton,
                                                     "top_half": top_half, "window14": window14,
                                                     "grayscale": grayscale}


def condition_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The condition called ``name``; raises :class:`UnknownConditionError` listing the known ones."""
    try:
        return CONDITIONS[name]
    except KeyError:
        raise UnknownConditionError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}") from None
