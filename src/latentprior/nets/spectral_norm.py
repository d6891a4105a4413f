"""Spectral normalisation (Miyato et al., 2018) that divides a layer's output by σ instead of its weight.

A spectrally normalised layer computes with W / σ(W), σ the largest singular value of W as a matrix
(``out x in·kh·kw`` for a convolution), estimated by power iteration. σ is a scalar, so

    x (W / σ)ᵀ + b  =  (x Wᵀ) / σ + b          (a convolution: conv(x, W) / σ + b, the same way)

``torch.nn.utils.parametrizations.spectral_norm`` divides the weight, which for the infogan encoder's 1024 x 6272
layer is a 6.4M-element division per forward and a few more passes over the matrix in backward: about a quarter
of a CPU training step of the paper's net. These layers divide the (B, out) output instead and compute the same
function, the same gradient and the same u, v:

* u, v (buffers ``weight_u`` (out,), ``weight_v`` (in·kh·kw,)): drawn from N(0, I) and normalised, then 15 power
  iterations (16 in training mode, as torch's registration, which evaluates the parametrization once), when the
  layer is made; in training mode one iteration per forward, in place and without gradient::

      u ← W v / max(‖W v‖, eps),   v ← Wᵀ u / max(‖Wᵀ u‖, eps)

  In eval mode the stored u, v are used as they are.
* σ = uᵀ W v with u, v constants: its gradient in W is u vᵀ (torch's, where u, v are clones of the buffers).
* A Linear layer gets W v from its own product: the batch (B, in) gains one row, v, whose output row is W v, so
  σ = u · (W v), and the gradient u vᵀ enters the weight gradient through the same (B+1)-row matrix product,
  without another pass over W.

The state dict has ``weight``, ``bias`` and the buffers ``weight_u``, ``weight_v``; a state dict written by torch's
parametrization (``parametrizations.weight.original``, ``parametrizations.weight.0._u``, ``..._v``) loads as well,
and the parameters come in that parametrization's order (bias, then weight), so an optimizer state saved with
it maps onto the same tensors. ``layer.weight`` is the raw weight; :meth:`normalised_weight` gives W / σ.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SpectralNormLinear", "SpectralNormConv2d", "spectral_norm", "INIT_ITERATIONS"]

INIT_ITERATIONS = 15  # power iterations when u, v are drawn, as torch's parametrization does
# torch's parametrization's state-dict names, relative to the layer: ours <- theirs
_TORCH_KEYS = {"weight": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
               "weight_v": "parametrizations.weight.0._v"}


class _SpectralNorm:
    """What both layers share: u, v, the power iteration, σ, and loading torch's state-dict names."""

    eps: float
    weight: nn.Parameter
    bias: nn.Parameter | None
    weight_u: Tensor
    weight_v: Tensor

    def _init_spectral_norm(self, eps: float) -> None:
        """Draw u, v as torch's parametrization does (u first, then v, from the global generator) and run
        its power iterations. Also puts the parameters in the parametrization's order."""
        self.eps = eps
        w = self._matrix()
        h, k = w.shape
        self.register_buffer("weight_u", F.normalize(w.new_empty(h).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(w.new_empty(k).normal_(0, 1), dim=0, eps=eps))
        # torch's registration then evaluates the parametrization once to check it: one more iteration in training mode
        self._power_iteration(INIT_ITERATIONS + int(self.training))
        # torch's parametrization moves the weight into a child module, so the layer's own parameters (bias)
        # come first: keep that order, which an optimizer's saved state (a list by position) depends on.
        self._parameters["weight"] = self._parameters.pop("weight")

    def _matrix(self) -> Tensor:
        return self.weight.flatten(1)  # (out, in·kh·kw): torch's reshape for dim 0

    @torch.no_grad()
    def _power_iteration(self, n: int) -> None:
        # In place (out=): a buffer keeps its storage, which CUDA graph replay and module replicas rely on.
        w = self._matrix()
        for _ in range(n):
            F.normalize(torch.mv(w, self.weight_v), dim=0, eps=self.eps, out=self.weight_u)
            F.normalize(torch.mv(w.H, self.weight_u), dim=0, eps=self.eps, out=self.weight_v)

    def _vectors(self) -> tuple[Tensor, Tensor]:
        """u, v for this forward: one power iteration first in training mode; clones, so that a later forward's
        in-place update cannot change what this forward's backward reads."""
        if self.training:
            self._power_iteration(1)
        return (self.weight_u.clone(memory_format=torch.contiguous_format),
                self.weight_v.clone(memory_format=torch.contiguous_format))

    def sigma(self) -> Tensor:
        """σ = uᵀ W v with the stored u, v (no iteration), a scalar differentiable in W."""
        return torch.dot(self.weight_u, torch.mv(self._matrix(), self.weight_v))

    def normalised_weight(self) -> Tensor:
        """W / σ with the stored u, v: the weight of the layer's function (for inspection; forward never forms it)."""
        return self.weight / self.sigma()

    def _add_bias(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        # in y's dtype: under autocast the layer's product is bf16/fp16, and an fp32 bias would promote it
        return y if self.bias is None else y + self.bias.to(y.dtype).view(shape)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for ours, theirs in _TORCH_KEYS.items():  # a checkpoint written with torch's parametrization
            if prefix + theirs in state_dict and prefix + ours not in state_dict:
                state_dict[prefix + ours] = state_dict.pop(prefix + theirs)
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[misc]


class SpectralNormLinear(_SpectralNorm, nn.Linear):
    """``nn.Linear`` with spectral normalisation: x (..., in) -> (x Wᵀ) / σ + b (..., out)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, eps: float = 1e-12,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._init_spectral_norm(eps)

    def forward(self, x: Tensor) -> Tensor:
        u, v = self._vectors()
        x2 = x.reshape(-1, self.in_features)  # (B, in)
        # one product for the batch and for W v: row B of (B+1, out) is W v
        y = F.linear(torch.cat([x2, v.to(x2.dtype).unsqueeze(0)]), self.weight)
        sigma = torch.dot(u, y[-1].to(u.dtype))  # uᵀ W v, in the buffers' precision (fp32 under autocast too)
        out = self._add_bias(y[:-1] / sigma, (-1,))  # (B, out)
        return out.reshape(*x.shape[:-1], self.out_features)


class SpectralNormConv2d(_SpectralNorm, nn.Conv2d):
    """``nn.Conv2d`` with spectral normalisation: x (B, C, H, W) -> conv(x, W) / σ + b (B, out, H', W')."""

    def __init__(self, *args: Any, eps: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm(eps)

    def forward(self, x: Tensor) -> Tensor:
        u, v = self._vectors()
        sigma = torch.dot(u, torch.mv(self._matrix(), v))  # uᵀ W v; the conv weight is small, one extra pass is cheap
        return self._add_bias(self._conv_forward(x, self.weight, None) / sigma, (1, -1, 1, 1))


def spectral_norm(layer: nn.Linear | nn.Conv2d, eps: float = 1e-12) -> SpectralNormLinear | SpectralNormConv2d:
    """Spectrally normalise ``layer`` in place and return it: its class becomes the twin above (torch's
    parametrization also swaps a module's class), its Parameters stay, and u, v are drawn from the global
    generator exactly as ``torch.nn.utils.parametrizations.spectral_norm(layer)`` draws them, nothing else."""
    twins: dict[type, type] = {nn.Linear: SpectralNormLinear, nn.Conv2d: SpectralNormConv2d}
    if type(layer) not in twins:
        raise TypeError(f"spectral_norm takes an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    layer.__class__ = twins[type(layer)]
    layer._init_spectral_norm(eps)
    return layer
