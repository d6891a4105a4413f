"""scikit-learn's 8×8 digits, upsampled to 28×28 so MNIST-sized networks run on them.

1,797 images with 17 grey levels (0..16) ship inside scikit-learn, so this dataset needs no data
directory and no download: it is the smoke-test dataset for quick runs and CI.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .dataset import ImageDataset

__all__ = ["DIGITS_TRAIN", "load_digits"]

DIGITS_TRAIN = 1500  # the first 1,500 images train, the remaining 297 test: a fixed split by index
_SIZE = 28
_LEVELS = 16.0


def load_digits(split: str) -> ImageDataset:
    """Digits ``train`` (1,500) or ``test`` (297): images (N, 1, 28, 28) uint8 in 0..255, labels (N,)."""
    from sklearn.datasets import load_digits as sk_load_digits  # slow import, only when asked for

    bunch = sk_load_digits()
    x = torch.from_numpy(bunch.images).to(torch.float32).div(_LEVELS).unsqueeze(1)  # (1797, 1, 8, 8), [0, 1]
    x = F.interpolate(x, size=(_SIZE, _SIZE), mode="bilinear", align_corners=False)  # (1797, 1, 28, 28)
    # Bilinear weights are convex, so x stays in [0, 1]; clamp only guards float rounding.
    images = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    sl = slice(0, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
    return ImageDataset(
        images=images[sl].contiguous(), labels=labels[sl].contiguous(), name="digits", split=split
    )
