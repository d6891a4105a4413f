"""What every encoder/decoder family shares: the supported sizes, the width multiplier, the output layer."""

from __future__ import annotations

from torch import nn

__all__ = ["SUPPORTED_SIZES", "channels", "check_size", "count_parameters", "output_layer"]

SUPPORTED_SIZES = (28, 32, 64)


def channels(c: int, width: float) -> int:
    """``c`` scaled by the width multiplier, never below 4 (a narrower layer stops being a layer)."""
    return max(4, int(round(c * width)))


def check_size(image_size: int) -> int:
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image size {image_size} is not supported; supported sizes: {list(SUPPORTED_SIZES)}")
    return image_size


def output_layer(output: str) -> nn.Module:
    """The decoder mean's last activation: sigmoid (G(z) in [0, 1]) or none (linear)."""
    if output not in ("sigmoid", "linear"):
        raise ValueError(f"output must be 'sigmoid' or 'linear', got '{output}'")
    return nn.Sigmoid() if output == "sigmoid" else nn.Identity()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
