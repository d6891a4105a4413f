"""The generative autoencoder: encoder q(z|x), decoder p(x|z) (a pixel likelihood — the Gaussian N(G(z), γI),
Laplace or Bernoulli, :mod:`latentprior.models.likelihood` — and/or a perceptual term,
:mod:`latentprior.models.reconstruction`), prior p(z).

VAE and AAE are the same module; they differ only in the objective that trains them
(:mod:`latentprior.objectives`) and in whether a latent discriminator is attached.

Conditioning is an argument, as a flow library's ``context=None``: a model made with ``condition=NAME`` (image-to-
image translation, ``data.condition``) learns q(z | x, y), p(x | y, z) and p(z | y) for y = c(x), a fixed function
of the image (:mod:`latentprior.data.conditions`), and its ``encode``/``decode``/``sample`` take ``y``; a model
without a condition takes ``y=None`` everywhere. The batch stays a tensor of images: y is computed from it
(:meth:`LatentAutoencoder.condition`), so the run (steps, shards, resume, prior-only phase) treats both alike. The
prior reads y flattened, the Prior contract's (B, C) context (:meth:`LatentAutoencoder.context`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentprior.data.conditions import condition_fn
from latentprior.errors import UserError
from latentprior.models.likelihood import PixelLikelihood
from latentprior.models.reconstruction import DecoderVariance, PerceptualLoss
from latentprior.priors.base import Prior, check_temperature

__all__ = ["POSTERIORS", "encoder_outputs", "LatentAutoencoder", "ConditionRequired", "gaussian_log_density"]

_LOG_2PI = math.log(2 * math.pi)
SIGMA_FLOOR = 1e-6  # Dai & Wipf's sigma = 1e-6 + softplus(h)


def _tanh_logvar(h: Tensor) -> Tensor:
    # A soft bound keeps exp(logvar) finite early in training without clipping gradients to zero.
    return 10.0 * torch.tanh(h / 10.0)


def _softplus_std(h: Tensor) -> Tensor:
    # sigma > 1e-6 for every h, so log sigma^2 >= 2 log 1e-6 ~ -27.6; large h grow sigma linearly, not exponentially
    return 2.0 * torch.log(SIGMA_FLOOR + F.softplus(h))


# model.posterior -> h (B, D) -> log sigma^2 (B, D) of q(z|x); None: sigma = 1, the encoder gives the mean alone
# (the Variational U-Net's q(z|x,y) = N(mu, I))
POSTERIORS = {"tanh_logvar": _tanh_logvar, "softplus_std": _softplus_std, "unit": None}


def encoder_outputs(latent_dim: int, gaussian: bool, posterior: str) -> int:
    """The encoder's output size: the mean, and for a Gaussian posterior with a learned variance its h too."""
    return 2 * latent_dim if gaussian and POSTERIORS[posterior] is not None else latent_dim


class ConditionRequired(ValueError, UserError):
    """A conditional model was asked for something without its condition y (or an unconditional one given one)."""


def gaussian_log_density(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last dim: (B, D) -> (B,)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar)).sum(-1)


class LatentAutoencoder(nn.Module):
    """Encoder, decoder, decoder variance, prior, and a latent discriminator for adversarial priors (or FactorVAE).

    Args:
        encoder: x (B, C, H, W) -> (B, 2D) for a Gaussian encoder, (B, D) for a deterministic one or the unit
            posterior (:func:`encoder_outputs`).
        decoder: z (B, D) -> G(z) (B, C, H, W).
        prior: a :class:`~latentprior.priors.base.Prior` over (B, D).
        gaussian_encoder: whether the encoder outputs (mean, log-variance).
        variance: the pixel likelihood p(x|z) given G(z) with its scale, if any: the Gaussian's γ
            (:class:`DecoderVariance`, the default), or a Laplace or Bernoulli likelihood
            (:mod:`latentprior.models.likelihood`). Named ``variance`` for the Gaussian it was first.
        discriminator: z (B, D) -> logits (B,), where a high logit says "drawn from the prior".
        tc_discriminator: FactorVAE's z (B, D) -> logits (B,), where a high logit says "drawn from q(z)" rather
            than from the product of its marginals (objectives/factorvae.py).
        pixel_likelihood: whether log p(x|z) includes the pixel term ``variance.log_density``.
        perceptual: a perceptual term P(x, G(z)) (B,); log p(x|z) gets -perceptual_weight·P.
        posterior: how the encoder's second half h gives q(z|x)'s variance (:data:`POSTERIORS`).
        condition: the name of y = c(x) in :data:`~latentprior.data.conditions.CONDITIONS` for an image-to-image
            model, None for an unconditional one. With a condition the encoder reads [x, y] (B, 2C, H, W), the decoder
            (z (B, D), y (B, C, H, W)), and the prior p(z | c) the context c = y flattened (B, C·H·W).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: Prior, *, latent_dim: int,
                 gaussian_encoder: bool = True, variance: PixelLikelihood | None = None,
                 discriminator: nn.Module | None = None, tc_discriminator: nn.Module | None = None,
                 pixel_likelihood: bool = True,
                 perceptual: PerceptualLoss | None = None, perceptual_weight: float = 1.0,
                 posterior: str = "tanh_logvar", condition: str | None = None) -> None:
        super().__init__()
        if not pixel_likelihood and perceptual is None:
            raise ValueError("log p(x|z) needs the pixel likelihood, a perceptual term, or both")
        if posterior not in POSTERIORS:
            raise ValueError(f"unknown posterior {posterior!r}; known: {', '.join(POSTERIORS)}")
        self.posterior = posterior
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.variance = variance if variance is not None else DecoderVariance()
        self.pixel_likelihood = pixel_likelihood
        self.perceptual = perceptual
        self.perceptual_weight = perceptual_weight
        self.discriminator = discriminator
        self.tc_discriminator = tc_discriminator
        self.latent_dim = latent_dim
        self.gaussian_encoder = gaussian_encoder
        self.condition_name = condition
        self._condition = None if condition is None else condition_fn(condition)

    # ----------------------------------------------------------------- the condition

    @property
    def conditional(self) -> bool:
        """Whether the model learns p(x | y) for a condition y = c(x)."""
        return self._condition is not None

    def condition(self, x: Tensor) -> Tensor | None:
        """y = c(x): (B, C, H, W) -> (B, C, H, W) without gradient (a fixed function of the data); None for an
        unconditional model."""
        if self._condition is None:
            return None
        with torch.no_grad():
            return self._condition(x)

    @staticmethod
    def context(y: Tensor | None) -> Tensor | None:
        """The prior's context for a condition y (B, C, H, W): y flattened (B, C·H·W); None for None."""
        return None if y is None else y.flatten(1)

    def _check_condition(self, y: Tensor | None, what: str) -> None:
        if self.conditional and y is None:
            raise ConditionRequired(f"this model is conditional (condition '{self.condition_name}'): it {what} "
                                    "given a condition y; for metrics use cond_fid, cond_mse, cond_lpips, cond_z_share")
        if not self.conditional and y is not None:
            raise ConditionRequired(f"this model is unconditional: it {what} without a condition (y=None)")

    # ----------------------------------------------------------------- encoder / decoder

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """q(z | x[, y]): x (B, C, H, W) -> mean (B, D), log-variance (B, D) or None for a deterministic encoder.
        A conditional model computes y = c(x) when it is not given."""
        if self.conditional:
            y = self.condition(x) if y is None else y
            x = torch.cat((x, y), dim=1)  # the encoder reads [x, y] (B, 2C, H, W)
        else:
            self._check_condition(y, "encodes x")
        return self._posterior(self.encoder(x))

    def encode_detached(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`encode` with the encoder as a fixed function of x: its parameters detached (gradients reach x,
        never φ) and in eval mode (running BatchNorm statistics; no statistics or spectral-norm updates, and
        no example's output depends on the rest of its batch). The encoder's mode is restored afterwards.

        A VampPrior reads its pseudo-inputs' posteriors through it (``priors/vamp.py``): the prior's update
        then moves its pseudo-inputs only, and evaluating the prior changes nothing in the encoder.
        """
        params = {name: p.detach() for name, p in self.encoder.named_parameters()}
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            h = torch.func.functional_call(self.encoder, params, (x,))
        finally:
            self.encoder.train(was_training)
        return self._posterior(h)

    def _posterior(self, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """The encoder's output (B, 2D) or (B, D) -> mean (B, D), log-variance (B, D) or None (a deterministic
        encoder); the log-variance is 0 for the unit posterior, whose encoder gives (B, D), the mean alone."""
        if not self.gaussian_encoder:
            return h, None
        to_logvar = POSTERIORS[self.posterior]
        if to_logvar is None:  # unit variance: log sigma^2 = 0, no gradient to give
            return h, torch.zeros_like(h)
        mean, h = h.chunk(2, dim=-1)
        return mean, to_logvar(h)

    def posterior_sample(self, mean: Tensor, logvar: Tensor | None) -> Tensor:
        """Reparameterised z ~ q(z|x), (B, D); the mean itself for a deterministic encoder."""
        if logvar is None:
            return mean
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (B, D) [, y (B, C, H, W)] -> decoder mean G(z[, y]) (B, C, H, W)."""
        self._check_condition(y, "decodes z")
        return self.decoder(z) if y is None else self.decoder(z, y)

    def log_px_given_z(self, x: Tensor, g: Tensor) -> Tensor:
        """log p(x|z) with decoder mean g = G(z): (B, C, H, W) x2 -> (B,).

        The pixel likelihood (``variance.log_density``: log N(x; g, γI) summed over pixels, or the Laplace or
        Bernoulli one), minus perceptual_weight times the perceptual term when there is one. With a closed-form
        learned scale (γ or b), a training-mode call also updates it (see :class:`DecoderVariance`).
        """
        out = self.variance.log_density(x, g) if self.pixel_likelihood else g.new_zeros(g.shape[0])
        if self.perceptual is not None:
            out = out - self.perceptual_weight * self.perceptual(x, g)
        return out

    # ----------------------------------------------------------------- parameter groups

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """φ and ψ of the paper, plus γ when learned: everything the upper-level objective F updates."""
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        return params + [p for p in self.variance.parameters() if p.requires_grad]

    def prior_parameters(self) -> list[nn.Parameter]:
        """θ: what the lower-level objective f updates (empty for a fixed prior)."""
        return [p for p in self.prior.parameters() if p.requires_grad]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """ω: what the discriminator objective g updates (empty without a discriminator)."""
        return [] if self.discriminator is None else list(self.discriminator.parameters())

    # ----------------------------------------------------------------- generation

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               y: Tensor | None = None) -> Tensor:
        """n images G(z[, y]), z ~ p(z[ | y]): (n, C, H, W) float32 clamped to [0, 1]; eval mode, no grad.

        Uses the decoder mean rather than a draw from N(G(z), γI), as the paper does (section 3).
        ``temperature`` τ tempers the prior's sampler (``Prior.sample``; τ = 1 gives the untempered draws).
        ``y`` (n, C, H, W): the conditions, one per sample, of a conditional model.
        """
        self._check_condition(y, "samples images")
        if y is not None and y.shape[0] != n:
            raise ValueError(f"asked for {n} samples with {y.shape[0]} conditions")
        was_training = self.training
        self.eval()
        try:
            # τ = 1 and no condition call the prior exactly as before temperatures and conditions were arguments,
            # so a user's own Prior without those keywords still samples
            tempered = {} if check_temperature(temperature) == 1.0 else {"temperature": temperature}
            given = () if y is None else (self.context(y),)
            z = self.prior.sample(n, *given, generator=generator, **tempered)
            return self.decode(z, y).float().clamp_(0.0, 1.0)
        finally:
            self.train(was_training)
