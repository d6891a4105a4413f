"""The conditional VAE of image-to-image translation under the bilevel objective, y = c(x) the condition.

Upper level (encoder φ, decoder ψ)::

    F = E_q(z|x,y)[ log p(x | y, z) ] − β w(t) KL(q(z | x, y) || p_θ(z | y))

Lower level (prior θ, its condition embedding included)::

    f = E_q(z|x,y)[ log p_θ(z | y) ]

Two settings of this one objective are the two sides of the paper's Table 2:

* **original** (the Variational U-Net): β = 1 with p_θ(z | y) = N(μ_θ(y), I) and the KL weight w(t)
  annealed as the Variational U-Net code does (:func:`kl_weight`). Its code also fixes the posterior's
  variance, q(z | x, y) = N(μ_φ(x, y), I) (``model.posterior: unit``), so that the KL is 1/2 ||μ_φ − μ_θ||²
  (:func:`vunet_kl`), and trains with Adam's betas (0.5, 0.9) (``objective.adam_beta1/2``); with a learned
  posterior variance (``model.posterior: tanh_logvar``) the KL is the full Gaussian one. The lower-level gradient
  in θ is that of −KL itself (∇_θ E_q log p_θ = −∇_θ KL: the entropy of q does not depend on θ), so training θ
  by f is the original joint training of the KL, only with the prior's own optimizer. Adam is invariant to the
  scale w(t) of a gradient, so the annealing weight on θ's gradient does not matter there.
* **proposed**: β = 0 with a RealNVP p_θ(z | y): no KL term, so q is unregularised and the decoder has no
  reason to ignore z; the flow learns p(z | y) by maximum likelihood on the detached codes.

The condition is computed from the batch (``model.condition(x)``), so the batch stays an image tensor.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from latentprior.models.autoencoder import gaussian_log_density
from latentprior.objectives.base import Objective, Phase, Update
from latentprior.priors.flow import FlowPrior
from latentprior.priors.normal import StandardNormal

__all__ = ["ConditionalBilevel", "kl_weight", "kl_to_prior", "vunet_kl", "KL_FLOOR"]

KL_FLOOR = 1e-6  # the Variational U-Net's smallest KL weight (its schedule's start value and lower clip)


def kl_weight(step: int, start: int, end: int) -> float:
    """The Variational U-Net's KL annealing: linear in the step from KL_FLOOR at ``start`` to 1 at ``end``,
    clipped to [KL_FLOOR, 1]. Its code uses start = T/2 and end = 3T/4 for T training steps; ``end = 0`` turns
    the annealing off (weight 1 from the first step)."""
    if end <= 0:
        return 1.0
    if end <= start:
        return 1.0 if step >= end else KL_FLOOR
    linear = KL_FLOOR + (1.0 - KL_FLOOR) * (step - start) / (end - start)
    return min(1.0, max(KL_FLOOR, linear))


def vunet_kl(mean: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """KL(N(mean, I) || N(loc, diag(scale²))) per example: (B, D), (B, D), (D,) -> (B,).

        1/2 Σ_d [ (mean_d − loc_d)² / s_d² + 1/s_d² − 1 + log s_d² ]

    For the Variational U-Net's unit scale the second part is exactly 0, leaving 1/2 ||mean − loc||² (its code's
    ``latent_kl``) without the cancellation 1 + δ² − 1 that loses a small δ² in float32.
    """
    var = scale.pow(2)
    return 0.5 * ((mean - loc).pow(2) / var).sum(-1) + 0.5 * (var.reciprocal() - 1.0 + var.log()).sum(-1)


def kl_to_prior(prior, z: Tensor, mean: Tensor, logvar: Tensor, c: Tensor, *, unit_posterior: bool = False) -> Tensor:
    """KL(q(z | x, y) || p(z | y)) per example (B,): closed form when p is a Gaussian (a flow without layers
    over a normal base) — :func:`vunet_kl` for a unit-variance posterior — else the one-sample estimate
    log q(z) − log p(z | y) at the reparameterised z."""
    if isinstance(prior, FlowPrior) and len(prior.transforms) == 0 and isinstance(prior.base, StandardNormal):
        loc, scale = prior.base.loc_scale(prior.context(c))  # (B, D), (D,)
        if unit_posterior:
            return vunet_kl(mean, loc, scale)
        var_ratio = logvar.exp() / scale.pow(2)
        return 0.5 * (var_ratio + (mean - loc).pow(2) / scale.pow(2) - 1.0 - var_ratio.log()).sum(-1)
    return gaussian_log_density(z, mean, logvar) - prior.log_prob(z, c)


class ConditionalBilevel(Objective):
    """Updates, in order: ``autoencoder`` (maximise F), then ``prior`` (maximise f) if the prior learns.

    Counts its joint steps for the KL schedule and keeps the count in its state (exact resume).
    """

    def __init__(self, model, cfg) -> None:
        super().__init__(model, cfg)
        self.joint_steps = 0

    @classmethod
    def graph_blocker(cls, cfg) -> str | None:
        if cfg.beta > 0 and cfg.kl_anneal_end > 0:  # a replay would keep the captured step's w(t) for ever
            return "the cvae's KL weight w(t) is annealed on the host (objective.kl_anneal_end > 0)"
        return None

    def state_dict(self) -> dict[str, dict]:
        return super().state_dict() | {"kl_schedule": {"joint_steps": self.joint_steps}}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        super().load_state_dict(state)
        self.joint_steps = int(state.get("kl_schedule", {}).get("joint_steps", 0))

    def kl_weight(self) -> float:
        return kl_weight(self.joint_steps, self.cfg.kl_anneal_start, self.cfg.kl_anneal_end)

    def updates(self, x: Tensor, phase: Phase = "joint") -> Iterator[Update]:
        m, beta = self.model, self.cfg.beta
        y = m.condition(x)  # (B, C, H, W), a fixed function of the batch
        c = m.context(y)  # (B, C·H·W): the prior's context
        if phase == "prior":
            with torch.no_grad():  # the frozen encoder of the prior-only epochs
                z = m.posterior_sample(*m.encode(x, y))
            if self.has("prior"):
                log_pz = m.prior.log_prob(z, c)
                yield self.update("prior", -log_pz.mean(), log_pz=log_pz.mean())
            return

        mean, logvar = m.encode(x, y)  # (B, D) each
        z = m.posterior_sample(mean, logvar)  # (B, D), reparameterised
        g = m.decode(z, y)  # (B, C, H, W)
        log_px = m.log_px_given_z(x, g)  # (B,)
        metrics = {"log_px": log_px.mean(), "mse": (x - g).pow(2).mean()}
        F = log_px
        if beta > 0:
            w = self.kl_weight()
            # (B,); reaches θ too, but only φ, ψ step here
            kl = kl_to_prior(m.prior, z, mean, logvar, c, unit_posterior=m.posterior == "unit")
            F = F - beta * w * kl
            metrics |= {"kl": kl.mean(), "kl_weight": log_px.new_tensor(w)}  # on the batch's device
        yield self.update("autoencoder", -F.mean(), **metrics)
        self.joint_steps += 1

        if self.has("prior"):
            # The lower level sees the codes as data: detached, so f never reaches the encoder.
            log_pz = m.prior.log_prob(z.detach(), c)
            yield self.update("prior", -log_pz.mean(), log_pz=log_pz.mean())
