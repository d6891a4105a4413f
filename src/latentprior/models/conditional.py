"""The conditional generative autoencoder of image-to-image translation: q(z | x, y), p(x | y, z), p(z | y).

The condition y = c(x) is a deterministic function of the image (:mod:`latentprior.data.conditions`), named
by the model and computed from the batch where it is needed, so the batch stays a tensor of images and
the training run (steps, shards, resume, prior-only phase) treats a conditional model like any other.
The prior reads y flattened, as the Prior contract's (B, C) context: ``prior.log_prob(z, y.flatten(1))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentprior.data.conditions import condition_fn
from latentprior.errors import UserError
from latentprior.models.autoencoder import LatentAutoencoder

__all__ = ["ConditionalAutoencoder", "ConditionRequired"]


class ConditionRequired(ValueError, UserError):
    """A conditional model was asked for unconditional samples."""


class ConditionalAutoencoder(LatentAutoencoder):
    """A :class:`LatentAutoencoder` whose encoder reads (x, y), decoder (z, y) and prior p(z | y).

    Args:
        condition: the name of y = c(x) in :data:`~latentprior.data.conditions.CONDITIONS`.
        encoder: [x, y] (B, 2C, H, W) -> (B, 2D).   decoder: (z (B, D), y (B, C, H, W)) -> (B, C, H, W).
        prior: a prior with ``log_prob(z, c)``/``sample(n, c)`` for c = y flattened (B, C·H·W).
        The remaining keywords are :class:`LatentAutoencoder`'s.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module, *, condition: str,
                 **kwargs) -> None:
        super().__init__(encoder, decoder, prior, **kwargs)
        self.condition_name = condition
        self._condition = condition_fn(condition)

    def condition(self, x: Tensor) -> Tensor:
        """y = c(x): (B, C, H, W) -> (B, C, H, W), no gradient (a fixed function of the data)."""
        with torch.no_grad():
            return self._condition(x)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """q(z | x, y): mean, log-variance (B, D) each; y defaults to c(x)."""
        y = self.condition(x) if y is None else y
        return super().encode(torch.cat((x, y), dim=1))  # the encoder reads [x, y] (B, 2C, H, W)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z, y): (B, C, H, W)."""
        if y is None:
            raise ConditionRequired("a conditional model decodes z given a condition y")
        return self.decoder(z, y)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y: Tensor | None = None) -> Tensor:
        """n images G(z, y), z ~ p(z | y), for the conditions y (n, C, H, W): float32 in [0, 1]; eval mode."""
        if y is None:
            raise ConditionRequired(f"this model is conditional (condition '{self.condition_name}'): it samples "
                                    "images for given conditions, not from p(z) alone; evaluate it with the "
                                    "metrics cond_fid, cond_mse and cond_lpips")
        if y.shape[0] != n:
            raise ValueError(f"asked for {n} samples with {y.shape[0]} conditions")
        was_training = self.training
        self.eval()
        try:
            z = self.prior.sample(n, y.flatten(1), generator=generator)
            return self.decode(z, y).float().clamp_(0.0, 1.0)
        finally:
            self.train(was_training)
