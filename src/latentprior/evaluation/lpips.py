"""LPIPS (Zhang et al., 2018) with AlexNet or VGG16 trunks, and a plain VGG16 feature distance.

    LPIPS(x, y) = Σ_l mean_{h,w} w_lᵀ (φ̂_l(x) - φ̂_l(y))²,    φ̂ = φ / ||φ||₂ over channels

φ_l are the trunk's ReLU outputs at five depths (AlexNet relu1..relu5; VGG16 relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3), after LPIPS's input scaling. The linear heads w_l are the v0.1 weights shipped in the PyPI
``lpips`` package (read as a file: importing ``lpips`` would import torchvision, which is not a dependency).
The trunks are rebuilt here as ``nn.Sequential`` layouts whose state-dict keys match torchvision's
``alexnet().features`` / ``vgg16().features`` and load ImageNet weights from a configured file — never
downloaded.

:class:`VGGFeatureDistance` is the same computation with uniform weights (mean over channels instead of w_l)
on ImageNet-normalised input: a perceptual distance with no learned head, for the change along interpolation
paths. Images are float in [0, 1], (B, C, H, W) with C in {1, 3} (grayscale repeated to 3 channels).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentprior.nets.vgg import WEIGHTS_DIR_ENV, WeightsNotFound, vgg_features

__all__ = [
    "LPIPS", "TRUNK_FILES", "VGGFeatureDistance", "WEIGHTS_DIR_ENV", "WeightsNotFound", "trunk_weights_path",
]

TRUNK_FILES = {"alex": "alexnet_features_imagenet.pth", "vgg": "vgg16_features_imagenet.pth"}
_TV_NAME = {"alex": "alexnet", "vgg": "vgg16"}
# Indices into the torchvision ``features`` Sequential where each LPIPS slice ends (exclusive).
_SLICES = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}


def trunk_weights_path(net: str, path: str | os.PathLike[str] | None = None) -> Path:
    """The trunk file: ``path`` if given, else ``$LATENTPRIOR_WEIGHTS_DIR/<TRUNK_FILES[net]>``; must exist."""
    if net not in TRUNK_FILES:
        raise ValueError(f"unknown trunk {net!r}; known: {', '.join(TRUNK_FILES)}")
    if path is None:
        env = os.environ.get(WEIGHTS_DIR_ENV)
        if not env:
            raise WeightsNotFound(
                f"no weights configured for the {net} trunk: pass the path of {TRUNK_FILES[net]} "
                f"(an ImageNet state dict for torchvision's {_TV_NAME[net]}().features) or set "
                f"{WEIGHTS_DIR_ENV} to the folder holding it"
            )
        path = Path(env) / TRUNK_FILES[net]
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"{net} trunk weights not found at {path} (expected {TRUNK_FILES[net]}: "
                              f"an ImageNet state dict for torchvision's {_TV_NAME[net]}().features)")
    return path


def _alexnet_features() -> nn.Sequential:
    """Same layout (and state-dict keys) as ``torchvision.models.alexnet().features``."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )


class _Trunk(nn.Module):
    """ImageNet trunk returning the five LPIPS activations."""

    def __init__(self, net: str, weights: str | os.PathLike[str] | None) -> None:
        super().__init__()
        self.features = _alexnet_features() if net == "alex" else vgg_features("vgg16")
        state = torch.load(trunk_weights_path(net, weights), map_location="cpu", weights_only=True)
        self.features.load_state_dict(state)
        self.ends = _SLICES[net]
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs, start = [], 0
        for end in self.ends:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return outs


def _unit(f: Tensor, eps: float = 1e-10) -> Tensor:
    """Normalise over channels, as LPIPS does: f / (||f||₂ + eps)."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def _rgb(x: Tensor) -> Tensor:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1|3, H, W), got shape {tuple(x.shape)}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _PerceptualBase(nn.Module):
    """Input checks and scaling shared by :class:`LPIPS` and :class:`VGGFeatureDistance`."""

    net: str
    resize: int | None
    shift: Tensor
    scale: Tensor

    def _inputs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape != y.shape:
            raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        x, y = _rgb(x.float()), _rgb(y.float())
        if self.resize is not None and x.shape[-2:] != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
            y = F.interpolate(y, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        min_side = 32 if self.net == "alex" else 16
        if min(x.shape[-2:]) < min_side:
            raise ValueError(f"{self.net} trunk needs images of at least {min_side}x{min_side}, got "
                             f"{tuple(x.shape[-2:])}; pass resize=64 to upsample first")
        return (x - self.shift) / self.scale, (y - self.shift) / self.scale


class LPIPS(_PerceptualBase):
    """LPIPS v0.1 distance: ``forward(x, y)`` with x, y (B, C, H, W) in [0, 1] -> (B,).

    Args:
        net: ``"alex"`` or ``"vgg"``.
        trunk_weights: the ImageNet trunk state dict (default ``$LATENTPRIOR_WEIGHTS_DIR/<file>``).
        resize: upsample both images to resize×resize first (AlexNet needs at least 32×32).
    """

    def __init__(self, net: str = "alex", trunk_weights: str | os.PathLike[str] | None = None,
                 resize: int | None = None) -> None:
        super().__init__()
        self.net, self.resize = net, resize
        self.trunk = _Trunk(net, trunk_weights)
        heads = torch.load(_lpips_head_path(net), map_location="cpu", weights_only=True)
        for i in range(5):
            self.register_buffer(f"w{i}", heads[f"lin{i}.model.1.weight"].flatten())  # (C_l,)
        # LPIPS's ScalingLayer (x' - s) / c acts on x' = 2x - 1 in [-1, 1]; for x in [0, 1] that is
        # (x - (1 + s) / 2) / (c / 2).
        shift = (torch.tensor([-0.030, -0.088, -0.188]) + 1.0) / 2.0
        self.register_buffer("shift", shift[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None] / 2.0)
        self.eval()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a, b = self._inputs(x, y)
        fa, fb = self.trunk(a), self.trunk(b)
        total = a.new_zeros(a.shape[0])
        for i, (u, v) in enumerate(zip(fa, fb, strict=True)):
            d = (_unit(u) - _unit(v)).pow(2)  # (B, C_l, H_l, W_l)
            total = total + torch.einsum("bchw,c->b", d, getattr(self, f"w{i}")) / (d.shape[2] * d.shape[3])
        return total


class VGGFeatureDistance(_PerceptualBase):
    """Uniform-weight VGG16 distance Σ_l mean_{c,h,w} (φ̂_l(x) - φ̂_l(y))²: x, y (B, C, H, W) -> (B,)."""

    def __init__(self, trunk_weights: str | os.PathLike[str] | None = None,
                 resize: int | None = None) -> None:
        super().__init__()
        self.net, self.resize = "vgg", resize
        self.trunk = _Trunk("vgg", trunk_weights)
        self.register_buffer("shift", torch.tensor([0.485, 0.456, 0.406])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.229, 0.224, 0.225])[None, :, None, None])
        self.eval()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a, b = self._inputs(x, y)
        total = a.new_zeros(a.shape[0])
        for u, v in zip(self.trunk(a), self.trunk(b), strict=True):
            total = total + (_unit(u) - _unit(v)).pow(2).mean((1, 2, 3))
        return total

    @torch.no_grad()
    def path_changes(self, frames: Tensor) -> Tensor:
        """Perceptual change between consecutive frames of paths: (P, T, C, H, W) -> (P, T-1)."""
        p, t = frames.shape[:2]
        a = frames[:, :-1].reshape(p * (t - 1), *frames.shape[2:])
        b = frames[:, 1:].reshape(p * (t - 1), *frames.shape[2:])
        return self(a, b).reshape(p, t - 1)


def _lpips_head_path(net: str) -> Path:
    """``lpips/weights/v0.1/<net>.pth`` in the installed ``lpips`` package, located without importing it."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound("the LPIPS linear heads come from the PyPI package lpips==0.1.4, which is not "
                              "installed; install it with: pip install --no-deps lpips==0.1.4")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / f"{net}.pth"
    if not path.is_file():
        raise WeightsNotFound(f"LPIPS head weights not found at {path}")
    return path
