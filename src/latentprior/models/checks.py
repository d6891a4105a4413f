"""What a run asks of a model whose modules no config describes (your encoder, decoder or prior): the rules a
config cannot check because they are facts about objects, checked once when the run opens, in one line each.

* the prior's dimension is the latent size, and it can do what the objective asks: a density (``log_prob``) for the
  VAE objectives, parameters for the prior-only epochs;
* the objective's discriminator is there (``discriminator`` for ``aae``, ``tc_discriminator`` for ``factorvae``);
* (user modules only) the encoder maps images (B, C, H, W) to (B, 2D) — the mean and the raw variance of q(z|x),
  turned into a variance by ``model.posterior`` — or to (B, D) for a deterministic encoder or the unit posterior
  (:func:`~latentprior.models.autoencoder.encoder_outputs`), and the decoder maps
  z (B, D) back to (B, C, H, W). Probed on two blank images in eval mode without gradients: no BatchNorm statistic,
  spectral-norm vector or global random state changes (lazy modules are initialised here, before the optimizers
  collect their parameters).
"""

from __future__ import annotations

import torch

from latentprior.config import Config
from latentprior.errors import UserError
from latentprior.models.autoencoder import LatentAutoencoder, encoder_outputs

__all__ = ["ModelContractError", "check_model", "has_user_modules"]


class ModelContractError(ValueError, UserError):
    """A model's modules do not fit the run: a wrong output shape, or something the objective needs is missing."""


def has_user_modules(cfg: Config) -> bool:
    """Whether the config's model holds modules from outside the library (factories or Python objects)."""
    return cfg.net.encoder is not None or cfg.net.decoder is not None or cfg.prior.kind == "custom"


def check_model(model: LatentAutoencoder, cfg: Config, image_shape: tuple[int, int, int], *,
                probe: bool) -> None:
    """Refuse a model the run cannot train; ``probe``: also run the encoder and decoder once (see module doc)."""
    if not isinstance(model, LatentAutoencoder):
        raise ModelContractError(f"the model is a {type(model).__name__}; latentprior trains a LatentAutoencoder "
                                 "(latentprior.LatentAutoencoder(encoder, decoder, prior, latent_dim=D), or "
                                 "latentprior.build_model(config, image_shape, encoder=..., decoder=...))")
    d, prior, kind = model.latent_dim, model.prior, cfg.objective.kind
    if getattr(prior, "dim", d) != d:
        raise ModelContractError(f"the prior is over {prior.dim} dimensions, the model's latent_dim is {d}")
    if kind in ("vae", "cvae") and not (getattr(prior, "has_density", True) and callable(getattr(prior, "log_prob",
                                                                                                 None))):
        raise ModelContractError(f"objective.kind '{kind}' needs a prior with a density (log_prob), but the "
                                 f"{type(prior).__name__} has none; use objective.kind 'aae' for an implicit prior")
    for need, attr, what in (("aae", "discriminator", "a latent discriminator"),
                             ("factorvae", "tc_discriminator", "a total-correlation discriminator")):
        if kind == need and getattr(model, attr) is None:
            raise ModelContractError(f"objective.kind '{kind}' trains {what}: build the model with "
                                     f"{attr}=latentprior.priors.build_discriminator({d}), or with "
                                     "latentprior.build_model(config, image_shape, encoder=..., decoder=...)")
    if cfg.train.prior_epochs > 0 and not model.prior_parameters() and not model.conditional:
        raise ModelContractError(f"train.prior_epochs = {cfg.train.prior_epochs:g} trains the prior alone, but the "
                                 f"{type(prior).__name__} has no parameters to train; set train.prior_epochs: 0")
    if probe and not model.conditional:
        _probe(model, image_shape)


@torch.no_grad()
def _probe(model: LatentAutoencoder, image_shape: tuple[int, int, int]) -> None:
    d = model.latent_dim
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(2, *image_shape, device=device)
        shape = ", ".join(map(str, image_shape))
        want = encoder_outputs(d, model.gaussian_encoder, model.posterior)
        h = _run(model.encoder, x, "encoder")
        if not isinstance(h, torch.Tensor) or tuple(h.shape) != (2, want):
            meaning = (f"the mean and raw variance of q(z|x), 2 x latent_dim {d}" if want == 2 * d
                       else f"the mean of q(z|x), latent_dim {d}" if model.gaussian_encoder
                       else f"the code, latent_dim {d}")
            raise ModelContractError(f"the encoder returned {_shape(h)} for images (2, {shape}); expected (2, "
                                     f"{want}): {meaning}")
        g = _run(model.decoder, torch.zeros(2, d, device=device), "decoder")
        if not isinstance(g, torch.Tensor) or tuple(g.shape) != (2, *image_shape):
            raise ModelContractError(f"the decoder returned {_shape(g)} for z (2, {d}); expected the images' shape "
                                     f"(2, {shape})")
    finally:
        model.train(was_training)


def _run(module: torch.nn.Module, x: torch.Tensor, what: str):
    try:
        return module(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:  # most often a shape the module was not made for
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelContractError(f"the {what} ({type(module).__name__}) failed on input {_shape(x)}: {first}") from e


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else f"a {type(t).__name__}"
