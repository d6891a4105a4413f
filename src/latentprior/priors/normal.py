"""The fixed standard-normal prior N(0, I) (also every RealNVP flow's base), and the diagonal-normal density."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentprior.priors.base import Prior, check_temperature

__all__ = ["StandardNormal", "normal_log_prob"]

_LOG_2PI = math.log(2 * math.pi)


def normal_log_prob(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log N(x; loc, diag(scale²)) summed over the last axis. x: (B, D); loc, scale: broadcastable to (B, D).

    ``-0.5 (|(x - loc) / scale|² + D log 2π) - Σ log scale``, shape (B,).
    """
    y = (x - loc) / scale
    return -0.5 * (y.pow(2).sum(-1) + x.shape[-1] * _LOG_2PI) - scale.log().sum(-1)


class StandardNormal(Prior):
    """p(z | c) = N(z; loc, diag(scale²)) with the constants loc = 0, scale = 1: no learnable parameters.

    ``c`` is accepted (so a conditional model can swap priors) and ignored, since N(0, I) is the same for
    every c. Both methods read the mean and scale through :meth:`loc_scale`, the one place a normal whose
    mean is learned as a function of c (a conditional flow's base) has to change.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        # Buffers, not Parameters: the prior is fixed, but .to(device) / .double() must still move them, and
        # `base_noise` samples on their device and dtype. Not persistent: constants are no state to checkpoint.
        self.register_buffer("loc", torch.zeros(dim), persistent=False)
        self.register_buffer("scale", torch.ones(dim), persistent=False)

    def loc_scale(self, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of p(z | c), each broadcastable to (B, D): here the (D,) constants."""
        return self.loc, self.scale

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log N(z; loc, diag(scale²)), z: (B, D) -> (B,)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        loc, scale = self.loc_scale(c)
        return normal_log_prob(z, loc, scale)

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws loc + scale τ ε, ε ~ N(0, I), on the prior's device and dtype (τ = 1: N(loc, scale²))."""
        tau = check_temperature(temperature)
        loc, scale = self.loc_scale(c)
        return loc + scale * (tau * self.base_noise(n, self.dim, generator))  # τ·ε is ε exactly at τ = 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
