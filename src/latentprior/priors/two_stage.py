"""Dai & Wipf's second stage (Two-Stage VAE, 2019): a small VAE over the latents z of a trained autoencoder,
used as a prior.

    u ~ N(0, I_D),    z | u ~ N(G(u), γ I_D),    q(u | z) = N(μ(z), diag σ²(z))      (u has z's dimension D)

* ``sample`` is Dai & Wipf's sampler: z = G(τ ε), the decoder mean at (tempered) standard-normal noise. With
  ``decoder_noise=True`` it adds the decoder's N(0, γI) noise, giving draws from the model density below.
* ``log_prob`` is the importance-weighted estimate (Burda et al.) of the model density
  p(z) = ∫ N(z; G(u), γI) N(u; 0, I) du with K = ``n_importance`` draws u_k ~ q(u | z):

      log p̂(z) = log (1/K) Σ_k N(z; G(u_k), γI) N(u_k; 0, I) / q(u_k | z)

  p̂ is an unbiased estimate of p(z), so log p̂ is a lower bound on log p(z) in expectation, tightening as K
  grows. It is random (torch's global generator; seed it for a reproducible value) and it is the density of
  the noisy sampler, not of the decoder-mean sampler: the two differ by the N(0, γI) noise, which is small
  once γ has been learned (γ is the second stage's per-dimension reconstruction error).

:func:`~latentprior.priors.expost.fit_two_stage_vae` trains one on encoded latents (γ in closed form, the
batch's mean squared error, as the first stage's ``model.gamma_update: optimal``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from latentprior.priors.base import Prior, check_temperature

__all__ = ["TwoStageVAE"]

_LOG_2PI = math.log(2 * math.pi)
_GAMMA_FLOOR = 1e-8


def _mlp(d_in: int, hidden: int, layers: int, d_out: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = d_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, d_out))
    return nn.Sequential(*mods)


class TwoStageVAE(Prior):
    """A VAE over (B, dim) latents used as p(z) (module docstring). ``hidden``/``layers``: each MLP's width and
    number of hidden layers; ``gamma``: the initial decoder variance γ (a buffer; the fit sets it)."""

    def __init__(self, dim: int, hidden: int = 256, layers: int = 2, *, n_importance: int = 64,
                 gamma: float = 1.0, decoder_noise: bool = False) -> None:
        super().__init__(dim)
        if hidden < 1 or layers < 0 or n_importance < 1 or gamma <= 0:
            raise ValueError(f"need hidden >= 1, layers >= 0, n_importance >= 1, gamma > 0; got {hidden}, "
                             f"{layers}, {n_importance}, {gamma}")
        self.hidden, self.layers, self.n_importance, self.decoder_noise = hidden, layers, n_importance, decoder_noise
        self.encoder = _mlp(dim, hidden, layers, 2 * dim)
        self.decoder = _mlp(dim, hidden, layers, dim)
        self.register_buffer("log_gamma", torch.tensor(math.log(gamma)))

    @property
    def gamma(self) -> Tensor:
        return self.log_gamma.exp()

    def encode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """q(u | z): mean, log-variance (B, D) each (the log-variance softly bounded to (-10, 10))."""
        mean, logvar = self.encoder(z).chunk(2, dim=-1)
        return mean, 10.0 * torch.tanh(logvar / 10.0)

    def decode(self, u: Tensor) -> Tensor:
        """G(u): (B, D) -> (B, D)."""
        return self.decoder(u)

    def elbo(self, z: Tensor, optimal_gamma: bool = False) -> Tensor:
        """The one-sample ELBO log N(z; G(u), γI) - KL(q(u|z) || N(0, I)), u ~ q(u|z): (B, D) -> (B,).

        ``optimal_gamma``: use, instead of the stored γ, this batch's mean squared error per dimension
        ||z - G(u)||² / (B·D), detached: the exact maximiser of the batch's ELBO in γ for the current encoder,
        decoder and draw u (floored at 1e-8, so an exact fit is not log 0).
        """
        mean, logvar = self.encode(z)
        u = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        g = self.decode(u)
        log_gamma = self.log_gamma
        if optimal_gamma:
            log_gamma = ((z - g).detach().pow(2).mean()).clamp_min(_GAMMA_FLOOR).log()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return self._log_pz_given_u(z, g, log_gamma) - kl

    def _log_pz_given_u(self, z: Tensor, g: Tensor, log_gamma: Tensor) -> Tensor:
        return -0.5 * (self.dim * (_LOG_2PI + log_gamma) + (z - g).pow(2).sum(-1) / log_gamma.exp())

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """The importance-weighted estimate log p̂(z) with ``n_importance`` draws (module docstring): (B, D) -> (B,)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        k, (b, d) = self.n_importance, z.shape
        mean, logvar = self.encode(z)  # (B, D) each
        eps = torch.randn(k, b, d, dtype=z.dtype, device=z.device)
        u = mean + torch.exp(0.5 * logvar) * eps  # (K, B, D)
        g = self.decode(u.reshape(k * b, d)).reshape(k, b, d)
        log_pz_u = self._log_pz_given_u(z, g, self.log_gamma)  # (K, B)
        log_pu = -0.5 * (_LOG_2PI + u.pow(2)).sum(-1)
        log_qu = -0.5 * (_LOG_2PI + logvar + eps.pow(2)).sum(-1)  # (u - μ)/σ is ε exactly
        return torch.logsumexp(log_pz_u + log_pu - log_qu, dim=0) - math.log(k)

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws G(τ ε), plus √γ η (η ~ N(0, I), untempered) when ``decoder_noise``."""
        tau = check_temperature(temperature)
        z = self.decode(tau * self.base_noise(n, self.dim, generator))
        if self.decoder_noise:
            z = z + self.gamma.sqrt() * self.base_noise(n, self.dim, generator)
        return z

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, hidden={self.hidden}, layers={self.layers}, n_importance={self.n_importance}, "
                f"decoder_noise={self.decoder_noise}")
