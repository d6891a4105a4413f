"""Generative autoencoders: encoder, decoder p(x|z) (a pixel likelihood — Gaussian with variance γ, Laplace,
Bernoulli — and an optional perceptual term), prior, optional discriminator; and a trained one loaded back."""

from latentprior.models.autoencoder import LatentAutoencoder, gaussian_log_density
from latentprior.models.build import build_model
from latentprior.models.likelihood import BernoulliLikelihood, LaplaceLikelihood, PixelLikelihood
from latentprior.models.load import load_run
from latentprior.models.reconstruction import DecoderVariance, PerceptualLoss

__all__ = ["BernoulliLikelihood", "DecoderVariance", "LaplaceLikelihood", "LatentAutoencoder", "PerceptualLoss",
           "PixelLikelihood", "gaussian_log_density", "build_model", "load_run"]
