"""Sample diversity: mean LPIPS between pairs of generated images (higher: more varied samples).

    diversity = (1/P) Σ_i LPIPS(x_2i, x_2i+1),   x = generated_images(model, 2P, seed)

Consecutive samples of the seeded generated set are independent draws, so pairing 2i with 2i+1 is a random
pairing fixed by the seed alone (batch size changes nothing). A model that always outputs one image scores 0.
Images smaller than :data:`MIN_SIDE` are upsampled to it first (AlexNet's five stages need at least 32×32).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .features import generated_images
from .inception import sha1_file
from .lpips import LPIPS, TRUNK_FILES, trunk_weights_path

__all__ = ["MIN_SIDE", "lpips_diversity", "lpips_network", "lpips_trunk_path"]

MIN_SIDE = 64


def lpips_trunk_path(net: str, weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """``weights_dir/<TRUNK_FILES[net]>``, else through ``$LATENTPRIOR_WEIGHTS_DIR``; raises ``WeightsNotFound``."""
    return trunk_weights_path(net, Path(weights_dir) / TRUNK_FILES[net] if weights_dir is not None else None)


def lpips_network(net: str, image_side: int, *, weights_dir: str | os.PathLike[str] | None = None,
                  device: torch.device | str = "cpu") -> tuple[LPIPS, dict]:
    """The LPIPS network for images of side ``image_side`` (trunk from :func:`lpips_trunk_path`), and its
    protocol (network, trunk hash, resize)."""
    path = lpips_trunk_path(net, weights_dir)
    resize = MIN_SIDE if image_side < MIN_SIDE else None
    lp = LPIPS(net, path, resize=resize).to(device)
    protocol = {"network": f"lpips v0.1 {net} (heads of lpips==0.1.4)", "trunk_sha1": sha1_file(path),
                "resize": f"bilinear to {resize}x{resize}" if resize else "none"}
    return lp, protocol


@torch.no_grad()
def lpips_diversity(model, lpips, *, pairs: int, seed: int, batch_size: int = 100) -> Tensor:
    """LPIPS of each pair (generated sample 2i, sample 2i+1), i < ``pairs``: (pairs,) float64 on the CPU."""
    even = 2 * max(1, batch_size // 2)  # batches of whole pairs
    dev = next(iter(lpips.buffers())).device
    out = [lpips(x[0::2].to(dev), x[1::2].to(dev)).double().cpu()
           for x in generated_images(model, 2 * pairs, seed, even)]
    return torch.cat(out)
