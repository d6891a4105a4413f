"""The one contract every prior and every flow transform follows.

Direction and sign convention (shared by every flow in the library):

* ``Transform.forward`` maps a *latent* ``z`` (the space the encoder writes to, the paper's Z_T)
  to the *base* space ``u`` (the paper's Z_0, where the base density p_0 lives: N(0, I) for RealNVP)
  and returns ``log |det du/dz|`` per example.
* ``Transform.inverse`` maps ``u`` back to ``z`` and returns ``log |det dz/du|`` (the negative of the
  forward log-det at the same point).
* Both take the condition ``c`` (None for an unconditional flow) and pass it on.

So for a flow prior (:class:`~latentprior.priors.flow.FlowPrior`)
``log p(z | c) = log p_0(f(z; c) | c) + log |det df/dz|``, and sampling is ``z = f^{-1}(u; c)``, ``u ~ p_0``.

Sampling temperature τ > 0 (``sample(..., temperature=τ)``) scales the *noise* a sampler starts from, never a
density: ``τ ε`` for the standard normal, ``f^{-1}(τ ε)`` for a flow, component covariances ``τ² Σ_k`` for a
mixture, ``G(τ ε)`` for an implicit or decoder-based prior. τ = 1 is exactly the untempered sampler (the same
draws, bit for bit); τ < 1 trades diversity for samples nearer the modes (Kingma & Dhariwal's "reduced
temperature"). ``log_prob`` is always the untempered density.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

from latentprior.errors import UserError

__all__ = ["Prior", "Transform", "ImplicitPriorError", "check_temperature"]


def check_temperature(temperature: float) -> float:
    """τ as a float if it is a finite real number > 0 (numpy scalars too), else a ValueError naming it."""
    real = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not (real and 0 < temperature < float("inf")):
        raise ValueError(f"sampling temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


class ImplicitPriorError(NotImplementedError, UserError):
    """Raised when a density is asked of a prior that only defines a sampler (an adversarial prior)."""


class Prior(nn.Module):
    """p(z | c).  ``z``: (B, D) float, ``c``: (B, C) or None.

    Subclasses set ``has_density`` and implement :meth:`sample` and, when they have a density,
    :meth:`log_prob`.
    """

    has_density: bool = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"latent dimension must be >= 1, got {dim}")
        self.dim = dim

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(z | c), shape (B,)."""
        raise ImplicitPriorError(
            f"{type(self).__name__} is an implicit prior: it can be sampled but has no log_prob"
        )

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """n draws from p(z | c), shape (n, D), on the prior's device; ``temperature`` τ scales the sampler's
        noise as the module docstring says (τ = 1: untempered)."""
        raise NotImplementedError

    def _device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    def base_noise(self, n: int, dim: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard-normal noise (n, dim) on this prior's device and dtype, from ``generator`` if given.

        A generator draws on its own device (a CPU generator gives the same draws whatever the prior's device);
        comparing devices instead would mistake ``cuda`` for a different device than ``cuda:0``.
        """
        device = self._device()
        if generator is None:
            return torch.randn(n, dim, device=device, dtype=self._dtype())
        return torch.randn(n, dim, generator=generator, device=generator.device, dtype=self._dtype()).to(device)

    def uniform_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """U(0, 1) noise (n,) on this prior's device and dtype, from ``generator`` if given (as :meth:`base_noise`);
        a mixture picks its components with it."""
        device = self._device()
        if generator is None:
            return torch.rand(n, device=device, dtype=self._dtype())
        return torch.rand(n, generator=generator, device=generator.device, dtype=self._dtype()).to(device)


class Transform(nn.Module):
    """A bijection z -> u with a tractable log-det (see the module docstring for the convention)."""

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u, log|det du/dz| with shapes (B, D), (B,)."""
        raise NotImplementedError

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z, log|det dz/du| with shapes (B, D), (B,)."""
        raise NotImplementedError
