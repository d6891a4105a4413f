"""Latent interpolation between encoded images (paper Fig. 4 and section 6.2).

* space ``z``: interpolate in the encoder's latent space Z_T (slerp by default, as in Fig. 4).
* space ``base``: for flow priors, map the endpoints to Z_0 with f, slerp there, and map back with f⁻¹:
  ẑ = f⁻¹(slerp(f(z_a), f(z_b); t)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentprior.errors import UserError
from latentprior.priors import FlowPrior

__all__ = ["slerp", "lerp", "interpolate", "InterpolationError"]


class InterpolationError(ValueError, UserError):
    """An interpolation the run cannot do (an unknown space or method, ``base`` without a flow prior)."""


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """a, b: (B, D); t: (T,) -> (B, T, D)."""
    t = t.to(a)[None, :, None]
    return (1 - t) * a[:, None] + t * b[:, None]


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical-linear interpolation (White 2016). a, b: (B, D); t: (T,) -> (B, T, D).

    Keeps the endpoints, and the norm along the path when |a| = |b|. The cosine is clamped to
    [-1 + eps, 1 - eps], so sin ω >= ~4.5e-4 and nothing divides by zero: parallel endpoints give the
    straight line (sin((1-t)ω) / sin ω -> 1 - t); antiparallel ones have no unique great circle, and the
    path runs through the origin (cos(πt) a for b = -a).
    """
    t = t.to(a)[None, :, None]
    an, bn = a / a.norm(dim=-1, keepdim=True).clamp_min(eps), b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    omega = torch.acos((an * bn).sum(-1).clamp(-1 + eps, 1 - eps))[:, None, None]  # (B, 1, 1)
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a[:, None] + torch.sin(t * omega) / so * b[:, None]


@torch.no_grad()
def interpolate(model, x_a: Tensor, x_b: Tensor, steps: int = 10, space: str = "z", method: str = "slerp") -> Tensor:
    """Decoded interpolations between images x_a[i] and x_b[i]: (B, steps, C, H, W) in [0, 1].

    Endpoints are the posterior means. ``space='base'`` needs a :class:`~latentprior.priors.FlowPrior`.
    """
    if space not in ("z", "base"):
        raise InterpolationError(f"space must be 'z' or 'base', got '{space}'")
    if method not in ("slerp", "lerp"):
        raise InterpolationError(f"method must be 'slerp' or 'lerp', got '{method}'")
    model.eval()
    za, _ = model.encode(x_a)
    zb, _ = model.encode(x_b)
    t = torch.linspace(0, 1, steps)
    fn = slerp if method == "slerp" else lerp
    if space == "z":
        path = fn(za, zb, t)  # (B, T, D)
    else:
        prior = model.prior
        if not isinstance(prior, FlowPrior):
            raise InterpolationError(f"space='base' needs a flow prior; this run's prior is {type(prior).__name__}")
        ua, _ = prior.to_base(za)
        ub, _ = prior.to_base(zb)
        u = fn(ua, ub, t)  # (B, T, D) in Z_0
        path, _ = prior.from_base(u.flatten(0, 1))
        path = path.view(u.shape)
    b, s, d = path.shape
    imgs = model.decode(path.reshape(b * s, d)).float().clamp(0, 1)
    return imgs.view(b, s, *imgs.shape[1:])
