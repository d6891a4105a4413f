"""The VGG16/VGG19 convolutional trunk (Simonyan & Zisserman), laid out as torchvision's ``vggNN().features``.

One copy for every user: LPIPS and the feature distance (:mod:`latentprior.evaluation.lpips`) and the
perceptual reconstruction loss (:mod:`latentprior.models.reconstruction`). The layer stack is built here, so
ImageNet state dicts saved from torchvision load by key without importing torchvision; weights are only ever
read from a file the user names (``torch.load(weights_only=True)``), never downloaded.

Layers are named as in the VGG paper: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from latentprior.errors import UserError

__all__ = ["VGG_CONFIGS", "WEIGHTS_DIR_ENV", "WeightsMismatch", "WeightsNotFound", "layer_names", "tap_index",
           "vgg_features", "weights_file", "load_vgg_features"]

WEIGHTS_DIR_ENV = "LATENTPRIOR_WEIGHTS_DIR"

# Output channels of each conv, "M" for a 2x2 max-pool (torchvision's configurations "D" and "E").
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


class WeightsNotFound(FileNotFoundError, UserError):
    """A weights file for a pretrained network is absent."""


class WeightsMismatch(ValueError, UserError):
    """A weights file holds a different network than the one asked for."""


def _config(net: str) -> tuple[int | str, ...]:
    if net not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG trunk '{net}'; known: {list(VGG_CONFIGS)}")
    return VGG_CONFIGS[net]


def layer_names(net: str) -> list[str]:
    """The name of each module of ``vgg_features(net)``, by index: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names, block, i = [], 1, 0
    for v in _config(net):
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 0
        else:
            i += 1
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
    return names


def tap_index(net: str, name: str) -> int:
    """Index of the named layer in ``vgg_features(net)``, e.g. ``tap_index("vgg19", "relu4_1") == 20``."""
    names = layer_names(net)
    if name not in names:
        raise ValueError(f"{net} has no layer '{name}'; layers: {names}")
    return names.index(name)


def vgg_features(net: str = "vgg16", until: str | None = None) -> nn.Sequential:
    """Same layout and state-dict keys as ``torchvision.models.<net>().features``, truncated after the layer
    named ``until`` (so a loss tapping relu4_1 does not carry the rest of the trunk)."""
    layers: list[nn.Module] = []
    c = 3
    for v in _config(net):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU()]
            c = int(v)
    end = len(layers) if until is None else tap_index(net, until) + 1
    return nn.Sequential(*layers[:end])


def weights_file(filename: str, path: str | os.PathLike[str] | None, key: str) -> Path:
    """``path`` if given, else ``$LATENTPRIOR_WEIGHTS_DIR/<filename>``; it must exist. ``key`` names where the
    user sets the path (a config key or an argument), for the one-line error."""
    if path is None:
        folder = os.environ.get(WEIGHTS_DIR_ENV)
        if not folder:
            raise WeightsNotFound(f"the weights file {filename} is needed: set {key} to its path, or put it in "
                                  f"the folder named by the {WEIGHTS_DIR_ENV} environment variable")
        path = Path(folder) / filename
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"weights file not found: {path} (expected {filename}; set {key} or "
                              f"{WEIGHTS_DIR_ENV} to where it is)")
    return path


def load_vgg_features(net: str, path: str | os.PathLike[str], until: str | None = None) -> nn.Sequential:
    """A frozen, eval-mode trunk with the ImageNet weights of a torchvision ``<net>().features`` state dict."""
    trunk = vgg_features(net, until)
    state = torch.load(path, map_location="cpu", weights_only=True)
    index = {k: k.split(".")[0] for k in state}
    keep = {k: v for k, v in state.items() if index[k].isdigit() and int(index[k]) < len(trunk)}
    try:
        trunk.load_state_dict(keep)  # strict: a state dict of the other VGG depth fails here, by key or shape
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise WeightsMismatch(f"{path} is not a torchvision {net}().features state dict ({first})") from None
    return trunk.requires_grad_(False).eval()
