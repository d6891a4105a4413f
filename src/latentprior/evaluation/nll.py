"""Importance-weighted negative log-likelihood (Burda et al., 2016) of a VAE with a density prior, in nats.

    log p(x) ≈ log (1/k) Σ_k exp(log p(x | z_k) + log p(z_k) - log q(z_k | x)),   z_k ~ q(z | x)

a lower bound on log p(x) for every k (the ELBO at k = 1) that tightens to log p(x) as k grows. With the
Gaussian decoder p(x | z) = N(G(z), γI) this is the *continuous* density of x ∈ [0, 1]^(C·H·W) (it can be
negative); it is not a discrete likelihood of 8-bit images and is not comparable to bits/dim figures of
discrete models. Uses the model API of ``docs/architecture.md``: ``encode``, ``decode``, ``log_px_given_z``,
``prior.log_prob``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentprior.errors import UserError

__all__ = ["NLLUnavailable", "check_nll_supported", "iw_log_likelihood"]

_LOG_2PI = math.log(2 * math.pi)
_DETERMINISTIC = "importance-weighted NLL needs a Gaussian encoder q(z|x); this run's encoder is deterministic"


class NLLUnavailable(ValueError, UserError):
    """The model has no tractable q(z|x) or p(z) (deterministic encoder, implicit prior)."""


def check_nll_supported(model) -> None:
    """Raise :class:`NLLUnavailable` unless the prior has a density and the model declares no deterministic
    encoder (an encoder that does not declare it is checked per call, by the ``logvar`` it returns)."""
    if not getattr(model.prior, "has_density", False):
        raise NLLUnavailable(
            f"importance-weighted NLL needs a prior with a density; {type(model.prior).__name__} is implicit "
            "(adversarial), so log p(z) is not available"
        )
    if not getattr(model, "gaussian_encoder", True):
        raise NLLUnavailable(_DETERMINISTIC)


@torch.no_grad()
def iw_log_likelihood(model, x: Tensor, k: int = 100, *, generator: torch.Generator | None = None,
                      chunk: int | None = None) -> Tensor:
    """Importance-weighted estimate of log p(x) in nats, per image: x (B, C, H, W) float in [0, 1] -> (B,).

    ``k`` importance samples per image, drawn ``chunk`` at a time (default: as many as keep ~4096 decoder
    inputs per pass). Noise comes from ``generator`` (a CPU generator works on any device). Runs the model in
    eval mode.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    check_nll_supported(model)
    was_training = model.training
    model.eval()
    try:
        mean, logvar = model.encode(x)  # (B, D) each
        if logvar is None:
            raise NLLUnavailable(_DETERMINISTIC)
        b, d = mean.shape
        std = torch.exp(0.5 * logvar)
        chunk = chunk or max(1, 4096 // b)
        log_w = []
        for start in range(0, k, chunk):
            kc = min(chunk, k - start)
            eps = torch.randn(kc, b, d, generator=generator, dtype=mean.dtype).to(mean.device)  # (kc, B, D)
            z = (mean + std * eps).reshape(kc * b, d)
            g = model.decode(z)  # (kc·B, C, H, W)
            xr = x.expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])
            log_px = model.log_px_given_z(xr, g)  # (kc·B,)
            log_pz = model.prior.log_prob(z)  # (kc·B,)
            # log q(z|x) from the standardised draw: (z - mean) / std is eps exactly, no round-off.
            log_qz = -0.5 * (_LOG_2PI + logvar + eps.pow(2)).sum(-1).reshape(kc * b)
            log_w.append((log_px + log_pz - log_qz).reshape(kc, b).double())
        lw = torch.cat(log_w, 0)  # (k, B)
        return torch.logsumexp(lw, 0) - math.log(k)
    finally:
        model.train(was_training)
