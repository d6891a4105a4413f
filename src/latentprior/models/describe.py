"""The config sections that describe a model built in Python, so that its run directory records what it trained.

A model passed to :class:`latentprior.Trainer` is made of modules no config names. Its run still needs a
``config.yaml`` (reports, sweeps, TensorBoard's hparams and the resume check read it), so these sections are read
off the model: the latent size, the encoder kind and posterior, the pixel likelihood and its initial scale, the
perceptual term; the user's modules as ``<package.module.Class object>`` (``net.encoder``, ``net.decoder``,
``prior.factory`` with ``prior.kind: custom``; a :class:`~latentprior.priors.StandardNormal` is ``prior.kind:
normal``). None of these values changes while the model trains, so a resumed run describes itself the same way, and
a run resumed with a model of another class is refused by the config comparison. Such a run is loaded back with
``latentprior.load(run_dir, model)``: no loader imports a marker.
"""

from __future__ import annotations

from typing import Any

from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.models.factories import object_marker
from latentprior.models.likelihood import BernoulliLikelihood, LaplaceLikelihood
from latentprior.models.reconstruction import DecoderVariance
from latentprior.priors.normal import StandardNormal

__all__ = ["describe_model"]


def _likelihood(variance: Any) -> dict[str, Any]:
    """model.likelihood and its scale settings, from the module that computes log p(x|z)."""
    if isinstance(variance, DecoderVariance | LaplaceLikelihood):
        return {"likelihood": "gaussian" if isinstance(variance, DecoderVariance) else "laplace",
                "gamma": variance.initial, "learn_gamma": bool(variance.learned), "gamma_update": variance.update_rule}
    if isinstance(variance, BernoulliLikelihood):
        return {"likelihood": "continuous_bernoulli" if variance.continuous else "bernoulli"}
    raise TypeError(f"the model's pixel likelihood is a {type(variance).__name__}; a model trained by latentprior "
                    "uses DecoderVariance, LaplaceLikelihood or BernoulliLikelihood (latentprior.models)")


def _reconstruction(model: LatentAutoencoder) -> dict[str, Any]:
    if model.perceptual is None:
        return {"reconstruction": "pixel"}
    return {"reconstruction": "pixel+perceptual" if model.pixel_likelihood else "perceptual",
            "perceptual_weight": float(model.perceptual_weight), "perceptual_net": model.perceptual.net_name,
            "perceptual_weights": model.perceptual.weights_arg}


def describe_model(model: LatentAutoencoder) -> dict[str, dict[str, Any]]:
    """``{"net": ..., "prior": ..., "model": ...}``: plain config data for the model's own sections."""
    if model.conditional:
        raise ValueError("a conditional model (data.condition) is built from a config: train it with "
                         "latentprior.Trainer(run_dir, config) and no model")
    prior = ({"kind": "normal"} if type(model.prior) is StandardNormal
             else {"kind": "custom", "factory": object_marker(model.prior)})
    return {
        "net": {"encoder": object_marker(model.encoder), "decoder": object_marker(model.decoder)},
        "prior": prior,
        "model": {"latent_dim": int(model.latent_dim),
                  "encoder": "gaussian" if model.gaussian_encoder else "deterministic",
                  "posterior": model.posterior, **_likelihood(model.variance), **_reconstruction(model)},
    }
