"""Build a :class:`LatentAutoencoder` from a :class:`~latentprior.config.Config` and an image shape."""

from __future__ import annotations

from latentprior.config import Config
from latentprior.models.autoencoder import DecoderVariance, LatentAutoencoder
from latentprior.nets import ConvDecoder, ConvEncoder
from latentprior.priors import build_discriminator, build_prior

__all__ = ["build_model"]


def build_model(cfg: Config, image_shape: tuple[int, int, int]) -> LatentAutoencoder:
    """image_shape: (C, H, W) with H == W in the supported sizes (28, 32, 64)."""
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"square images are expected, got {h}x{w}")
    d = cfg.model.latent_dim
    gaussian = cfg.model.encoder == "gaussian"
    encoder = ConvEncoder(c, h, 2 * d if gaussian else d, width=cfg.net.width)
    decoder = ConvDecoder(d, c, h, width=cfg.net.width, output=cfg.net.output)
    prior = build_prior(cfg.prior.kind, d, layers=cfg.prior.layers, hidden=cfg.prior.hidden,
                        noise_dim=cfg.prior.noise_dim)
    discriminator = None
    if cfg.objective.kind == "aae":
        discriminator = build_discriminator(d, layers=cfg.prior.disc_layers, hidden=cfg.prior.disc_hidden)
    variance = DecoderVariance(cfg.model.gamma, learned=cfg.model.learn_gamma)
    return LatentAutoencoder(encoder, decoder, prior, latent_dim=d, gaussian_encoder=gaussian, variance=variance,
                             discriminator=discriminator)
