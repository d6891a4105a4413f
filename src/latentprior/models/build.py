"""Build a :class:`LatentAutoencoder` from a :class:`~latentprior.config.Config` and an image shape: the config's
nets and prior, your factories named in it (:mod:`latentprior.models.factories`), or your modules passed in."""

from __future__ import annotations

import torch
from torch import nn

from latentprior.config import Config, ModelConfig
from latentprior.models.autoencoder import LatentAutoencoder, encoder_outputs
from latentprior.models.factories import build_factory_decoder, build_factory_encoder, build_factory_prior
from latentprior.models.likelihood import BernoulliLikelihood, LaplaceLikelihood, PixelLikelihood
from latentprior.models.reconstruction import DecoderVariance, PerceptualLoss
from latentprior.nets import build_decoder, build_encoder
from latentprior.nets.base import channels
from latentprior.priors import Prior, VampPrior, build_discriminator, build_prior
from latentprior.priors.conditional_flow import conditional_flow

__all__ = ["build_model"]


def build_model(cfg: Config, image_shape: tuple[int, int, int], *, encoder: nn.Module | None = None,
                decoder: nn.Module | None = None, prior: nn.Module | None = None) -> LatentAutoencoder:
    """The model ``cfg`` describes for images (C, H, W); with the built-in nets H == W in 28, 32, 64.

    ``encoder``/``decoder``/``prior``: your modules in place of the config's (x (B, C, H, W) -> (B, 2D) or (B, D);
    z (B, D) -> (B, C, H, W); a :class:`~latentprior.priors.Prior`); everything else — likelihood, posterior,
    discriminators — is the config's.
    """
    d = cfg.model.latent_dim
    gaussian = cfg.model.encoder == "gaussian"
    out_dim = encoder_outputs(d, gaussian, cfg.model.posterior)
    encoder = encoder if encoder is not None else _encoder(cfg, image_shape, out_dim)
    decoder = decoder if decoder is not None else _decoder(cfg, image_shape)
    if prior is None:
        prior = _prior_from_own_stream(cfg, image_shape) if cfg.prior.init_rng == "own" else _prior(cfg, image_shape)
    discriminator = tc_discriminator = None
    pc = cfg.prior
    if cfg.objective.kind == "aae":
        discriminator = build_discriminator(d, layers=pc.disc_layers, hidden=pc.disc_hidden,
                                            activation=pc.disc_activation)
    if cfg.objective.kind == "factorvae":  # the same family, telling q(z) from the product of its marginals
        tc_discriminator = build_discriminator(d, layers=pc.disc_layers, hidden=pc.disc_hidden,
                                               activation=pc.disc_activation)
    # image-to-image (data.condition): q(z|x,y), p(x|y,z), p(z|y) with y = c(x)
    condition = None if cfg.data.condition == "none" else cfg.data.condition
    model = LatentAutoencoder(encoder, decoder, prior, latent_dim=d, gaussian_encoder=gaussian,
                              variance=_likelihood(cfg.model), discriminator=discriminator,
                              tc_discriminator=tc_discriminator, posterior=cfg.model.posterior, condition=condition,
                              **_reconstruction(cfg.model))
    if isinstance(prior, VampPrior):
        # The prior mixes the encoder's posteriors but must not own the encoder (its parameters would join the
        # prior's update): it gets the encoder as a fixed function, parameters detached (priors/vamp.py).
        prior.bind_encoder(model.encode_detached)
    return model


def _square(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"the built-in nets take square images, got {h}x{w}")
    return c, h


def _encoder(cfg: Config, image_shape: tuple[int, int, int], out_dim: int) -> nn.Module:
    net = cfg.net
    if net.encoder is not None:
        return build_factory_encoder(net, image_shape, out_dim)
    c, h = _square(image_shape)
    return build_encoder(net.arch, c, h, out_dim, width=net.width, spectral_norm=net.spectral_norm,
                         bn_momentum=net.bn_momentum)


def _decoder(cfg: Config, image_shape: tuple[int, int, int]) -> nn.Module:
    net = cfg.net
    if net.decoder is not None:
        return build_factory_decoder(net, cfg.model.latent_dim, image_shape)
    c, h = _square(image_shape)
    return build_decoder(net.arch, cfg.model.latent_dim, c, h, width=net.width, output=net.output,
                         bn_momentum=net.bn_momentum)


def _prior_from_own_stream(cfg: Config, image_shape: tuple[int, int, int]) -> Prior:
    """:func:`_prior` with its initial weights drawn from a generator of their own (``prior.init_rng: own``).

    The caller's CPU stream gives one 63-bit draw, whatever the prior (none for N(0, I), millions for a wide flow),
    and seeds a forked stream that the prior's initialisation consumes; afterwards the caller's stream is where
    that one draw left it. So every later draw of a run (the posterior noise of each step) is the same under every
    prior, and at β = 0, where F never reads the prior, the autoencoder's trajectory is the same bit for bit.
    """
    seed = int(torch.randint(2**63 - 1, (), dtype=torch.int64))
    with torch.random.fork_rng(devices=[]):  # the modules are built on the CPU; the run moves them afterwards
        torch.manual_seed(seed)
        return _prior(cfg, image_shape)


def _prior(cfg: Config, image_shape: tuple[int, int, int]) -> Prior:
    """p(z), or for a conditional model p(z | y): a RealNVP (``realnvp``) or no flow layers (``normal``: the
    Gaussian N(mu(y), I) of the Variational U-Net) over a base whose mean is learned from the embedded y."""
    pc, d = cfg.prior, cfg.model.latent_dim
    if pc.kind == "custom":
        return build_factory_prior(pc, d)
    if cfg.data.condition == "none":
        return build_prior(pc.kind, d, layers=pc.layers, hidden=pc.hidden, noise_dim=pc.noise_dim,
                           components=pc.n_components, covariance=pc.covariance_type, bins=pc.n_bins,
                           image_shape=image_shape)
    return conditional_flow(d, pc.layers if pc.is_flow else 0, pc.hidden, cond_shape=image_shape,
                            embed_dim=pc.cond_embed, embed_width=channels(32, cfg.net.width))


def _likelihood(mc: ModelConfig) -> PixelLikelihood:
    """The pixel likelihood ``model.likelihood`` with its scale (γ for gaussian, b for laplace)."""
    if mc.likelihood == "gaussian":
        return DecoderVariance(mc.gamma, learned=mc.learn_gamma, update=mc.gamma_update)
    if mc.likelihood == "laplace":
        return LaplaceLikelihood(mc.gamma, learned=mc.learn_gamma, update=mc.gamma_update)
    return BernoulliLikelihood(continuous=mc.likelihood == "continuous_bernoulli")


def _reconstruction(mc: ModelConfig) -> dict:
    """The perceptual part of log p(x|z) (appendix B.1), if the config asks for one."""
    if mc.reconstruction == "pixel":
        return {}
    return {"pixel_likelihood": mc.reconstruction == "pixel+perceptual",
            "perceptual": PerceptualLoss(mc.perceptual_net, mc.perceptual_weights),
            "perceptual_weight": mc.perceptual_weight}
