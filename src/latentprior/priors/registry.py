"""Build a prior (or the adversarial prior's discriminator) by name, from plain config values.

Kinds are looked up in :data:`PRIORS`; adding a prior means adding one builder there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from latentprior.priors.adversarial import Discriminator, MLPPrior
from latentprior.priors.base import Prior
from latentprior.priors.normal import StandardNormal
from latentprior.priors.realnvp import RealNVPPrior

__all__ = ["PriorKind", "PRIORS", "build_prior", "build_discriminator"]

PriorKind = Literal["normal", "realnvp", "adversarial"]


# Each builder takes the shared config values and uses those its prior has. Which values a kind accepts
# (noise_dim only for adversarial, ...) is a config rule, checked in latentprior.config.


def _normal(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    return StandardNormal(dim)  # p(z | c) = N(0, I) for every c


def _realnvp(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    return RealNVPPrior(dim, n_layers=layers, hidden=hidden, cond_dim=cond_dim)


def _adversarial(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    return MLPPrior(dim, hidden=hidden, n_layers=layers, noise_dim=noise_dim)


PRIORS: dict[str, Callable[..., Prior]] = {
    "normal": _normal,
    "realnvp": _realnvp,
    "adversarial": _adversarial,
}


def build_prior(
    kind: str, dim: int, *, layers: int, hidden: int, noise_dim: int | None = None, cond_dim: int = 0
) -> Prior:
    """A prior over (B, dim) latents.

    ``layers``/``hidden``: coupling count and NN width for ``realnvp``; generator depth and width for
    ``adversarial``; unused by ``normal``. ``noise_dim`` (adversarial only) defaults to ``dim``;
    ``cond_dim`` > 0 makes a ``realnvp`` prior conditional.
    """
    try:
        builder = PRIORS[kind]
    except KeyError:
        raise ValueError(f"unknown prior kind {kind!r}; valid kinds: {', '.join(sorted(PRIORS))}") from None
    return builder(dim, layers=layers, hidden=hidden, noise_dim=noise_dim, cond_dim=cond_dim)


def build_discriminator(dim: int, *, layers: int, hidden: int, activation: str = "relu") -> Discriminator:
    """A latent discriminator (the adversarial prior's, or FactorVAE's TC one): (B, dim) -> logits (B,)."""
    return Discriminator(dim, hidden=hidden, n_layers=layers, activation=activation)
