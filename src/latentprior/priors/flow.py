"""Flows built from parts: a cascade of transforms, and a prior that is a transform plus a base density.

    log p(z | c) = log p_0(f(z; c) | c) + log |det df/dz|,      sampling: z = f^{-1}(u; c), u ~ p_0(. | c)

with f a :class:`~latentprior.priors.base.Transform` (latent z -> base u) and p_0 a density :class:`Prior` over
the base space. :class:`~latentprior.priors.realnvp.RealNVPPrior` is one: ActNorm and coupling layers in a
:class:`ComposedTransform` over a :class:`~latentprior.priors.normal.StandardNormal` base. Callers that need
the base space (Fig. 2, interpolation in Z_0) recognise a flow by ``isinstance(prior, FlowPrior)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from latentprior.priors.base import Prior, Transform

__all__ = ["ComposedTransform", "FlowPrior"]


class ComposedTransform(Transform, nn.ModuleList):
    """f = f_K ∘ ... ∘ f_1: a list of transforms that is itself a :class:`Transform`.

    ``forward`` applies f_1 first and ``inverse`` applies f_K^{-1} first; the log-dets of the layers add up
    (log|det| of a composition is the sum of its layers' log|det|), in a (B,) sum created on the input's
    device and dtype. The context ``c`` goes to every layer. Being an ``nn.ModuleList``, the layers are
    ``t[i]``, ``len(t)``, ``for layer in t``, and their state_dict keys are ``<i>.<name>``.
    """

    def __init__(self, transforms: Iterable[Transform] = ()) -> None:
        transforms = list(transforms)
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"ComposedTransform composes Transforms, got {type(t).__name__}")
        super().__init__(transforms)

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) -> u = f(z): (B, D), log|det df/dz|: (B,)."""
        logdet = z.new_zeros(z.shape[0])
        for transform in self:
            z, ld = transform(z, c)
            logdet = logdet + ld
        return z, logdet

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) -> z = f^{-1}(u): (B, D), log|det df^{-1}/du|: (B,)."""
        logdet = u.new_zeros(u.shape[0])
        for transform in reversed(self):
            u, ld = transform.inverse(u, c)
            logdet = logdet + ld
        return u, logdet


class FlowPrior(Prior):
    """p(z | c) = p_0(f(z; c) | c) |det df/dz| for a transform f and a base density p_0 (module docstring).

    ``transforms`` holds f as a :class:`ComposedTransform` (a single transform is wrapped in one), so the
    layers of every flow have the state_dict keys ``transforms.<i>.<name>``; ``transform`` is the same
    object read as one Transform. ``base`` is the density prior p_0 over the base space.

    ``embedding`` (optional, a conditional flow's): a net applied once to the condition c, whose output
    h = embedding(c) is the context that every transform and the base receive in place of c (so an image
    condition is encoded once per call, not once per layer). Its parameters are the prior's.
    """

    def __init__(self, transform: Transform, base: Prior, embedding: nn.Module | None = None) -> None:
        if not base.has_density:
            raise ValueError(f"a flow's base needs a density; {type(base).__name__} has none")
        super().__init__(base.dim)
        composed = transform if isinstance(transform, ComposedTransform) else ComposedTransform([transform])
        self.transforms = composed
        self.base = base
        self.embedding = embedding

    def context(self, c: Tensor | None) -> Tensor | None:
        """The context the layers see: embedding(c) (B, E), or c itself for a flow without an embedding."""
        return c if self.embedding is None or c is None else self.embedding(c)

    @property
    def transform(self) -> ComposedTransform:
        return self.transforms

    def to_base(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z: (B, D) latent -> u = f(z): (B, D) base, log|det du/dz|: (B,)."""
        return self.transforms(z, self.context(c))

    def from_base(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u: (B, D) base -> z = f^{-1}(u): (B, D) latent, log|det dz/du|: (B,)."""
        return self.transforms.inverse(u, self.context(c))

    def log_prob(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """log p(z | c): (B,)."""
        h = self.context(c)
        u, logdet = self.transforms(z, h)
        return self.base.log_prob(u, h) + logdet

    def sample(self, n: int, c: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, D) draws f^{-1}(u; c), u ~ p_0(. | c); c: (n, C) when conditional. Differentiable.

        At temperature τ the base draw is tempered (u = τ ε over N(0, I), μ(h) + τ ε over N(μ(h), I)) and then
        mapped back: z = f^{-1}(τ ε). This is Glow's reduced-temperature sampling; it is not the density
        p(z)^{1/τ²} (the log-det of f is not tempered).
        """
        h = self.context(c)
        z, _ = self.transforms.inverse(self.base.sample(n, h, generator, temperature), h)
        return z
