"""VAE with a density prior under the bilevel objective (paper eqs. 5-7, 12-13).

Upper level (encoder φ, decoder ψ, and γ when learned)::

    F = E_q(z|x)[ log p(x|z) + β (log p_θ(z) − log q(z|x)) ]

Lower level (prior θ)::

    f = E_q(z|x)[ log p_θ(z) ]

At β = 0 the encoder and decoder never see the prior: q(z) is unregularised, while the prior still
learns by maximum likelihood on the encoded latents. At β = 1 with a fixed standard-normal prior this is
the ordinary VAE (with a single-sample Monte-Carlo KL), so a β-VAE is the same code with β > 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from latentprior.models.autoencoder import gaussian_log_density
from latentprior.objectives.base import Objective, Phase, Update

__all__ = ["VAEBilevel"]


class VAEBilevel(Objective):
    """Updates, in order: ``autoencoder`` (maximise F), then ``prior`` (maximise f) if the prior learns."""

    def updates(self, x: Tensor, phase: Phase = "joint") -> Iterator[Update]:
        m, beta = self.model, self.cfg.beta
        if phase == "prior":
            # The paper's prior-only epochs: the encoder is frozen (no graph; the run puts it in eval mode).
            with torch.no_grad():
                mean, logvar = m.encode(x)
                z = m.posterior_sample(mean, logvar)
            if self.has("prior"):
                log_pz = m.prior.log_prob(z)
                yield self.update("prior", -log_pz.mean(), log_pz=log_pz.mean())
            return

        mean, logvar = m.encode(x)  # (B, D) each
        z = m.posterior_sample(mean, logvar)  # (B, D), reparameterised
        g = m.decode(z)  # (B, C, H, W)
        log_px = m.log_px_given_z(x, g)  # (B,)
        metrics = {"log_px": log_px.mean(), "mse": (x - g).pow(2).mean(), **m.variance.metrics()}  # + scale
        F = log_px
        if beta > 0:
            # Not detached: at β > 0 the regulariser pulls q(z) toward p_θ(z) through z.
            log_q = gaussian_log_density(z, mean, logvar)
            log_pz = m.prior.log_prob(z)
            F = F + beta * (log_pz - log_q)
            metrics["kl_mc"] = (log_q - log_pz).mean()
        yield self.update("autoencoder", -F.mean(), **metrics)

        if self.has("prior"):
            # The lower level sees the encoded latents as data: detached, so f never reaches φ.
            log_pz = m.prior.log_prob(z.detach())
            yield self.update("prior", -log_pz.mean(), log_pz=log_pz.mean())
