"""Masked autoregressive flows from zuko behind our :class:`~latentprior.priors.base.Transform`: MAF (affine)
and NSF (monotonic rational-quadratic splines).

One zuko layer is a lazy transform: given the context c it builds a ``torch.distributions.Transform`` that
maps its input to the base space with ``call_and_ladj`` (value and log|det|). zuko's direction is ours (data ->
base), so :class:`ZukoTransform` only renames it:

    forward(z, c) = lazy(c).call_and_ladj(z)          -> u, log|det du/dz|
    inverse(u, c) = lazy(c).inv.call_and_ladj(u)      -> z, log|det dz/du|

and the layers sit in a :class:`~latentprior.priors.flow.ComposedTransform` inside an ordinary
:class:`~latentprior.priors.flow.FlowPrior` over N(0, I), so Z_0 metrics, interpolation in the base space,
previews and checkpoints treat them as any other flow. Each layer's state_dict keys are
``transforms.<i>.lazy.<zuko's names>``.

Each layer i is autoregressive in the order 0..D-1 (i even) or D-1..0 (i odd), with its conditioner a MADE of
two hidden layers of width ``hidden``: evaluating log p(z) is one pass, sampling is D sequential passes per
layer (zuko's fixed-point inverse, exact after D passes).

* MAF (Papamakarios et al., 2017): u_d = z_d exp(a_d) + b_d, (a, b) = MADE(z_<d); zuko bounds a softly.
* NSF (Durkan et al., 2019): u_d = RQS_d(z_d), a monotonic rational-quadratic spline with ``bins`` bins on
  [-bound, bound] and the identity outside (its slope is 1 at the bounds, so the map is C¹).

Both interleave our :class:`~latentprior.priors.realnvp.ActNorm` before each zuko layer (identity at the start):
the latents of an unregularised autoencoder (β = 0) have any scale, and a learned per-dimension scale lets a
layer bring them into the spline's box, where outside it an NSF layer is the identity.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

from latentprior.priors.base import Transform
from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.normal import StandardNormal
from latentprior.priors.realnvp import ActNorm, _check_context, _check_input

__all__ = ["ZukoTransform", "maf_layer", "nsf_layer", "autoregressive_transform", "AutoregressivePrior"]


class ZukoTransform(Transform):
    """One zuko lazy transform (an ``nn.Module`` c -> ``torch.distributions.Transform``) as our Transform.

    ``dim``, ``cond_dim``: the sizes it was built for; inputs are checked against them, as our own layers do.
    """

    def __init__(self, lazy: nn.Module, dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.lazy = lazy
        self.dim, self.cond_dim = dim, cond_dim

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) -> u: (B, D), log|det du/dz|: (B,)."""
        _check_input(z, self.dim)
        _check_context(c, self.cond_dim, z.shape[0])
        return self.lazy(c).call_and_ladj(z)

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) -> z: (B, D), log|det dz/du|: (B,)."""
        _check_input(u, self.dim)
        _check_context(c, self.cond_dim, u.shape[0])
        return self.lazy(c).inv.call_and_ladj(u)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, cond_dim={self.cond_dim}"


def _order(dim: int, i: int) -> Tensor:
    ascending = torch.arange(dim)
    return ascending if i % 2 == 0 else ascending.flip(0)


def maf_layer(dim: int, hidden: int, i: int = 0, cond_dim: int = 0) -> ZukoTransform:
    """The i-th MAF layer: an affine autoregressive map with a MADE conditioner (width ``hidden``, 2 layers)."""
    lazy = MaskedAutoregressiveTransform(dim, cond_dim, order=_order(dim, i), univariate=MonotonicAffineTransform,
                                         shapes=((), ()), hidden_features=(hidden, hidden))
    return ZukoTransform(lazy, dim, cond_dim)


def nsf_layer(dim: int, hidden: int, i: int = 0, cond_dim: int = 0, *, bins: int = 8,
              bound: float = 5.0) -> ZukoTransform:
    """The i-th NSF layer: ``bins`` rational-quadratic bins on [-bound, bound] per dimension, whose widths,
    heights and inner knot slopes (``bins - 1``) a MADE (width ``hidden``, 2 layers) reads from z_<d."""
    if bins < 2 or bound <= 0:
        raise ValueError(f"an NSF layer needs bins >= 2 and bound > 0, got {bins}, {bound}")
    spline = partial(MonotonicRQSTransform, bound=bound)
    lazy = MaskedAutoregressiveTransform(dim, cond_dim, order=_order(dim, i), univariate=spline,
                                         shapes=((bins,), (bins,), (bins - 1,)), hidden_features=(hidden, hidden))
    return ZukoTransform(lazy, dim, cond_dim)


def autoregressive_transform(family: str, dim: int, n_layers: int, hidden: int, *, cond_dim: int = 0,
                             bins: int = 8) -> ComposedTransform:
    """``n_layers`` x [:class:`ActNorm`, a ``family`` layer], family ``"maf"`` or ``"nsf"``."""
    if family not in ("maf", "nsf"):
        raise ValueError(f"family must be 'maf' or 'nsf', got {family!r}")
    layers: list[Transform] = []
    for i in range(n_layers):
        layer = maf_layer(dim, hidden, i, cond_dim) if family == "maf" else nsf_layer(dim, hidden, i, cond_dim,
                                                                                        bins=bins)
        layers += [ActNorm(dim), layer]
    return ComposedTransform(layers)


class AutoregressivePrior(FlowPrior):
    """``log p(z) = log N(f(z); 0, I) + log|det df/dz|`` with f ``n_layers`` MAF or NSF layers (module docstring)."""

    def __init__(self, family: str, dim: int, n_layers: int, hidden: int, *, bins: int = 8) -> None:
        if n_layers < 1 or dim < 2:
            raise ValueError(f"AutoregressivePrior needs n_layers >= 1 and dim >= 2, got {n_layers}, {dim}")
        super().__init__(autoregressive_transform(family, dim, n_layers, hidden, bins=bins), StandardNormal(dim))
        self.family, self.n_layers, self.hidden, self.bins = family, n_layers, hidden, bins

    def extra_repr(self) -> str:
        bins = f", bins={self.bins}" if self.family == "nsf" else ""
        return f"family={self.family}, dim={self.dim}, n_layers={self.n_layers}, hidden={self.hidden}{bins}"
