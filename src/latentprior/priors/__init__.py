"""Priors over the latent space: the :class:`Prior` / :class:`Transform` contract and its implementations.

* :class:`StandardNormal` — fixed N(0, I).
* :class:`FlowPrior` — a :class:`Transform` (often a :class:`ComposedTransform`) over a base density.
* :class:`RealNVPPrior` — the RealNVP flow (appendix A.1): :class:`ActNorm` and :class:`AffineCoupling`
  layers over a :class:`StandardNormal` base.
* :class:`GlowPrior` — Glow's steps on vectors: :class:`ActNorm`, :class:`LULinear` (a learned invertible
  linear map, LU-decomposed), :class:`AffineCoupling`.
* :class:`AutoregressivePrior` — zuko's MAF (affine) or NSF (rational-quadratic splines) layers, each a
  :class:`ZukoTransform`, behind an :class:`ActNorm`.
* :class:`MixturePrior` — a learnable Gaussian mixture (full covariance by Cholesky factors, or diagonal).
* :class:`VampPrior` — a mixture of the encoder's posteriors at learned pseudo-inputs (Tomczak & Welling).
* :class:`TwoStageVAE` — Dai & Wipf's second-stage VAE over the latents (fitted ex post).
* :class:`MLPPrior` + :class:`Discriminator` — adversarial implicit prior (appendix A.2).
* :func:`conditional_flow` — p(z | y) for image conditions: a :class:`FlowPrior` with a
  :class:`ConditionEmbedding`, conditional couplings and a :class:`ConditionalNormal` base N(μ(y), I).
* :mod:`latentprior.priors.expost` — priors fitted after training on encoded latents (:func:`fit_gmm`,
  :func:`fit_two_stage_vae`, :func:`fit_prior`).

:func:`build_prior` / :func:`build_discriminator` construct them by name (registry :data:`PRIORS`).
"""

from latentprior.priors.adversarial import Discriminator, MLPPrior
from latentprior.priors.autoregressive import AutoregressivePrior, ZukoTransform
from latentprior.priors.base import ImplicitPriorError, Prior, Transform, check_temperature
from latentprior.priors.conditional_flow import ConditionalNormal, ConditionEmbedding, conditional_flow
from latentprior.priors.expost import (
    fit_gmm,
    fit_prior,
    fit_two_stage_vae,
    mixture_from_sklearn,
    standardize_flow_input,
)
from latentprior.priors.flow import ComposedTransform, FlowPrior
from latentprior.priors.glow import GlowPrior, LULinear
from latentprior.priors.mixture import MixturePrior
from latentprior.priors.normal import StandardNormal, normal_log_prob
from latentprior.priors.realnvp import ActNorm, AffineCoupling, RealNVPPrior
from latentprior.priors.registry import PRIORS, PriorKind, PriorOptions, build_discriminator, build_prior
from latentprior.priors.two_stage import TwoStageVAE
from latentprior.priors.vamp import EncoderNotBound, VampPrior

__all__ = [
    "Prior",
    "Transform",
    "ImplicitPriorError",
    "check_temperature",
    "ComposedTransform",
    "FlowPrior",
    "StandardNormal",
    "normal_log_prob",
    "ActNorm",
    "AffineCoupling",
    "RealNVPPrior",
    "LULinear",
    "GlowPrior",
    "ZukoTransform",
    "AutoregressivePrior",
    "MixturePrior",
    "VampPrior",
    "EncoderNotBound",
    "TwoStageVAE",
    "fit_gmm",
    "mixture_from_sklearn",
    "fit_prior",
    "fit_two_stage_vae",
    "standardize_flow_input",
    "ConditionEmbedding",
    "ConditionalNormal",
    "conditional_flow",
    "MLPPrior",
    "Discriminator",
    "PriorKind",
    "PriorOptions",
    "PRIORS",
    "build_prior",
    "build_discriminator",
]
