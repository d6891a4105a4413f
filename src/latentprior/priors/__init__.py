"""Priors over the latent space: the :class:`Prior` / :class:`Transform` contract and its implementations.

* :class:`StandardNormal` — fixed N(0, I).
* :class:`RealNVPPrior` — RealNVP flow (appendix A.1) built from :class:`ActNorm` and :class:`AffineCoupling`.
* :class:`MLPPrior` + :class:`Discriminator` — adversarial implicit prior (appendix A.2).

:func:`build_prior` / :func:`build_discriminator` construct them by name (registry :data:`PRIORS`).
"""

from latentprior.priors.adversarial import ADVERSARIAL_PRESET, Discriminator, MLPPrior
from latentprior.priors.base import ImplicitPriorError, Prior, Transform
from latentprior.priors.normal import StandardNormal, standard_normal_log_prob
from latentprior.priors.realnvp import FLOW_PRESETS, ActNorm, AffineCoupling, RealNVPPrior
from latentprior.priors.registry import PRIORS, PriorKind, build_discriminator, build_prior

__all__ = [
    "Prior",
    "Transform",
    "ImplicitPriorError",
    "StandardNormal",
    "standard_normal_log_prob",
    "ActNorm",
    "AffineCoupling",
    "RealNVPPrior",
    "FLOW_PRESETS",
    "MLPPrior",
    "Discriminator",
    "ADVERSARIAL_PRESET",
    "PriorKind",
    "PRIORS",
    "build_prior",
    "build_discriminator",
]
