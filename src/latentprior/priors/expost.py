"""Ex-post priors: densities fitted after training, on a tensor of encoded latents z (N, D).

Each is a pure function of the latents and its options, returning an ordinary
:class:`~latentprior.priors.base.Prior`, so that sampling, previews and metrics use it as they use a prior
trained with the model:

* :func:`fit_gmm` — a Gaussian mixture by EM with scikit-learn's ``GaussianMixture`` (the recipe of Ghosh et
  al.'s RAE: 10 full-covariance components), converted into a :class:`~latentprior.priors.mixture.MixturePrior`
  whose ``log_prob`` equals ``GaussianMixture.score_samples`` (:func:`mixture_from_sklearn`). It is a
  ``prior.kind: gmm`` prior with ``prior.components`` and ``prior.covariance`` set as in the fit.
* :func:`fit_two_stage_vae` — Dai & Wipf's second-stage VAE over z (:class:`~latentprior.priors.two_stage.TwoStageVAE`).
* :func:`fit_prior` — maximum likelihood for any prior with a density (a flow of any family, a mixture), by
  Adam on minibatches of z for a number of epochs: "a flow fitted post hoc"; :func:`standardize_flow_input` first
  gives a flow Glow's data-dependent start.

Which latents to fit (posterior means or draws, train or test images) is the caller's choice; these functions
do not encode anything. Randomness comes from ``seed`` alone: a local generator orders the batches, and the
fitted modules' own noise (initial weights, reparameterisation) comes from torch's generators seeded from
``seed`` inside a fork of their state, so the caller's random stream is left as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from latentprior.priors.base import Prior
from latentprior.priors.flow import FlowPrior
from latentprior.priors.mixture import MixturePrior
from latentprior.priors.realnvp import ActNorm
from latentprior.priors.two_stage import TwoStageVAE

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

__all__ = ["fit_gmm", "mixture_from_sklearn", "fit_prior", "fit_two_stage_vae", "standardize_flow_input"]

_SKLEARN_COVARIANCE = {"full": "full", "diagonal": "diag"}


def _check_latents(z: Tensor) -> None:
    if z.dim() != 2 or z.shape[0] < 2 or not z.is_floating_point():
        raise ValueError(f"expected latents of shape (N >= 2, D) and a floating dtype, got {tuple(z.shape)} {z.dtype}")
    if not torch.isfinite(z).all():
        raise ValueError("the latents contain NaN or infinite values")


def fit_gmm(z: Tensor, components: int = 10, covariance: Literal["full", "diagonal"] = "full", *, seed: int = 0,
            max_iter: int = 100, n_init: int = 1, tol: float = 1e-3, reg_covar: float = 1e-6) -> MixturePrior:
    """A ``components``-component Gaussian mixture fitted to z (N, D) by EM (scikit-learn, k-means start),
    as a :class:`MixturePrior` in z's dtype on z's device. The keywords are ``GaussianMixture``'s
    (``seed`` is its ``random_state``); ``reg_covar`` is added to every covariance's diagonal."""
    from sklearn.mixture import GaussianMixture  # here: scikit-learn takes ~1 s to import, and only this needs it

    _check_latents(z)
    if covariance not in _SKLEARN_COVARIANCE:
        raise ValueError(f"covariance must be 'full' or 'diagonal', got {covariance!r}")
    gm = GaussianMixture(components, covariance_type=_SKLEARN_COVARIANCE[covariance], max_iter=max_iter,
                         n_init=n_init, tol=tol, reg_covar=reg_covar, random_state=seed)
    gm.fit(z.detach().cpu().double().numpy())
    return mixture_from_sklearn(gm).to(device=z.device, dtype=z.dtype)


def mixture_from_sklearn(gm: GaussianMixture) -> MixturePrior:
    """A fitted ``GaussianMixture`` (covariance_type ``full`` or ``diag``) as a float64 :class:`MixturePrior`:
    logits = log weights, means, and each covariance's Cholesky factor (full) or standard deviations (diag)."""
    kinds = {v: k for k, v in _SKLEARN_COVARIANCE.items()}
    if gm.covariance_type not in kinds:
        raise ValueError(f"only 'full' and 'diag' mixtures convert, got covariance_type {gm.covariance_type!r}")
    means = torch.as_tensor(np.asarray(gm.means_), dtype=torch.float64)  # (K, D)
    k, d = means.shape
    prior = MixturePrior(d, k, kinds[gm.covariance_type]).double()
    cov = torch.as_tensor(np.asarray(gm.covariances_), dtype=torch.float64)
    with torch.no_grad():
        prior.logits.copy_(torch.as_tensor(np.log(gm.weights_), dtype=torch.float64))
        prior.means.copy_(means)
        if prior.covariance == "full":
            tril = torch.linalg.cholesky(cov)  # (K, D, D)
            prior.log_diag.copy_(torch.diagonal(tril, dim1=-2, dim2=-1).log())
            prior.lower.copy_(torch.tril(tril, -1))
        else:
            prior.log_scale.copy_(0.5 * cov.log())  # cov: (K, D) variances
    return prior


def standardize_flow_input(prior: Prior, z: Tensor) -> bool:
    """Glow's data-dependent initialisation: set a flow's first layer, when it is an :class:`ActNorm`, to map z
    (N, D) to zero mean and unit variance per dimension, u = (z - m) / s. Returns whether it did.

    Codes of an unregularised encoder (β = 0) can sit far from N(0, I) in location and scale, where a flow that
    starts as the identity spends its first epochs moving there (and NSF's splines, on [-5, 5], act as the identity
    outside it); the maximum-likelihood fit then starts from the moment-matched Gaussian instead.
    """
    _check_latents(z)
    if not isinstance(prior, FlowPrior) or not len(prior.transforms) or not isinstance(prior.transforms[0], ActNorm):
        return False
    first = prior.transforms[0]
    mean, std = z.mean(0), z.std(0).clamp_min(1e-6)  # (D,) each
    with torch.no_grad():
        first.log_scale.copy_(-std.log().to(first.log_scale))
        first.bias.copy_((-mean / std).to(first.bias))
    return True


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators (CPU, and ``device``'s if it is a GPU) seeded from ``seed``, restored after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def fit_prior(prior: Prior, z: Tensor, *, epochs: int, batch_size: int = 256, lr: float = 1e-3,
              seed: int = 0) -> list[float]:
    """Train ``prior`` in place by maximum likelihood on z (N, D): Adam at ``lr`` on -mean log p(z_batch) over
    ``epochs`` passes in a shuffled order. Returns each epoch's mean negative log-likelihood (nats per latent,
    the average over its batches).

    Only ``prior.parameters()`` move: for a VampPrior that is the pseudo-inputs, the encoder it reads stays as
    it is. The prior is left in train mode; z should be on the prior's device and dtype.
    """
    _check_latents(z)
    if not prior.has_density:
        raise ValueError(f"{type(prior).__name__} has no density to fit by maximum likelihood")
    params = [p for p in prior.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(prior).__name__} has no parameters to fit")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    prior.train()
    history = []
    with _seeded(seed, z.device):  # any noise inside the prior (a two-stage VAE's importance draws)
        for _ in range(epochs):
            total, count = 0.0, 0
            for idx in _batches(z.shape[0], batch_size, g):
                loss = -prior.log_prob(z[idx.to(z.device)]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, count = total + loss.item(), count + 1
            history.append(total / count)
    return history


def fit_two_stage_vae(z: Tensor, *, hidden: int = 256, layers: int = 2, epochs: int = 100, batch_size: int = 256,
                      lr: float = 1e-3, seed: int = 0, n_importance: int = 64) -> TwoStageVAE:
    """Dai & Wipf's second stage trained on z (N, D) by the ELBO, γ in closed form (module
    :mod:`~latentprior.priors.two_stage`); returned in eval mode on z's device and dtype.

    At each step γ is the batch's mean squared error per dimension (``TwoStageVAE.elbo(optimal_gamma=True)``,
    as the first stage's ``gamma_update: optimal``); at the end the stored γ is that error over all of z, with
    u drawn from q(u | z).
    """
    _check_latents(z)
    g = torch.Generator().manual_seed(seed)
    with _seeded(seed, z.device):  # initial weights and the reparameterisation noise
        vae = TwoStageVAE(z.shape[1], hidden, layers, n_importance=n_importance).to(device=z.device, dtype=z.dtype)
        opt = torch.optim.Adam(vae.parameters(), lr=lr)
        vae.train()
        for _ in range(epochs):
            for idx in _batches(z.shape[0], batch_size, g):
                loss = -vae.elbo(z[idx.to(z.device)], optimal_gamma=True).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        vae.eval()
        with torch.no_grad():  # the stored γ: the closed form over all of z, u drawn from q(u|z)
            mean, logvar = vae.encode(z)
            rec = vae.decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))
            vae.log_gamma.copy_((z - rec).pow(2).mean().clamp_min(1e-8).log())
    return vae
