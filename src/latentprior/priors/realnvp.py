"""RealNVP flow prior, exactly as the paper's appendix A.1.

One transformation f_t of the flow, in the latent -> base direction (``Transform.forward``)::

    z      <- γ z + β                 (ActNorm, before every second coupling: t even)
    za, zb <- split(z)
    μ, s   <- NN(za [, c])            NN = FC-hidden -> ReLU -> FC-hidden -> ReLU -> FC-2|zb|
    σ      <- sigmoid(s + 2)
    zb     <- σ (zb + μ)               log|det| = Σ log σ
    z      <- concat(za, zb)

``σ ∈ (0, 1)``: each coupling contracts its half towards the base; ActNorm supplies any expansion.
With the last FC zero-initialised (as the paper asks), a fresh coupling is *not* the identity: μ = 0 and
σ = sigmoid(2) ≈ 0.881, so it is the fixed contraction zb -> 0.881 zb. ActNorm starts as the identity.
The paper's layer counts and widths per dataset (A.3) are in the configs under ``configs/``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentprior.priors.base import Transform
from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.normal import StandardNormal

__all__ = ["ActNorm", "AffineCoupling", "RealNVPPrior", "realnvp_transform"]


def _check_input(x: Tensor, dim: int) -> None:
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"expected shape (B, {dim}), got {tuple(x.shape)}")


def _check_context(c: Tensor | None, cond_dim: int, batch: int) -> None:
    # A context given to an unconditional flow (or missing from a conditional one) is a wiring bug
    # upstream; ignoring it silently would train the wrong model.
    if cond_dim == 0:
        if c is not None:
            raise ValueError("this flow is unconditional (cond_dim=0) but a context c was given")
        return
    if c is None:
        raise ValueError(f"this flow is conditional (cond_dim={cond_dim}) and needs a context c")
    if c.dim() != 2 or c.shape != (batch, cond_dim):
        raise ValueError(f"expected c of shape ({batch}, {cond_dim}), got {tuple(c.shape)}")


class ActNorm(Transform):
    """Learnable per-dimension affine ``u = γ z + β``, initialised to the identity (no data-dependent init).

    γ is stored as ``log_scale = log|γ|`` (so γ = exp(log_scale) > 0): the map can never become singular,
    because γ cannot pass through 0 during optimisation. The sign of γ is not needed by the flow.
    ``log|det du/dz| = Σ_d log_scale_d`` for every example. ``c`` is accepted and ignored.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) -> u: (B, D), log|det du/dz|: (B,)."""
        _check_input(z, self.dim)
        u = z * self.log_scale.exp() + self.bias
        return u, self.log_scale.sum().expand(z.shape[0])

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) -> z = (u - β) / γ: (B, D), log|det dz/du|: (B,)."""
        _check_input(u, self.dim)
        z = (u - self.bias) * (-self.log_scale).exp()
        return z, (-self.log_scale.sum()).expand(u.shape[0])

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class AffineCoupling(Transform):
    """RealNVP affine coupling with the paper's ``σ = sigmoid(s + 2)`` scale.

    z: (B, D), D >= 2, is split into ``z[:, :D//2]`` and ``z[:, D//2:]`` (sizes D//2 and D - D//2, so odd
    D works).
    ``swap=False`` conditions on the first part and transforms the second; ``swap=True`` the reverse, so
    alternating layers transform every dimension. With ``cond_dim > 0`` the context c: (B, cond_dim) is
    concatenated to the conditioning half at the NN input.

    Forward: ``ub = σ (zb + μ)``, ``log|det du/dz| = Σ log σ``; inverse: ``zb = ub / σ - μ``.
    Kernels are Glorot-uniform and biases zero, except the last FC, whose weights and bias are zero.
    """

    def __init__(self, dim: int, hidden: int, swap: bool = False, cond_dim: int = 0) -> None:
        super().__init__()
        # dim 1 would leave one half empty: every other coupling would be the identity.
        if dim < 2 or hidden < 1 or cond_dim < 0:
            raise ValueError(f"need dim >= 2, hidden >= 1, cond_dim >= 0; got {dim}, {hidden}, {cond_dim}")
        self.dim, self.hidden, self.swap, self.cond_dim = dim, hidden, swap, cond_dim
        first, second = dim // 2, dim - dim // 2
        n_cond, self.n_trans = (second, first) if swap else (first, second)
        self.net = nn.Sequential(
            nn.Linear(n_cond + cond_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * self.n_trans),  # μ and s for the transformed half
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """-> (conditioning half, transformed half)."""
        first, second = x[:, : self.dim // 2], x[:, self.dim // 2 :]
        return (second, first) if self.swap else (first, second)

    def _join(self, xa: Tensor, xb: Tensor) -> Tensor:
        return torch.cat((xb, xa) if self.swap else (xa, xb), dim=1)

    def _mu_log_sigma(self, xa: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        _check_context(c, self.cond_dim, xa.shape[0])
        h = self.net(xa if c is None else torch.cat((xa, c), dim=1))  # (B, 2 |zb|)
        mu, s = h[:, : self.n_trans], h[:, self.n_trans :]
        # logsigmoid(s + 2) rather than log(sigmoid(.)), which underflows to -inf for very negative s.
        return mu, F.logsigmoid(s + 2.0)

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) -> u: (B, D), log|det du/dz|: (B,)."""
        _check_input(z, self.dim)
        za, zb = self._split(z)
        mu, log_sigma = self._mu_log_sigma(za, c)
        ub = (zb + mu) * log_sigma.exp()
        return self._join(za, ub), log_sigma.sum(-1)

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) -> z: (B, D), log|det dz/du|: (B,)."""
        _check_input(u, self.dim)
        ua, ub = self._split(u)  # ua == za: the conditioning half passes through unchanged
        mu, log_sigma = self._mu_log_sigma(ua, c)
        zb = ub * (-log_sigma).exp() - mu
        return self._join(ua, zb), -log_sigma.sum(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, swap={self.swap}, cond_dim={self.cond_dim}"


def realnvp_transform(dim: int, n_layers: int, hidden: int, cond_dim: int = 0) -> ComposedTransform:
    """The appendix-A.1 cascade: for t = 0 .. n_layers-1, an :class:`ActNorm` when t is even, then an
    :class:`AffineCoupling` with ``swap = (t odd)`` whose NN reads a (B, cond_dim) context when cond_dim > 0."""
    layers: list[Transform] = []
    for t in range(n_layers):
        if t % 2 == 0:
            layers.append(ActNorm(dim))
        layers.append(AffineCoupling(dim, hidden, swap=t % 2 == 1, cond_dim=cond_dim))
    return ComposedTransform(layers)


class RealNVPPrior(FlowPrior):
    """Flow prior ``log p(z | c) = log N(f(z; c); 0, I) + log|det df/dz|`` with f = f_T ∘ ... ∘ f_1.

    ``transforms`` holds, for t = 0 .. n_layers-1: an :class:`ActNorm` when t is even, then an
    :class:`AffineCoupling` with ``swap = (t odd)``; the base is a :class:`StandardNormal`.
    ``n_layers`` counts couplings.
    """

    def __init__(self, dim: int, n_layers: int, hidden: int, cond_dim: int = 0) -> None:
        if n_layers < 1 or dim < 2:
            raise ValueError(f"RealNVPPrior needs n_layers >= 1 and dim >= 2, got {n_layers}, {dim}")
        super().__init__(realnvp_transform(dim, n_layers, hidden, cond_dim), StandardNormal(dim))
        self.n_layers, self.hidden, self.cond_dim = n_layers, hidden, cond_dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_layers={self.n_layers}, hidden={self.hidden}, cond_dim={self.cond_dim}"
