"""Build a :class:`LatentAutoencoder` from a :class:`~latentprior.config.Config` and an image shape."""

from __future__ import annotations

from latentprior.config import Config, ModelConfig
from latentprior.models.autoencoder import LatentAutoencoder, encoder_outputs
from latentprior.models.likelihood import BernoulliLikelihood, LaplaceLikelihood, PixelLikelihood
from latentprior.models.reconstruction import DecoderVariance, PerceptualLoss
from latentprior.nets import build_decoder, build_encoder
from latentprior.nets.base import channels
from latentprior.priors import Prior, VampPrior, build_discriminator, build_prior
from latentprior.priors.conditional_flow import conditional_flow

__all__ = ["build_model"]


def build_model(cfg: Config, image_shape: tuple[int, int, int]) -> LatentAutoencoder:
    """image_shape: (C, H, W) with H == W in the supported sizes (28, 32, 64)."""
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"square images are expected, got {h}x{w}")
    d = cfg.model.latent_dim
    gaussian = cfg.model.encoder == "gaussian"
    net = cfg.net
    encoder = build_encoder(net.arch, c, h, encoder_outputs(d, gaussian, cfg.model.posterior), width=net.width,
                            spectral_norm=net.spectral_norm, bn_momentum=net.bn_momentum)
    decoder = build_decoder(net.arch, d, c, h, width=net.width, output=net.output, bn_momentum=net.bn_momentum)
    prior = _prior(cfg, image_shape)
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


def _prior(cfg: Config, image_shape: tuple[int, int, int]) -> Prior:
    """p(z), or for a conditional model p(z | y): a RealNVP (``realnvp``) or no flow layers (``normal``: the
    Gaussian N(mu(y), I) of the Variational U-Net) over a base whose mean is learned from the embedded y."""
    pc, d = cfg.prior, cfg.model.latent_dim
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
