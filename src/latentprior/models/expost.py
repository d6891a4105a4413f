"""Priors fitted into a run after training (``RUN_DIR/priors/<name>/``): built from their config, loaded back and
put in place of the run's own prior.

A fitted prior is an ordinary :class:`~latentprior.priors.base.Prior`, so a model that carries one samples, draws
previews and is evaluated exactly as with the prior it was trained with; the autoencoder is the run's, unchanged.
Fitting is :mod:`latentprior.training.expost`; this module only rebuilds.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from latentprior.config import ExPostPriorConfig
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.models.load import load_state_into
from latentprior.priors import Prior, TwoStageVAE, VampPrior, build_prior
from latentprior.rundir import RunDir, run_dir_of
from latentprior.rundir.checkpoints import CheckpointError, latest_checkpoint
from latentprior.rundir.prior_checkpoints import load_prior_checkpoint

__all__ = ["build_expost_prior", "bind", "encode_images", "load_run_prior", "use_run_prior", "NotFittedHere"]


class NotFittedHere(CheckpointError):
    """A fitted prior whose latents came from another checkpoint of the run than the one it would be used with."""


@torch.no_grad()
def encode_images(model: LatentAutoencoder, images: Tensor, latents: str, *, seed: int,
                  batch_size: int = 500) -> Tensor:
    """Codes of uint8 images (N, C, H, W) -> (N, D) float32: the posterior mean (``latents='mean'``) or one
    draw mean + σ ε per image (``'sample'``; ε from a generator seeded with ``seed``, in the images' order),
    with the encoder in eval mode (its mode restored after)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device).float() / 255.0  # (B, C, H, W) in [0, 1]
            mean, logvar = model.encode(x)
            if latents == "sample" and logvar is not None:
                eps = torch.randn(mean.shape, generator=generator, device=device, dtype=mean.dtype)
                mean = mean + torch.exp(0.5 * logvar) * eps
            out.append(mean.float())
        return torch.cat(out)
    finally:
        model.train(was_training)


def build_expost_prior(cfg: ExPostPriorConfig, dim: int, image_shape: tuple[int, int, int]) -> Prior:
    """The untrained prior ``cfg`` describes over (B, dim) latents: a registry kind (:func:`build_prior` with the
    config's options) or Dai & Wipf's :class:`TwoStageVAE`. A VampPrior comes back without its encoder."""
    o = cfg.resolved
    if cfg.kind == "two_stage":
        return TwoStageVAE(dim, o["hidden"], o["layers"], n_importance=o["n_importance"])
    return build_prior(cfg.kind, dim, layers=o.get("layers", 1), hidden=o.get("hidden", 1),
                       components=o.get("components", 10), covariance=o.get("covariance", "full"),
                       bins=o.get("bins", 8), image_shape=image_shape)


def bind(prior: Prior, model: LatentAutoencoder) -> Prior:
    """``prior`` on the model's device, a VampPrior bound to the model's fixed encoder (as models/build.py binds
    the run's own)."""
    device = next(model.parameters()).device
    prior = prior.to(device)
    if isinstance(prior, VampPrior):
        prior.bind_encoder(model.encode_detached)
    return prior.eval()


def load_run_prior(run_dir: str | os.PathLike[str] | RunDir, name: str, model: LatentAutoencoder) -> Prior:
    """The prior ``name`` fitted into ``run_dir``, rebuilt from its checkpoint alone, in eval mode on the model's
    device (see :func:`bind`).

    Refused (:class:`NotFittedHere`) when the run's latest checkpoint is not the one the prior's latents were
    encoded with: a prior is fitted to one encoder's q(z), and a run trained further has another.
    """
    rd = run_dir_of(run_dir)
    ckpt = load_prior_checkpoint(rd.prior(name))
    index = latest_checkpoint(rd)
    fitted_on = ckpt["autoencoder"]
    if index is None or index["sha256"] != fitted_on["sha256"]:
        now = "no checkpoint" if index is None else f"step {index['step']}"
        raise NotFittedHere(f"prior '{name}' of {rd.path} was fitted on the run's step {fitted_on['step']} "
                            f"({fitted_on['file']}), but the run now holds {now}; fit it again with "
                            f"`latentprior train-prior {rd.path} --prior {ckpt['config'].kind} --name {name} "
                            "--replace`")
    if ckpt["latent_dim"] != model.latent_dim:
        raise CheckpointError(f"prior '{name}' is over {ckpt['latent_dim']} latent dimensions, the run's model "
                              f"over {model.latent_dim}")
    prior = build_expost_prior(ckpt["config"], ckpt["latent_dim"], tuple(ckpt["image_shape"]))
    load_state_into(prior, ckpt["state"], rd.prior(name).path)
    return bind(prior, model)


def use_run_prior(model: LatentAutoencoder, run_dir: str | os.PathLike[str] | RunDir,
                  name: str | None) -> LatentAutoencoder:
    """``model`` with the fitted prior ``name`` in place of its own (None: unchanged); returns the model."""
    if name is not None:
        if model.conditional:
            raise CheckpointError(f"{run_dir} is a conditional run: fitted priors are unconditional p(z)")
        model.prior = load_run_prior(run_dir, name, model)
    return model
