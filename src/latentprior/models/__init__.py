"""Generative autoencoders: encoder, Gaussian decoder with variance γ, prior, optional discriminator."""

from latentprior.models.autoencoder import DecoderVariance, LatentAutoencoder, gaussian_log_density
from latentprior.models.build import build_model

__all__ = ["DecoderVariance", "LatentAutoencoder", "gaussian_log_density", "build_model"]
