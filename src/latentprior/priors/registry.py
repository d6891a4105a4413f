"""Build a prior (or the adversarial prior's discriminator) by name, from plain config values.

Kinds are looked up in :data:`PRIORS`; adding a prior means adding one builder there. Every builder takes the
latent dimension and one :class:`PriorOptions` and reads the options its prior has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from latentprior.priors.adversarial import Discriminator, MLPPrior
from latentprior.priors.autoregressive import AutoregressivePrior
from latentprior.priors.base import Prior
from latentprior.priors.glow import GlowPrior
from latentprior.priors.mixture import MixturePrior
from latentprior.priors.normal import StandardNormal
from latentprior.priors.realnvp import RealNVPPrior
from latentprior.priors.vamp import VampPrior

__all__ = ["PriorKind", "PriorOptions", "PRIORS", "build_prior", "build_discriminator"]

PriorKind = Literal["normal", "realnvp", "glow", "maf", "nsf", "gmm", "vamp", "adversarial"]


@dataclass(frozen=True)
class PriorOptions:
    """The plain values the builders read. Which values a kind accepts (noise_dim only for adversarial, ...)
    is a config rule, checked in latentprior.config; the builders below may assume a valid combination.

    ``layers``/``hidden``: couplings (realnvp), steps (glow) or autoregressive layers (maf, nsf) and their
    networks' width; generator depth and width (adversarial). ``components``: mixture components (gmm) or
    pseudo-inputs (vamp). ``image_shape``: (C, H, W) of the encoder's input (vamp's pseudo-inputs).
    """

    layers: int = 1
    hidden: int = 64
    noise_dim: int | None = None
    cond_dim: int = 0
    components: int = 10
    covariance: Literal["full", "diagonal"] = "full"
    bins: int = 8
    image_shape: tuple[int, int, int] | None = None


def _normal(dim: int, o: PriorOptions) -> Prior:
    return StandardNormal(dim)  # p(z | c) = N(0, I) for every c


def _realnvp(dim: int, o: PriorOptions) -> Prior:
    return RealNVPPrior(dim, n_layers=o.layers, hidden=o.hidden, cond_dim=o.cond_dim)


def _glow(dim: int, o: PriorOptions) -> Prior:
    return GlowPrior(dim, n_steps=o.layers, hidden=o.hidden)


def _maf(dim: int, o: PriorOptions) -> Prior:
    return AutoregressivePrior("maf", dim, n_layers=o.layers, hidden=o.hidden)


def _nsf(dim: int, o: PriorOptions) -> Prior:
    return AutoregressivePrior("nsf", dim, n_layers=o.layers, hidden=o.hidden, bins=o.bins)


def _gmm(dim: int, o: PriorOptions) -> Prior:
    return MixturePrior(dim, o.components, o.covariance)


def _vamp(dim: int, o: PriorOptions) -> Prior:
    if o.image_shape is None:
        raise ValueError("a VampPrior needs image_shape, the (C, H, W) of its pseudo-inputs")
    return VampPrior(dim, o.image_shape, o.components)  # the encoder is bound by models/build.py


def _adversarial(dim: int, o: PriorOptions) -> Prior:
    return MLPPrior(dim, hidden=o.hidden, n_layers=o.layers, noise_dim=o.noise_dim)


PRIORS: dict[str, Callable[[int, PriorOptions], Prior]] = {
    "normal": _normal,
    "realnvp": _realnvp,
    "glow": _glow,
    "maf": _maf,
    "nsf": _nsf,
    "gmm": _gmm,
    "vamp": _vamp,
    "adversarial": _adversarial,
}


def build_prior(kind: str, dim: int, *, layers: int, hidden: int, noise_dim: int | None = None, cond_dim: int = 0,
                components: int = 10, covariance: Literal["full", "diagonal"] = "full", bins: int = 8,
                image_shape: tuple[int, int, int] | None = None) -> Prior:
    """A prior over (B, dim) latents; the keywords are :class:`PriorOptions`' fields.

    ``cond_dim`` > 0 makes a ``realnvp`` prior conditional; a ``vamp`` prior comes back without its encoder
    (``VampPrior.bind_encoder``).
    """
    try:
        builder = PRIORS[kind]
    except KeyError:
        raise ValueError(f"unknown prior kind {kind!r}; valid kinds: {', '.join(sorted(PRIORS))}") from None
    options = PriorOptions(layers=layers, hidden=hidden, noise_dim=noise_dim, cond_dim=cond_dim,
                           components=components, covariance=covariance, bins=bins, image_shape=image_shape)
    return builder(dim, options)


def build_discriminator(dim: int, *, layers: int, hidden: int, activation: str = "relu") -> Discriminator:
    """A latent discriminator (the adversarial prior's, or FactorVAE's TC one): (B, dim) -> logits (B,)."""
    return Discriminator(dim, hidden=hidden, n_layers=layers, activation=activation)
