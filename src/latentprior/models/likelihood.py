"""Pixel likelihoods p(x | z) beside the Gaussian N(G(z), γI)
(:class:`~latentprior.models.reconstruction.DecoderVariance`).

Every one maps images x and decoder outputs g = G(z), both (B, C, H, W), to log p(x | z) summed over pixels,
(B,), through ``log_density(x, g)``; the model holds the chosen one as ``model.variance`` and every reader of
log p(x|z) (objectives, IW-NLL) goes through ``LatentAutoencoder.log_px_given_z``. ``model.likelihood`` in the
config chooses (models/build.py).

* Laplace (an L1 reconstruction loss): log p = Σ_i [-log 2b - |x_i - g_i| / b]. For a fixed decoder, the
  maximiser in b of a batch's log-likelihood is the mean absolute error, b* = Σ |x - g| / (B·C·H·W)
  (d/db [-n log 2b - S/b] = -n/b + S/b² = 0); ``update="optimal"`` uses it at every training step, as the
  Gaussian's closed-form γ* = MSE, with a running average for eval mode.
* Bernoulli: g are the pixels' probabilities (the decoder ends in a sigmoid): log p = Σ_i [x_i log g_i +
  (1 - x_i) log(1 - g_i)]. On binary images this is the Bernoulli likelihood. Grey pixels x ∈ (0, 1) are used
  as they are, i.e. the loss is the binary cross-entropy against soft targets, as is common; it is then not a
  normalised density over [0, 1]^n, so its IW-NLL is not a likelihood of grey images.
* Continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019): the Bernoulli term plus log C(g), with
  C(λ) = 2 atanh(1 - 2λ) / (1 - 2λ) (C(1/2) = 2), which normalises it into a density on [0, 1] for each pixel.

Probabilities are clamped to [eps, 1 - eps] (eps the dtype's machine epsilon) as ``torch.distributions`` does,
so a saturated sigmoid gives a finite log-likelihood.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["PixelLikelihood", "LaplaceLikelihood", "BernoulliLikelihood", "continuous_bernoulli_log_norm", "SCALE_MIN"]

SCALE_MIN = 1e-6  # floor of a closed-form scale: a batch the decoder reproduces exactly must not give log 0
_RUNNING_MOMENTUM = 0.1  # of the eval-time scale, as BatchNorm's running statistics
_LOG_2 = math.log(2.0)


class PixelLikelihood(nn.Module):
    """log p(x | z) given the decoder output: ``log_density(x, g)``, (B, C, H, W) x2 -> (B,).

    ``metrics()``: the likelihood's scale for logging under the key ``gamma`` (γ, or Laplace's b), or nothing
    for a likelihood without a scale.
    """

    def log_density(self, x: Tensor, g: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self) -> dict[str, Tensor]:
        return {}


class LaplaceLikelihood(PixelLikelihood):
    """Independent Laplace(g_i, b) per pixel; b stored as log b (module docstring for b*).

    * fixed (``learned=False``): a buffer.
    * ``learned=True, update="gradient"``: log b is a Parameter of the autoencoder update.
    * ``learned=True, update="optimal"``: each training-mode call uses its batch's b* = mean |x - g|
      (detached: the maximiser's own dependence on g has zero gradient at the maximum); the buffer keeps a
      running average of b* for eval mode (IW-NLL) and for the ``gamma`` metric.
    """

    def __init__(self, b: float = 1.0, learned: bool = False, update: str = "optimal") -> None:
        super().__init__()
        if b <= 0:
            raise ValueError(f"the Laplace scale b must be > 0, got {b}")
        if update not in ("optimal", "gradient"):
            raise ValueError(f"update must be 'optimal' or 'gradient', got '{update}'")
        log_b = torch.tensor(math.log(b))
        self.initial, self.update_rule = float(b), update  # the constructor's values (describe.py records them)
        self.learned = learned
        self.optimal = learned and update == "optimal"
        if learned and not self.optimal:
            self.log_b = nn.Parameter(log_b)
        else:
            self.register_buffer("log_b", log_b)

    @property
    def b(self) -> Tensor:
        return self.log_b.exp()

    def metrics(self) -> dict[str, Tensor]:
        return {"gamma": self.b}

    def log_density(self, x: Tensor, g: Tensor) -> Tensor:
        """Σ_i log Laplace(x_i; g_i, b) = -(n log 2b + Σ_i |x_i - g_i| / b): (B, C, H, W) x2 -> (B,)."""
        n = x[0].numel()
        l1 = (x - g).abs().flatten(1).sum(-1)  # (B,)
        log_b = self.log_b
        if self.optimal and self.training:
            with torch.no_grad():
                best = (l1.to(self.log_b.dtype).mean() / n).clamp_min(SCALE_MIN)  # the batch's mean absolute error
                self.log_b.copy_(torch.lerp(self.b, best, _RUNNING_MOMENTUM).log())
                log_b = best.log().to(l1.dtype)
        return -(n * (_LOG_2 + log_b) + l1 / log_b.exp())


def _clamp_probs(g: Tensor) -> Tensor:
    eps = torch.finfo(g.dtype).eps
    return g.clamp(eps, 1 - eps)


def continuous_bernoulli_log_norm(p: Tensor) -> Tensor:
    """log C(λ), C(λ) = 2 atanh(1 - 2λ) / (1 - 2λ), elementwise for λ in (0, 1).

    Near λ = 1/2 the ratio is 0/0 in floating point; there its series 2 (1 + t²/3 + t⁴/5 + ...), t = 1 - 2λ, is
    used (for |t| < 1e-2 the next term, t⁶/7, is below 1.5e-13 relative).
    """
    t = 1 - 2 * p
    near = t.abs() < 1e-2
    safe = torch.where(near, torch.ones_like(t), t)  # keeps the unused branch finite (and its gradient)
    exact = torch.log(2 * torch.atanh(safe) / safe)
    t2 = t * t
    series = _LOG_2 + torch.log1p(t2 / 3 + t2 * t2 / 5)
    return torch.where(near, series, exact)


class BernoulliLikelihood(PixelLikelihood):
    """Bernoulli (``continuous=False``) or continuous Bernoulli pixels with probabilities g (module docstring)."""

    def __init__(self, continuous: bool = False) -> None:
        super().__init__()
        self.continuous = continuous

    def log_density(self, x: Tensor, g: Tensor) -> Tensor:
        """Σ_i [x_i log g_i + (1 - x_i) log(1 - g_i)] (+ log C(g_i) if continuous): (B, C, H, W) x2 -> (B,)."""
        p = _clamp_probs(g)
        ll = x * torch.log(p) + (1 - x) * torch.log1p(-p)
        if self.continuous:
            ll = ll + continuous_bernoulli_log_norm(p)
        return ll.flatten(1).sum(-1)

    def extra_repr(self) -> str:
        return f"continuous={self.continuous}"
