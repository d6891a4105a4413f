"""The conditional prior p(z | y) of an image-to-image model: a :class:`FlowPrior` whose parts read y.

    h = E(y)                                    an embedding net over the condition image y
    log p(z | y) = log N(f(z; h); μ(h), I) + log |det df/dz|

* :class:`ConditionEmbedding` E: the condition image (passed flattened, as the Prior contract's (B, C)
  context) -> h: (B, E), computed once per call by :meth:`FlowPrior.context`.
* :class:`ConditionalNormal`: the base N(μ(h), I), a :class:`StandardNormal` whose mean is a learned linear
  function of h (its :meth:`loc_scale` is the only method it changes).
* every :class:`~latentprior.priors.realnvp.AffineCoupling` reads h at its NN input (``cond_dim = E``).

:func:`conditional_flow` builds it. With ``n_layers = 0`` the flow is empty and p(z | y) = N(μ(E(y)), I):
the Variational U-Net's prior, learned from y. There is no conditional class hierarchy: the conditional
prior is a FlowPrior with a conditional base, conditional couplings and an embedding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.normal import StandardNormal
from latentprior.priors.realnvp import realnvp_transform

__all__ = ["ConditionEmbedding", "ConditionalNormal", "conditional_flow"]


class ConditionEmbedding(nn.Module):
    """y flattened (B, C·S·S) -> h (B, out_dim): two stride-2 3x3 convs with ReLU, then a linear layer.

    The flattening keeps the Prior contract's (B, C) context; the net restores the (B, C, S, S) image first.
    """

    def __init__(self, channels: int, side: int, out_dim: int, width: int = 16) -> None:
        super().__init__()
        if min(channels, side, out_dim, width) < 1:
            raise ValueError(f"need positive sizes, got channels={channels}, side={side}, out_dim={out_dim}, "
                             f"width={width}")
        self.channels, self.side, self.out_dim = channels, side, out_dim
        quarter = math.ceil(math.ceil(side / 2) / 2)  # side after two stride-2 convs with padding 1
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * width * quarter * quarter, out_dim),
        )

    @property
    def in_dim(self) -> int:
        """The flattened condition size C·S·S the net expects."""
        return self.channels * self.side * self.side

    def forward(self, c: Tensor) -> Tensor:
        if c.dim() != 2 or c.shape[1] != self.in_dim:
            raise ValueError(f"expected a flattened condition of shape (B, {self.in_dim}), got {tuple(c.shape)}")
        return self.net(c.view(-1, self.channels, self.side, self.side))  # (B, out_dim)


class ConditionalNormal(StandardNormal):
    """p_0(u | h) = N(u; μ(h), I) with μ(h) = W h + b, h: (B, cond_dim).

    W and b start at zero, so a fresh prior is N(0, I) for every condition and learns how y moves the mean.
    """

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__(dim)
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}")
        self.cond_dim = cond_dim
        self.mean = nn.Linear(cond_dim, dim)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)

    def loc_scale(self, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """μ(h): (B, D) and the unit scale: (D,)."""
        if c is None:
            raise ValueError("ConditionalNormal is conditional and needs a context")
        return self.mean(c), self.scale

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws μ(h) + τ ε, ε ~ N(0, I): one context row per draw."""
        if c is not None and c.shape[0] != n:
            raise ValueError(f"asked for {n} draws with {c.shape[0]} conditions: give one condition per draw")
        return super().sample(n, c, generator, temperature)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, cond_dim={self.cond_dim}"


def conditional_flow(dim: int, n_layers: int, hidden: int, *, cond_shape: tuple[int, int, int],
                     embed_dim: int = 64, embed_width: int = 16) -> FlowPrior:
    """p(z | y): RealNVP (appendix A.1, ``n_layers`` couplings of width ``hidden``) over N(μ(h), I), with
    h = E(y) from a :class:`ConditionEmbedding` of the (C, S, S) condition image; ``n_layers = 0`` gives the
    Gaussian N(μ(h), I) alone. Call it with the condition flattened: ``log_prob(z, y.flatten(1))``."""
    if n_layers < 0 or (n_layers and dim < 2):
        raise ValueError(f"a conditional flow needs n_layers >= 0 and, with layers, dim >= 2; got {n_layers}, {dim}")
    c, s, s2 = cond_shape
    if s != s2:
        raise ValueError(f"square conditions are expected, got {s}x{s2}")
    embedding = ConditionEmbedding(c, s, embed_dim, width=embed_width)
    transform = realnvp_transform(dim, n_layers, hidden, embed_dim) if n_layers else ComposedTransform()
    return FlowPrior(transform, ConditionalNormal(dim, embed_dim), embedding=embedding)
