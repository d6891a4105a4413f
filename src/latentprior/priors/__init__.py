"""Priors over the latent space: the :class:`Prior` / :class:`Transform` contract and its implementations.

* :class:`StandardNormal` — fixed N(0, I).
* :class:`FlowPrior` — a :class:`Transform` (often a :class:`ComposedTransform`) over a base density.
* :class:`RealNVPPrior` — the RealNVP flow (appendix A.1): :class:`ActNorm` and :class:`AffineCoupling`
  layers over a :class:`StandardNormal` base.
* :class:`MLPPrior` + :class:`Discriminator` — adversarial implicit prior (appendix A.2).
* :func:`conditional_flow` — p(z | y) for image conditions: a :class:`FlowPrior` with a
  :class:`ConditionEmbedding`, conditional couplings and a :class:`ConditionalNormal` base N(μ(y), I).

:func:`build_prior` / :func:`build_discriminator` construct them by name (registry :data:`PRIORS`).
"""

from latentprior.priors.adversarial import Discriminator, MLPPrior
from latentprior.priors.base import ImplicitPriorError, Prior, Transform
from latentprior.priors.conditional import ConditionalNormal, ConditionEmbedding, conditional_flow
from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.normal import StandardNormal, normal_log_prob
from latentprior.priors.realnvp import ActNorm, AffineCoupling, RealNVPPrior
from latentprior.priors.registry import PRIORS, PriorKind, build_discriminator, build_prior

__all__ = [
    "Prior",
    "Transform",
    "ImplicitPriorError",
    "ComposedTransform",
    "FlowPrior",
    "StandardNormal",
    "normal_log_prob",
    "ActNorm",
    "AffineCoupling",
    "RealNVPPrior",
    "ConditionEmbedding",
    "ConditionalNormal",
    "conditional_flow",
    "MLPPrior",
    "Discriminator",
    "PriorKind",
    "PRIORS",
    "build_prior",
    "build_discriminator",
]
