"""Image grids, written as PNG or JPEG (by the file's extension)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentprior.atomic import atomic_write_bytes
from latentprior.errors import UserError

__all__ = ["make_grid", "save_image_grid", "image_format", "ImageFormatError", "IMAGE_FORMATS"]

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


class ImageFormatError(ValueError, UserError):
    """An output file name whose extension is not an image format we write."""


def image_format(path: str | Path) -> str:
    """The PIL format for ``path``'s extension ('PNG' or 'JPEG'); any other extension is refused."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageFormatError(f"{path}: cannot write a {Path(path).suffix or 'extension-less'} file; "
                               f"use one of {', '.join(IMAGE_FORMATS)}")
    return fmt


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> uint8 (rows·(H+p)+p, nrow·(W+p)+p, 3) RGB image, row-major order."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = torch.full((3, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a grid of ``images`` as a PNG or JPEG (by ``path``'s extension; atomically); ``scale`` enlarges small
    images by nearest neighbour."""
    fmt = image_format(path)  # before any work: a wrong name fails at once
    arr = make_grid(images, nrow)
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
