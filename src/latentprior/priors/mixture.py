"""A learnable Gaussian mixture prior, and the mixture-of-Gaussians density it shares with the VampPrior.

    p(z) = Σ_k π_k N(z; μ_k, Σ_k),     π = softmax(logits),     Σ_k = L_k L_kᵀ

* ``covariance="full"``: L_k lower triangular with a positive diagonal, stored as ``log_diag`` (K, D) (the
  log of L's diagonal) and ``lower`` (K, D, D), of which only the strictly lower triangle is read: the
  Cholesky parametrisation, so every value of the parameters is a valid covariance.
* ``covariance="diagonal"``: Σ_k = diag(exp(2 log_scale_k)), ``log_scale`` (K, D).

Sampling draws k ~ Cat(π), then z = μ_k + τ L_k ε (τ the temperature: covariances τ² Σ_k, weights unchanged).
The draw of k is not differentiable; the prior learns through ``log_prob`` (the lower-level objective f
maximises E_q log p(z)). An ex-post GMM (fitted by EM, :func:`~latentprior.priors.expost.fit_gmm`) is this class
with its parameters set from the fit.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from latentprior.priors.base import Prior, check_temperature

__all__ = ["MixturePrior", "diagonal_mixture_log_prob", "pick_components"]

_LOG_2PI = math.log(2 * math.pi)


def diagonal_mixture_log_prob(z: Tensor, log_weights: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """log Σ_k w_k N(z; μ_k, diag(exp(logvar_k))).  z: (B, D); log_weights: (K,); means, logvars: (K, D) -> (B,)."""
    diff = z[:, None, :] - means  # (B, K, D)
    log_n = -0.5 * (_LOG_2PI + logvars + diff.pow(2) * torch.exp(-logvars)).sum(-1)  # (B, K)
    return torch.logsumexp(log_weights + log_n, dim=1)


def pick_components(u: Tensor, probs: Tensor) -> Tensor:
    """Inverse-CDF draw of component indices: u (n,) uniform in [0, 1), probs (K,) -> (n,) int64 in [0, K)."""
    cdf = torch.cumsum(probs, 0)
    # Round-off can leave cdf[-1] a little below 1; an index past the end is the last component.
    return torch.searchsorted(cdf, u.contiguous(), right=True).clamp_(max=probs.shape[0] - 1)


class MixturePrior(Prior):
    """p(z) = Σ_k π_k N(z; μ_k, Σ_k) over (B, dim) with K = ``components`` (module docstring for Σ_k).

    Initial values: equal weights, means drawn from N(0, I) (torch's global generator; the run seeds it), unit
    covariances. ``c`` is accepted and ignored (the mixture is unconditional).
    """

    def __init__(self, dim: int, components: int, covariance: Literal["full", "diagonal"] = "full") -> None:
        super().__init__(dim)
        if components < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        if covariance not in ("full", "diagonal"):
            raise ValueError(f"covariance must be 'full' or 'diagonal', got {covariance!r}")
        self.components, self.covariance = components, covariance
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.randn(components, dim))
        if covariance == "full":
            self.log_diag = nn.Parameter(torch.zeros(components, dim))
            self.lower = nn.Parameter(torch.zeros(components, dim, dim))
            self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1), persistent=False)
        else:
            self.log_scale = nn.Parameter(torch.zeros(components, dim))

    def log_weights(self) -> Tensor:
        """log π: (K,)."""
        return torch.log_softmax(self.logits, 0)

    def scale_tril(self) -> Tensor:
        """L_k with Σ_k = L_k L_kᵀ: (K, D, D), lower triangular (diagonal for ``covariance="diagonal"``)."""
        if self.covariance == "diagonal":
            return torch.diag_embed(self.log_scale.exp())
        return self.lower * self.lower_mask + torch.diag_embed(self.log_diag.exp())

    def covariances(self) -> Tensor:
        """Σ_k: (K, D, D)."""
        tril = self.scale_tril()
        return tril @ tril.transpose(-1, -2)

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(z): (B, D) -> (B,), a log-sum-exp over components of log π_k + log N(z; μ_k, Σ_k)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        if self.covariance == "diagonal":
            return diagonal_mixture_log_prob(z, self.log_weights(), self.means, 2 * self.log_scale)
        diff = (z[None, :, :] - self.means[:, None, :]).transpose(1, 2)  # (K, D, B)
        y = torch.linalg.solve_triangular(self.scale_tril(), diff, upper=False)  # L_k⁻¹ (z - μ_k): (K, D, B)
        # log N = -½ |L⁻¹(z - μ)|² - ½ D log 2π - Σ log diag(L)
        log_n = -0.5 * (y.pow(2).sum(1) + self.dim * _LOG_2PI) - self.log_diag.sum(-1, keepdim=True)  # (K, B)
        return torch.logsumexp(self.log_weights()[:, None] + log_n, dim=0)

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws μ_k + τ L_k ε, k ~ Cat(π), ε ~ N(0, I); differentiable in μ and L (not in π)."""
        tau = check_temperature(temperature)
        eps = self.base_noise(n, self.dim, generator)  # (n, D)
        k = pick_components(self.uniform_noise(n, generator), self.log_weights().exp())  # (n,)
        if self.covariance == "diagonal":
            return self.means[k] + self.log_scale.exp()[k] * (tau * eps)
        return self.means[k] + (self.scale_tril()[k] @ (tau * eps)[:, :, None]).squeeze(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, components={self.components}, covariance={self.covariance}"
