"""The VampPrior (Tomczak & Welling, 2018): a mixture of the encoder's posteriors at K learned pseudo-inputs.

    p(z) = (1/K) Σ_k q_φ(z | u_k),     u_k = sigmoid(a_k) ∈ (0, 1)^(C×H×W),     a: (K, C, H, W) learned

How it sits in the bilevel objective (objectives/vae.py):

* θ, the prior's parameters, are the pseudo-inputs' logits ``a`` and nothing else. The encoder φ belongs to the
  upper level F. The prior therefore does **not** register the encoder as a submodule: it holds a plain
  reference to a function (``bind_encoder``) and so ``prior.parameters()`` (the lower level's parameter group)
  and ``prior.state_dict()`` hold the pseudo-inputs alone; the encoder is saved, moved and counted with the
  model that owns it.
* That function evaluates the encoder as a *fixed* function of its input: parameters detached, eval mode
  (:meth:`~latentprior.models.autoencoder.LatentAutoencoder.encode_detached`). So f's gradient reaches the
  pseudo-inputs through the encoder but stops at φ (``autograd.grad(f, φ)`` is None, not merely unused), and
  evaluating the prior never updates the encoder's BatchNorm statistics or spectral-norm vectors. In eval mode
  the pseudo-inputs do not share batch statistics with each other or with the data batch.
* At β = 0 the encoder never sees the prior, as for any prior; the pseudo-inputs chase the aggregate posterior
  through the current encoder. At β > 0, F's term β E_q log p(z) reaches φ through the codes z only: the
  mixture's components are held fixed in F as well. Tomczak & Welling's single-level ELBO also moves φ through
  the components q_φ(z | u_k); in the bilevel reading the prior is the lower level's, and its dependence on φ is
  a stop-gradient.

Temperature τ: component k's covariance becomes τ² diag(σ_k²), weights stay uniform.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from latentprior.priors.base import Prior, check_temperature
from latentprior.priors.mixture import diagonal_mixture_log_prob, pick_components

__all__ = ["VampPrior", "EncoderNotBound"]

Encode = Callable[[Tensor], tuple[Tensor, Tensor | None]]


class EncoderNotBound(RuntimeError):
    """A VampPrior was used before :meth:`VampPrior.bind_encoder` gave it the encoder."""


class VampPrior(Prior):
    """p(z) = (1/K) Σ_k q(z | u_k) over (B, dim), K = ``components`` pseudo-inputs of shape ``image_shape``.

    ``bind_encoder(encode)`` must be called before use, with ``encode``: (K, C, H, W) -> (mean (K, D),
    log-variance (K, D)) evaluating the encoder as a fixed function (module docstring); ``models/build.py``
    binds the model's :meth:`encode_detached`. ``init_scale`` is the standard deviation of the initial
    pseudo-input logits around 0 (pseudo-inputs near 0.5 grey, with some variety between them).
    """

    def __init__(self, dim: int, image_shape: tuple[int, int, int], components: int,
                 init_scale: float = 1.0) -> None:
        super().__init__(dim)
        if components < 1 or len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"need components >= 1 and a (C, H, W) image shape, got {components}, {image_shape}")
        self.components, self.image_shape = components, tuple(image_shape)
        self.pseudo_logits = nn.Parameter(init_scale * torch.randn(components, *image_shape))
        self._encode: Encode | None = None  # a plain attribute: not a submodule, not in state_dict

    def bind_encoder(self, encode: Encode) -> VampPrior:
        """Give the prior the (fixed-function) encoder it mixes the posteriors of; returns self."""
        if not callable(encode):
            raise TypeError(f"bind_encoder expects a callable, got {type(encode).__name__}")
        self._encode = encode
        return self

    @torch.no_grad()
    def init_pseudo_inputs(self, images: Tensor) -> VampPrior:
        """Start the pseudo-inputs at K given images (K, C, H, W) in [0, 1] (Tomczak & Welling also start from
        training images); values are clamped into (0, 1) by 1e-4 so their logits stay finite. Returns self."""
        if images.shape != self.pseudo_logits.shape:
            raise ValueError(f"expected {tuple(self.pseudo_logits.shape)} images, got {tuple(images.shape)}")
        self.pseudo_logits.copy_(torch.logit(images.clamp(1e-4, 1 - 1e-4)))
        return self

    def pseudo_inputs(self) -> Tensor:
        """u = sigmoid(a): (K, C, H, W) in (0, 1), the range of the images the encoder reads."""
        return torch.sigmoid(self.pseudo_logits)

    def components_params(self) -> tuple[Tensor, Tensor]:
        """The components' means and log-variances q(z | u_k): (K, D) each."""
        if self._encode is None:
            raise EncoderNotBound("this VampPrior has no encoder yet: call bind_encoder(model.encode_detached)")
        mean, logvar = self._encode(self.pseudo_inputs())
        if logvar is None:
            raise ValueError("the VampPrior needs a Gaussian encoder q(z|x); the bound encoder is deterministic")
        return mean, logvar

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log (1/K) Σ_k N(z; μ_k, diag σ_k²): (B, D) -> (B,)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected z of shape (B, {self.dim}), got {tuple(z.shape)}")
        mean, logvar = self.components_params()
        log_w = z.new_full((self.components,), -math.log(self.components))
        return diagonal_mixture_log_prob(z, log_w, mean, logvar)

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws μ_k + τ σ_k ε, k uniform in [0, K), ε ~ N(0, I)."""
        tau = check_temperature(temperature)
        mean, logvar = self.components_params()
        eps = self.base_noise(n, self.dim, generator)
        k = pick_components(self.uniform_noise(n, generator), mean.new_full((self.components,), 1 / self.components))
        return mean[k] + torch.exp(0.5 * logvar[k]) * (tau * eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, components={self.components}, image_shape={self.image_shape}"
