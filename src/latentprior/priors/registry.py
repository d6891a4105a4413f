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


def _reject(kind: str, **unused: object) -> None:
    # A value the chosen kind cannot use is a config mistake; ignoring it would hide the typo.
    for name, value in unused.items():
        if value:
            raise ValueError(f"prior kind {kind!r} does not take {name} (got {value!r})")


def _normal(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    # layers/hidden are shared config fields with no meaning here; a context is ignored (p(z|c) = N(0, I)).
    _reject("normal", noise_dim=noise_dim)
    return StandardNormal(dim)


def _realnvp(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    _reject("realnvp", noise_dim=noise_dim)
    return RealNVPPrior(dim, n_layers=layers, hidden=hidden, cond_dim=cond_dim)


def _adversarial(dim: int, *, layers: int, hidden: int, noise_dim: int | None, cond_dim: int) -> Prior:
    _reject("adversarial", cond_dim=cond_dim)
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


def build_discriminator(dim: int, *, layers: int, hidden: int) -> Discriminator:
    """The adversarial prior's discriminator: (B, dim) -> logits (B,)."""
    return Discriminator(dim, hidden=hidden, n_layers=layers)
