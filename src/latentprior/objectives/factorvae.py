"""FactorVAE (Kim & Mnih 2018): a VAE with a standard-normal prior whose encoder also pays for the total
correlation of q(z), estimated by a latent discriminator.

    TC(q) = KL( q(z) || Π_j q(z_j) ) ≈ E_q[ log D(z) / (1 − D(z)) ] = E_q[ logit D(z) ]

where D tells codes drawn from q(z) (high logit) from codes drawn from the product of its marginals, which
:func:`permute_dims` makes by shuffling every dimension independently across the batch. Updates, in order:

    autoencoder (φ, ψ):   maximise  E_q[ log p(x|z) + β (log p(z) − log q(z|x)) ] − γ_TC · E_q[ logit D(z) ]
    tc_discriminator (ω): maximise  E_q[ log D(z) ] + E_Πq[ log(1 − D(z̃)) ]      (z, z̃ detached)

β = 1 and a fixed N(0, I) prior give the paper's FactorVAE (``objective.tc_weight``, γ = 40 there). Both
updates read the codes encoded at the start of the step, and the permuted codes come from the same batch
(Kim & Mnih draw a second batch for them; one batch halves the encoder passes and gives the same estimator
in expectation).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F_
from torch import Tensor

from latentprior.models.autoencoder import LatentAutoencoder, gaussian_log_density
from latentprior.objectives.base import Objective, Phase, Update

__all__ = ["FactorVAE", "permute_dims"]


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each column of z (B, D) shuffled by its own random permutation of the batch: (B, D).

    Every column keeps its values (so each marginal q(z_j) of the batch is unchanged), while the rows no
    longer belong together: a draw from Π_j q(z_j), the product of the marginals.
    """
    b, d = z.shape
    keys = torch.rand(b, d, generator=generator, device=generator.device if generator else z.device)
    perm = keys.argsort(dim=0).to(z.device)  # (B, D): column j's own permutation of 0..B-1
    return z.gather(0, perm)


class FactorVAE(Objective):
    """Updates, in order: ``autoencoder`` (the ELBO minus γ_TC times the TC estimate), ``tc_discriminator``.

    The TC discriminator is a module of the model (``model.tc_discriminator``: ``prior.disc_layers`` x
    ``prior.disc_hidden`` with ``prior.disc_activation``; Kim & Mnih's is 6 x 1000 with LeakyReLU(0.2)), so it is
    checkpointed and resumed with it; its optimizer is one more entry of :attr:`optimizers`, at
    ``objective.disc_lr`` with Adam's ``objective.disc_adam_beta1/2`` (Kim & Mnih: lr 1e-4, betas (0.5, 0.9)).
    """

    def __init__(self, model: LatentAutoencoder, cfg) -> None:
        super().__init__(model, cfg)
        disc = getattr(model, "tc_discriminator", None)
        if disc is None:
            raise ValueError("the FactorVAE objective needs a model with a tc_discriminator")
        params = list(disc.parameters())
        # Kim & Mnih: Adam (0.5, 0.9) at lr 1e-4, set by the FactorVAE configs (objective.disc_adam_beta1/2)
        self.add_group("tc_discriminator", params, lr=cfg.disc_lr or cfg.lr, betas=cfg.disc_betas)

    def updates(self, x: Tensor, phase: Phase = "joint") -> Iterator[Update]:
        m, beta, gamma_tc = self.model, self.cfg.beta, self.cfg.tc_weight
        if phase == "prior":  # a fixed N(0, I) has no prior-only epochs (the config refuses them)
            return
        mean, logvar = m.encode(x)  # (B, D) each
        z = m.posterior_sample(mean, logvar)  # (B, D), reparameterised
        g = m.decode(z)
        log_px = m.log_px_given_z(x, g)  # (B,)
        log_q = gaussian_log_density(z, mean, logvar)
        log_pz = m.prior.log_prob(z)
        tc = m.tc_discriminator(z)  # (B,) logit D(z): the per-code density-ratio estimate of the TC
        F = log_px + beta * (log_pz - log_q) - gamma_tc * tc
        yield self.update("autoencoder", -F.mean(), log_px=log_px.mean(), mse=(x - g).pow(2).mean(),
                          kl_mc=(log_q - log_pz).mean(), tc=tc.mean(), **m.variance.metrics())

        # The discriminator sees both sets as data: detached, so its loss never reaches φ or ψ.
        z = z.detach()
        logits_q, logits_perm = m.tc_discriminator(z), m.tc_discriminator(permute_dims(z))
        loss = -(F_.logsigmoid(logits_q) + F_.logsigmoid(-logits_perm)).mean()
        yield self.update("tc_discriminator", loss, d_joint=torch.sigmoid(logits_q).mean(),
                          d_permuted=torch.sigmoid(logits_perm).mean())
