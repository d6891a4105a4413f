"""Fit a prior into a finished run after training (``latentprior train-prior RUN --prior KIND``), never touching
the autoencoder.

    run's latest checkpoint ─► encoder (eval mode) ─► z of every training image (N, D) ─► fit ─► RUN_DIR/priors/<name>/

The latents are the posterior means or one draw z ~ q(z|x) per image (``prior.latents``), encoded with the
encoder in eval mode, as the run's prior-only phase sees them. The fit is the kind's recipe
(:mod:`latentprior.priors.expost`): scikit-learn's EM for ``gmm`` (Ghosh et al.'s RAE), Dai & Wipf's second stage
for ``two_stage``, and maximum likelihood by Adam for every other kind (a flow first standardised to the latents,
Glow's data-dependent start). The prior's checkpoint records its config, its state, what the fit took and the run
checkpoint the latents came from (:mod:`latentprior.rundir.prior_checkpoints`); the run's own files are only read,
under the run's lock, so no training writes a new checkpoint while its codes are read.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import torch
from torch import Tensor

from latentprior.config import ExPostPriorConfig
from latentprior.data import load_split
from latentprior.errors import UsageError
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.models.expost import bind, build_expost_prior, encode_images
from latentprior.models.load import load_run
from latentprior.priors import Prior, fit_gmm, fit_prior, fit_two_stage_vae, standardize_flow_input
from latentprior.rundir import RunDir, run_dir_of, run_lock
from latentprior.rundir.checkpoints import CheckpointError, latest_checkpoint
from latentprior.rundir.eval_records import remove_eval_records
from latentprior.rundir.prior_checkpoints import save_prior_checkpoint
from latentprior.sampling.grid import save_image_grid

__all__ = ["fit_run_prior", "fit_latents", "mean_nll", "PREVIEW_SEED"]

PREVIEW_SEED = 0  # the generator seed of the prior's sample grid, as the run's own previews


def fit_latents(cfg: ExPostPriorConfig, z: Tensor, model: LatentAutoencoder,
                image_shape: tuple[int, int, int]) -> tuple[Prior, list[float]]:
    """The prior ``cfg`` fitted to z (N, D) by the kind's recipe, on z's device; returns it (eval mode, bound to
    the model's encoder when it is a VampPrior) and its per-epoch mean negative log-likelihood (empty for the
    kinds whose fit does not report one: gmm, two_stage)."""
    o = cfg.resolved
    if cfg.kind == "gmm":
        prior = fit_gmm(z, o["components"], o["covariance"], seed=o["seed"], max_iter=o["max_iter"],
                        n_init=o["n_init"])
        return bind(prior, model), []
    if cfg.kind == "two_stage":
        prior = fit_two_stage_vae(z, hidden=o["hidden"], layers=o["layers"], epochs=o["epochs"],
                                  batch_size=o["batch_size"], lr=o["lr"], seed=o["seed"],
                                  n_importance=o["n_importance"])
        return bind(prior, model), []
    with torch.random.fork_rng(devices=[]):  # initial weights from the fit's seed; the caller's stream untouched
        torch.manual_seed(o["seed"])
        prior = bind(build_expost_prior(cfg, z.shape[1], image_shape), model)
    standardize_flow_input(prior, z)
    history = fit_prior(prior, z, epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], seed=o["seed"])
    return prior.eval(), history


@torch.no_grad()
def mean_nll(prior: Prior, z: Tensor, *, seed: int = 0, batch_size: int = 1000) -> float:
    """-mean log p(z) over z (N, D), nats per latent vector (a two-stage prior's estimate drawn from ``seed``)."""
    with torch.random.fork_rng(devices=[z.device] if z.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return -float(torch.cat([prior.log_prob(z[s:s + batch_size]) for s in range(0, len(z), batch_size)]).mean())


def fit_run_prior(run_dir: str | os.PathLike[str] | RunDir, cfg: ExPostPriorConfig, name: str | None = None, *,
                  data_dir: str | None = None, device: str | torch.device | None = None,
                  replace: bool = False) -> dict[str, Any]:
    """Fit ``cfg`` into ``RUN_DIR/priors/<name>/`` (``name`` default: the kind) from the run's latest checkpoint;
    returns a summary (name, kind, seconds, per-epoch losses, training-set NLL, where it was written).

    Holds the run's lock while it reads the run. A prior of that name is refused unless ``replace``. The run's
    checkpoint, config and records are not written.
    """
    rd = run_dir_of(run_dir)
    name = cfg.kind if name is None else name
    prior_rd = rd.prior(name)  # the name is checked here, before anything is read
    with run_lock(rd):
        index = latest_checkpoint(rd)
        if index is None:
            raise CheckpointError(f"{rd.path} holds no checkpoint: train the run before fitting a prior into it")
        if prior_rd.checkpoint_index.exists() and not replace:
            raise UsageError(f"{prior_rd.path} already holds a prior; choose another --name, or --replace it")
        model, run_cfg = load_run(rd, device=device)
        if model.conditional:
            raise UsageError(f"{rd.path} is a conditional run (data.condition '{run_cfg.data.condition}'): ex-post "
                             "priors are unconditional p(z)")
        data = load_split(run_cfg.data, "train", data_dir)
        o = cfg.resolved
        t0 = time.perf_counter()
        z = encode_images(model, data.images, o["latents"], seed=o["seed"])
        t1 = time.perf_counter()
        prior, history = fit_latents(cfg, z, model, data.image_shape)
        t2 = time.perf_counter()
        nll = mean_nll(prior, z, seed=o["seed"]) if prior.has_density else None
        fit = {"seconds": t2 - t1, "encode_seconds": t1 - t0, "history": [float(h) for h in history],
               "n_latents": int(z.shape[0]), "latents": o["latents"], "split": "train", "train_nll": nll,
               "resolved": o, "device": str(z.device)}
        with _swapped(model, prior):
            images = model.sample(100, generator=torch.Generator(z.device).manual_seed(PREVIEW_SEED))
        remove_eval_records(prior_rd)  # a replaced prior's records describe the prior they were computed for
        save_prior_checkpoint(prior_rd, cfg, state=prior.state_dict(), latent_dim=z.shape[1],
                              image_shape=data.image_shape, fit=fit, autoencoder=index)
    save_image_grid(images, prior_rd.preview("samples"), nrow=10)
    return {"name": name, "kind": cfg.kind, "prior_dir": str(prior_rd.path), "run_step": index["step"],
            "fit_s": fit["seconds"], "encode_s": fit["encode_seconds"], "train_nll": nll, "history": fit["history"]}


@contextlib.contextmanager
def _swapped(model: LatentAutoencoder, prior: Prior):
    own = model.prior
    model.prior = prior
    try:
        yield model
    finally:
        model.prior = own
