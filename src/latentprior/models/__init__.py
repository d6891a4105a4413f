"""Generative autoencoders: encoder, decoder p(x|z) (Gaussian with variance γ, optional perceptual term), prior,
optional discriminator."""

from latentprior.models.autoencoder import LatentAutoencoder, gaussian_log_density
from latentprior.models.build import build_model
from latentprior.models.load import load_run
from latentprior.models.reconstruction import DecoderVariance, PerceptualLoss

__all__ = ["DecoderVariance", "LatentAutoencoder", "PerceptualLoss", "gaussian_log_density", "build_model", "load_run"]
