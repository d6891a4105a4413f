"""AAE with an adversarial (MLP) prior under the bilevel objective (paper eqs. 14-16).

D_ω(z) is the probability that z was drawn from the prior (here computed from logits for stability)::

    F(φ, ψ) = E_q[ log p(x|z) − β log(1 − D(z)) ]        encoder/decoder
    f(θ)    = E_p_θ[ −log D(z) ]                          prior MLP
    g(ω)    = E_p_θ[ log D(z) ] + E_q[ log(1 − D(z)) ]    discriminator

each maximised in turn. ``adversarial_loss: nonsaturating`` swaps the two generator-side terms for the
usual non-saturating forms (β log D(z) in F and log(1 − D(z)) in f), which have the same fixed points but
do not vanish when D is confident. ``r1_penalty`` > 0 adds r1/2·E_q|∇_z D|² to the discriminator's loss
(R1, Mescheder et al. 2018), a standard stabiliser of this game that the paper does not use.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F_
from torch import Tensor

from latentprior.objectives.base import Objective, Phase, Update

__all__ = ["AAEBilevel"]


def _log_d(logits: Tensor) -> Tensor:
    return F_.logsigmoid(logits)  # log D


def _log_1m_d(logits: Tensor) -> Tensor:
    return F_.logsigmoid(-logits)  # log (1 − D)


class AAEBilevel(Objective):
    """Updates, in order: ``autoencoder`` (F), ``prior`` (f), ``discriminator`` (g)."""

    def updates(self, x: Tensor, phase: Phase = "joint") -> Iterator[Update]:
        m, beta, paper = self.model, self.cfg.beta, self.cfg.adversarial_loss == "paper"
        if m.discriminator is None:
            raise ValueError("the AAE objective needs a model with a discriminator")
        if phase == "prior":  # the frozen encoder: no graph (the run puts it in eval mode)
            with torch.no_grad():
                z_q = m.posterior_sample(*m.encode(x))
        else:
            z_q = m.posterior_sample(*m.encode(x))  # (B, D)
            g = m.decode(z_q)
            log_px = m.log_px_given_z(x, g)  # (B,)
            F = log_px
            metrics = {"log_px": log_px.mean(), "mse": (x - g).pow(2).mean()}
            if beta > 0:
                logits_q = m.discriminator(z_q)
                F = F + beta * (-_log_1m_d(logits_q) if paper else _log_d(logits_q))
            yield self.update("autoencoder", -F.mean(), **metrics)

        n = x.shape[0]
        if self.has("prior"):
            z_p = m.prior.sample(n)  # (B, D), differentiable w.r.t. θ
            logits_p = m.discriminator(z_p)
            f = -_log_d(logits_p) if paper else _log_1m_d(logits_p)
            yield self.update("prior", -f.mean(), d_prior=torch.sigmoid(logits_p).mean())
            z_p = z_p.detach()
        else:
            with torch.no_grad():
                z_p = m.prior.sample(n)

        # The discriminator sees both sets as data: detached, so g reaches neither θ nor φ.
        r1 = self.cfg.r1_penalty
        z_q = z_q.detach().requires_grad_(r1 > 0)
        logits_p, logits_q = m.discriminator(z_p), m.discriminator(z_q)
        gval = _log_d(logits_p) + _log_1m_d(logits_q)
        loss, metrics = -gval.mean(), {}
        if r1 > 0:
            # R1: the encoded codes play the data's role; a graph through the gradient so the penalty trains D.
            (grad,) = torch.autograd.grad(logits_q.sum(), z_q, create_graph=True)  # (B, D)
            grad_sq = grad.pow(2).sum(1).mean()
            loss, metrics = loss + 0.5 * r1 * grad_sq, {"r1_grad_sq": grad_sq}
        yield self.update("discriminator", loss, d_prior=torch.sigmoid(logits_p).mean(),
                          d_encoded=torch.sigmoid(logits_q).mean(), **metrics)
