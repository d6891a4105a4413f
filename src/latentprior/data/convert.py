"""Your images, in whatever container they come, as an :class:`ImageDataset` (one uint8 tensor in memory).

    as_image_dataset(x)   # ImageDataset | tensor | numpy array | torch Dataset / sequence of images -> ImageDataset

* a tensor or array ``(N, C, H, W)``, ``(N, H, W, C)`` (C = 1 or 3, read as channels-last when the second axis
  cannot be channels) or ``(N, H, W)`` (grayscale), uint8 in 0..255 or floating point in [0, 1] (rounded to 8
  bits, as an 8-bit image file would hold it);
* a map-style ``torch.utils.data.Dataset`` or any sequence whose items are an image (tensor, array or PIL image)
  or a tuple/list ``(image, label, ...)``: every item is read once (integer labels are kept). All images must have
  one shape; a folder of differently sized files is what ``data.name: images`` is for.

The run machinery draws batches by indexing one tensor (:mod:`latentprior.data.dataset`), so the images are read
into memory once, as bytes.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .dataset import ImageDataset
from .files import DataError

__all__ = ["as_image_dataset"]


def _to_uint8(x: Tensor, what: str) -> Tensor:
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise DataError(f"{what}: expected uint8 (0..255) or floating-point (0..1) images, got {x.dtype}")
    lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
    if lo < 0 or hi > 1 or x.isnan().any():
        raise DataError(f"{what}: floating-point images must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    return x.float().mul(255.0).round_().to(torch.uint8)


def _channels_first(x: Tensor, what: str, batched: bool) -> Tensor:
    """(N, C, H, W) / (N, H, W, C) / (N, H, W) -> (N, C, H, W); the same for one image without N."""
    if not batched:
        return _channels_first(x[None], what, True)[0]
    if x.dim() == 3:
        return x[:, None]
    if x.dim() != 4:
        raise DataError(f"{what}: expected images (N, C, H, W), (N, H, W, C) or (N, H, W), got shape "
                        f"{tuple(x.shape)}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise DataError(f"{what}: expected 1 (grayscale) or 3 (RGB) channels, got shape {tuple(x.shape)}")
    return x


def _image(item: Any, i: int) -> Tensor:
    """One item's image as (C, H, W) uint8."""
    if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        mode = "L" if item.mode in ("1", "L", "I", "I;16", "F") else "RGB"
        item = np.array(item.convert(mode))  # a writable copy: torch refuses to share a read-only buffer
    x = torch.from_numpy(np.asarray(item)) if isinstance(item, np.ndarray) else item
    if not isinstance(x, Tensor):
        raise DataError(f"dataset item {i}: expected an image (tensor, array or PIL image) or (image, label), got "
                        f"{type(item).__name__}")
    return _to_uint8(_channels_first(x.detach().cpu(), f"dataset item {i}", batched=False), f"dataset item {i}")


def _from_items(data: Any) -> ImageDataset:
    images, labels = [], []
    for i in range(len(data)):
        item = data[i]
        if isinstance(item, tuple | list):
            item, label = item[0], (item[1] if len(item) > 1 else None)
            labels.append(int(label) if isinstance(label, numbers.Integral) or (
                isinstance(label, Tensor) and label.numel() == 1 and not label.is_floating_point()) else None)
        images.append(_image(item, i))
    if not images:
        raise DataError("the dataset is empty")
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise DataError(f"the dataset's images differ in shape ({sorted(shapes)[:3]}...): resize them to one shape, "
                        "or write them to a folder and train on it (data.name: images)")
    y = torch.tensor(labels, dtype=torch.int64) if labels and None not in labels else None
    return ImageDataset(images=torch.stack(images), labels=y, name="custom", split="train")


def as_image_dataset(data: Any, *, split: str = "train") -> ImageDataset:
    """``data`` as an :class:`ImageDataset` (see the module docstring); an ImageDataset is returned as it is."""
    if isinstance(data, ImageDataset):
        return data
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, Tensor):
        x = _to_uint8(_channels_first(data.detach().cpu(), "images", batched=True), "images")
        return ImageDataset(images=x.contiguous(), name="custom", split=split)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(data, str | bytes | dict):
        ds = _from_items(data)
        return ImageDataset(images=ds.images, labels=ds.labels, name="custom", split=split)
    raise DataError(f"cannot read images from a {type(data).__name__}: pass an ImageDataset, a tensor or array of "
                    "images, a torch Dataset (or sequence) of images, or a folder (data.name: images)")
