"""The terms of the reconstruction log-likelihood log p(x|z): the pixel Gaussian N(G(z), γI) and the VGG
perceptual term of appendix B.1. Both are part of the model (what p(x|z) is), not of an objective, so every
objective and the IW-NLL get them through ``LatentAutoencoder.log_px_given_z``.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from latentprior.models.likelihood import PixelLikelihood
from latentprior.nets.vgg import load_vgg_features, tap_index, weights_file

__all__ = ["DecoderVariance", "PerceptualLoss", "PERCEPTUAL_TAPS", "GAMMA_MIN"]

_LOG_2PI = math.log(2 * math.pi)
GAMMA_MIN = 1e-6  # floor of the closed-form γ: a batch the decoder reproduces exactly must not give log 0
PERCEPTUAL_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # appendix B.1
_RUNNING_MOMENTUM = 0.1  # of the eval-time γ, as BatchNorm's running statistics


class DecoderVariance(PixelLikelihood):
    """The decoder variance γ, stored as log γ, and the pixel term log N(x; G(z), γI) (the Gaussian
    :class:`~latentprior.models.likelihood.PixelLikelihood`; Laplace and Bernoulli ones are beside it there).

    * fixed (``learned=False``): a buffer.
    * ``learned=True, update="gradient"``: log γ is a Parameter of the autoencoder update (Dai & Wipf's code).
    * ``learned=True, update="optimal"``: for a fixed decoder mean, F is maximised in γ by the per-pixel mean
      squared error γ* = ||x - G(z)||² / (B·C·H·W) (Dai & Wipf's analysis; the analytic σ of Rybkin et al.).
      Each training-mode call uses its batch's γ* (detached: the maximiser's own dependence on G(z) has zero
      gradient at the maximum), so γ is at its optimum from the first step; gradient learning at the paper's
      lr 1e-4 moves log γ by at most ~1e-4 per Adam step and reaches the same point only after ~5·10⁴ steps.
      The buffer keeps a running average of γ* for eval mode (IW-NLL) and for the ``gamma`` metric.
    """

    def __init__(self, gamma: float = 1.0, learned: bool = False, update: str = "optimal") -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if update not in ("optimal", "gradient"):
            raise ValueError(f"update must be 'optimal' or 'gradient', got '{update}'")
        log_gamma = torch.tensor(math.log(gamma))
        self.initial, self.update_rule = float(gamma), update  # the constructor's values (describe.py records them)
        self.learned = learned
        self.optimal = learned and update == "optimal"
        if learned and not self.optimal:
            self.log_gamma = nn.Parameter(log_gamma)
        else:
            self.register_buffer("log_gamma", log_gamma)

    @property
    def gamma(self) -> Tensor:
        return self.log_gamma.exp()

    def metrics(self) -> dict[str, Tensor]:
        return {"gamma": self.gamma}

    def log_density(self, x: Tensor, g: Tensor) -> Tensor:
        """log N(x; g, γI) summed over pixels: (B, C, H, W) x2 -> (B,)."""
        d = x[0].numel()
        sq = (x - g).pow(2).flatten(1).sum(-1)  # (B,)
        log_gamma = self.log_gamma
        if self.optimal and self.training:
            with torch.no_grad():
                # in the buffer's precision (fp32 under autocast): the batch's per-pixel MSE
                best = (sq.to(self.log_gamma.dtype).mean() / d).clamp_min(GAMMA_MIN)
                self.log_gamma.copy_(torch.lerp(self.gamma, best, _RUNNING_MOMENTUM).log())
                log_gamma = best.log().to(sq.dtype)
        return -0.5 * (d * (_LOG_2PI + log_gamma) + sq / log_gamma.exp())


class PerceptualLoss(nn.Module):
    """½ Σ_l Σ_{c,h,w} (φ_l(x) − φ_l(g))² over the VGG taps relu1_1, relu2_1, relu3_1, relu4_1: (B,C,H,W) x2 -> (B,).

    φ is the ImageNet VGG trunk on ImageNet-normalised input (grayscale repeated to RGB), at the image's own
    size (28x28 gives 3x3 maps at relu4_1). As a log-likelihood term it is a unit-variance Gaussian on the
    features, up to a constant. The trunk is frozen and kept out of ``state_dict``: it is fixed by the config
    (net and weights file), so a checkpoint does not carry ~3M copies of ImageNet weights.

    Args:
        net: ``"vgg19"`` (appendix B.1) or ``"vgg16"``.
        weights: the trunk's state dict file; None: ``$LATENTPRIOR_WEIGHTS_DIR/<net>_features_imagenet.pth``.
        key: where the user sets ``weights``, named in the error when the file is missing.
    """

    def __init__(self, net: str = "vgg19", weights: str | os.PathLike[str] | None = None,
                 key: str = "model.perceptual_weights") -> None:
        super().__init__()
        path = weights_file(f"{net}_features_imagenet.pth", weights, key)
        self.net_name, self.weights_arg = net, None if weights is None else str(weights)
        self.trunk = load_vgg_features(net, path, until=PERCEPTUAL_TAPS[-1])
        self.taps = tuple(tap_index(net, t) for t in PERCEPTUAL_TAPS)
        self.register_buffer("shift", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.register_state_dict_post_hook(_drop_trunk)
        self.register_load_state_dict_pre_hook(_keep_trunk)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.trunk.eval()  # frozen: no mode of the model changes it
        return self

    def features(self, x: Tensor) -> list[Tensor]:
        """The tapped activations of x (B, 1|3, H, W) in [0, 1], in PERCEPTUAL_TAPS order."""
        h = (x.expand(-1, 3, -1, -1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.trunk):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):  # data: no graph for x
            fx = self.features(x)
        total = g.new_zeros(g.shape[0])
        for a, b in zip(fx, self.features(g), strict=True):
            total = total + 0.5 * (a - b).pow(2).flatten(1).sum(-1)
        return total


def _drop_trunk(module: nn.Module, state: dict, prefix: str, local_metadata: dict) -> None:
    for k in [k for k in state if k.startswith(prefix + "trunk.")]:
        del state[k]


def _keep_trunk(module: nn.Module, state: dict, prefix: str, *args) -> None:
    """Loading a checkpoint (which has no trunk keys) keeps the trunk loaded from the weights file."""
    for k, v in module.trunk.state_dict().items():
        state.setdefault(f"{prefix}trunk.{k}", v)
