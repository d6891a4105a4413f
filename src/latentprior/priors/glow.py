"""Glow's step of flow on latent vectors: ActNorm, a learned invertible linear map, an affine coupling.

One step, in the latent -> base direction (``Transform.forward``)::

    z <- γ z + β                       ActNorm (identity at initialisation)
    z <- W z                           LU-decomposed invertible "1x1 convolution" of a vector, log|det| = Σ log|s|
    za, zb <- split(z);  zb <- σ (zb + μ(za)),  σ = sigmoid(s(za) + 2)      the appendix-A.1 coupling

with ``W = P L (U + diag(sign ⊙ exp(log_s)))`` (Kingma & Dhariwal, 2018, section 3.2): P a fixed permutation,
L unit lower triangular, U strictly upper triangular, ``sign`` fixed, and L, U, log_s learned. W starts as a
random rotation, LU-factorised once, so it mixes every dimension from the first step; a RealNVP cascade only
alternates which half each coupling conditions on. The appendix-A.1 RealNVP (``realnvp``) is left as it is;
this is a separate prior kind (``glow``).

Glow initialises ActNorm from the first batch's statistics; here ActNorm starts as the identity (as in
``realnvp``), so a run's first step does not depend on which batch comes first and resumes need no extra state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentprior.priors.base import Transform
from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.normal import StandardNormal
from latentprior.priors.realnvp import ActNorm, AffineCoupling

__all__ = ["LULinear", "glow_transform", "GlowPrior"]


class LULinear(Transform):
    """An invertible linear map u = W z, W = P L (U + diag(sign · exp(log_s))): (B, D) -> (B, D).

    ``log|det du/dz| = Σ_d log_s_d`` for every example (det P = ±1 and det L = 1; the signs are fixed, so W
    never passes through a singular matrix while it learns). The inverse solves two triangular systems
    instead of inverting W. ``c`` is accepted and ignored.

    Parameters ``lower`` and ``upper`` are full (D, D) matrices of which only the strictly lower / upper
    triangle is read; buffers ``perm`` (P as a matrix) and ``sign`` are fixed at construction from the LU
    factors of a random orthogonal matrix drawn from torch's global generator (seed it for a reproducible
    build; a checkpoint carries P and the signs).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        q, _ = torch.linalg.qr(torch.randn(dim, dim))  # a random rotation (or reflection): |det| = 1
        p, l, u = torch.linalg.lu(q)  # q = p @ l @ u, l unit lower triangular
        s = torch.diagonal(u)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1), persistent=False)
        self.lower = nn.Parameter(l * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(u, 1))
        self.log_s = nn.Parameter(s.abs().log())

    def _factors(self) -> tuple[Tensor, Tensor]:
        """L (unit lower triangular) and U' = U + diag(sign · exp(log_s)) (upper triangular), each (D, D)."""
        eye = torch.eye(self.dim, dtype=self.lower.dtype, device=self.lower.device)
        l_mat = self.lower * self.lower_mask + eye
        u_mat = self.upper * self.lower_mask.T + torch.diag(self.sign * self.log_s.exp())
        return l_mat, u_mat

    def weight(self) -> Tensor:
        """W = P L U': (D, D)."""
        l_mat, u_mat = self._factors()
        return self.perm @ l_mat @ u_mat

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) -> u = z Wᵀ: (B, D), log|det du/dz|: (B,)."""
        _check(z, self.dim)
        return z @ self.weight().T, self.log_s.sum().expand(z.shape[0])

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) -> z = W⁻¹ u: (B, D), log|det dz/du|: (B,)."""
        _check(u, self.dim)
        l_mat, u_mat = self._factors()
        y = self.perm.T @ u.T  # (D, B): P⁻¹ = Pᵀ
        y = torch.linalg.solve_triangular(l_mat, y, upper=False, unitriangular=True)
        z = torch.linalg.solve_triangular(u_mat, y, upper=True)
        return z.T, (-self.log_s.sum()).expand(u.shape[0])

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _check(x: Tensor, dim: int) -> None:
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"expected shape (B, {dim}), got {tuple(x.shape)}")


def glow_transform(dim: int, n_steps: int, hidden: int) -> ComposedTransform:
    """``n_steps`` steps of [:class:`ActNorm`, :class:`LULinear`, :class:`AffineCoupling` (width ``hidden``)].

    Every coupling conditions on the first half: the learned W in front of it decides what that half holds.
    """
    layers: list[Transform] = []
    for _ in range(n_steps):
        layers += [ActNorm(dim), LULinear(dim), AffineCoupling(dim, hidden)]
    return ComposedTransform(layers)


class GlowPrior(FlowPrior):
    """``log p(z) = log N(f(z); 0, I) + log|det df/dz|`` with f = ``n_steps`` Glow steps (module docstring)."""

    def __init__(self, dim: int, n_steps: int, hidden: int) -> None:
        if n_steps < 1 or dim < 2:
            raise ValueError(f"GlowPrior needs n_steps >= 1 and dim >= 2, got {n_steps}, {dim}")
        super().__init__(glow_transform(dim, n_steps, hidden), StandardNormal(dim))
        self.n_steps, self.hidden = n_steps, hidden

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_steps={self.n_steps}, hidden={self.hidden}"
