"""latentprior: generative autoencoders with learned latent priors, trained with the β-bilevel objective."""

__version__ = "0.2.0"

__all__ = ["__version__"]
