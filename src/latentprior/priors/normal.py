"""The fixed standard-normal prior N(0, I), and its log-density shared by every flow's base."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentprior.priors.base import Prior

__all__ = ["StandardNormal", "standard_normal_log_prob"]


def standard_normal_log_prob(u: Tensor) -> Tensor:
    """log N(u; 0, I) summed over the last axis: ``-0.5 * (|u|^2 + D log 2π)``.  u: (B, D) -> (B,)."""
    return -0.5 * (u.pow(2).sum(-1) + u.shape[-1] * math.log(2 * math.pi))


class StandardNormal(Prior):
    """p(z) = N(z; 0, I_D), with no learnable parameters.

    It does not depend on a context: ``c`` is accepted (so a conditional model can swap priors) and
    ignored, since p(z | c) = N(0, I) for every c.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        # A constant buffer, not a Parameter: the prior is fixed, but .to(device) / .double() must still
        # tell `base_noise` where and in which dtype to sample. Not persistent: it is no state to checkpoint.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log N(z; 0, I), z: (B, D) -> (B,)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        return standard_normal_log_prob(z)

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """(n, D) draws on the prior's device and dtype."""
        return self.base_noise(n, self.dim, generator)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
