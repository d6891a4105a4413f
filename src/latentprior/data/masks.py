"""Conditions that hide part of the image: inpainting (``top_half``, ``window14``) and colourisation (``grayscale``).

Each maps x (B, C, H, W) in [0, 1] to y of the same shape (a condition of :mod:`latentprior.data.conditions`).
What they hide is more than the latent of a downsampled or skeleton condition has to carry (half of the digit,
a quarter of it, or every colour), so a conditional model that ignores z cannot reproduce x.

Hidden pixels are set to :data:`FILL` = 0.5, not 0: on MNIST-like images 0 is the background, and a zero fill
would make "hidden" and "blank" the same to the model; a flat mid-grey block is not a value strokes take.

``window14``'s window position is a function of the image: (row, column) from :func:`image_hash`, an integer
hash of its 8-bit pixel values. The alternatives fail a requirement of conditions: a random window per call would
change an image's condition every epoch and between evaluations (not reproducible); a window from the dataset
index would need the index in the batch (the batch must stay an image tensor); one fixed window would be
``top_half`` again with a smaller hole. The hash is exact integer arithmetic, so a window is the same on every
device and batch composition; it tells the decoder about log2(15²) ≈ 7.8 bits of x, none of them smoothly.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["FILL", "WINDOW", "grayscale", "image_hash", "top_half", "window14", "window_origin"]

FILL = 0.5  # the value of hidden pixels
WINDOW = 14  # side of window14's hidden square
_PRIME = 2**31 - 1  # the hash is taken modulo this (Mersenne) prime
_MULT = 2654435761  # Knuth's multiplicative-hash constant, for the per-pixel weights
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights of R, G, B (PIL's "L" conversion)


def top_half(x: Tensor) -> Tensor:
    """x (B, C, H, W) with rows H // 2 .. H - 1 set to FILL: (B, C, H, W)."""
    y = x.clone()
    y[..., x.shape[-2] // 2:, :] = FILL
    return y


def image_hash(x: Tensor) -> Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) int64 in [0, 2^31 - 1): Σ_i q_i w_i mod (2^31 - 1), q = round(255 x) the
    8-bit pixels, w_i = (i + 1) · 2654435761 mod (2^31 - 1) per flattened pixel index i. Every product is below
    2^40 and the sum below 2^54 for images up to 3 x 64 x 64, so int64 holds it exactly on any device."""
    q = (x.detach().flatten(1).clamp(0, 1) * 255).round().to(torch.int64)  # (B, N)
    w = (torch.arange(1, q.shape[1] + 1, device=x.device, dtype=torch.int64) * _MULT) % _PRIME  # (N,)
    return (q * w).sum(1) % _PRIME


def window_origin(x: Tensor, side: int = WINDOW) -> tuple[Tensor, Tensor]:
    """The top-left corner (row, column), each (B,) int64, of each image's hidden window: the hash read in base
    H - side + 1 (row, its lowest digit) and W - side + 1 (column)."""
    h, w = x.shape[-2:]
    if h < side or w < side:
        raise ValueError(f"a {side} x {side} window needs images of at least that size, got {h} x {w}")
    code = image_hash(x)
    return code % (h - side + 1), (code // (h - side + 1)) % (w - side + 1)


def window14(x: Tensor) -> Tensor:
    """x (B, C, H, W) with the WINDOW x WINDOW square at :func:`window_origin` set to FILL in every channel."""
    r, c = window_origin(x)
    rows = torch.arange(x.shape[-2], device=x.device)
    cols = torch.arange(x.shape[-1], device=x.device)
    in_rows = (rows >= r[:, None]) & (rows < r[:, None] + WINDOW)  # (B, H)
    in_cols = (cols >= c[:, None]) & (cols < c[:, None] + WINDOW)  # (B, W)
    hidden = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, H, W)
    return torch.where(hidden, torch.full_like(x, FILL), x)


def grayscale(x: Tensor) -> Tensor:
    """A colour image x (B, 3, H, W) -> its luma Σ_c LUMA_c x_c repeated to (B, 3, H, W)."""
    if x.shape[1] != 3:
        raise ValueError(f"grayscale needs colour images (B, 3, H, W), got {tuple(x.shape)}")
    luma = (x * x.new_tensor(LUMA)[:, None, None]).sum(1, keepdim=True)  # (B, 1, H, W)
    return luma.expand_as(x).contiguous()
