"""Perceptual path length (Karras et al., 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks", §4.1), for generative autoencoders.

For endpoint pairs (a, b) drawn from a latent space and t ~ U(0, 1), the path is interpolated there and decoded:

    l = E[ d(G(p(a, b; t)), G(p(a, b; t + ε))) / ε² ],      ε = 1e-4,  d = LPIPS (VGG16)

with distances below the 1st and above the 99th percentile discarded before the mean (StyleGAN's
``np.percentile(..., 'lower'/'higher')``, bounds kept). As StyleGAN interpolates its Gaussian input space Z
spherically and its mapped space W linearly:

* ``space="zT"``: a, b ~ p(z) (two independent prior draws), p = lerp; G = decoder;
* ``space="z0"`` (flow priors only): a, b ~ p_0 (the base), p = slerp, G = decoder ∘ f⁻¹.

StyleGAN's slerp also projects onto the unit sphere (its mapping network normalises its input first); here the
decoder reads f⁻¹(u) for u of norm about √D, so the slerp is the norm-keeping one of
:func:`latentprior.sampling.slerp`. For the N(0, I) VAE the prior is its own base: its ``zT`` row lerps between
N(0, I) draws (``method="slerp"`` gives StyleGAN's Z protocol on the same pairs). For an adversarial prior a, b
are draws of z = G(ε) and only ``zT`` exists.

API (used by the metric registry and the disentanglement study)::

    perceptual_path_length(model, distance, n=..., seed=..., space="zT", epsilon=1e-4, method=None)
        -> {"value": trimmed mean, "median", "kept", "n", "space", "method", "epsilon"}
    path_distances(generate, distance, a, b, t, epsilon=1e-4, method="lerp")   # (B,) d / ε², any generator
    trimmed_mean(d)                                                             # the 1–99 % rule

``distance(x, y) -> (B,)`` is injected (the registry passes LPIPS-VGG16; tests pass a plain squared L2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentprior.sampling import lerp, slerp

from .features import SAMPLE_CHUNK, chunk_generator
from .separability import check_space

__all__ = ["EPSILON", "path_distances", "path_points", "perceptual_path_length", "trimmed_mean"]

EPSILON = 1e-4
_DEFAULT_METHOD = {"zT": "lerp", "z0": "slerp"}


def path_points(a: Tensor, b: Tensor, t: Tensor, method: str) -> Tensor:
    """Point t[i] of the path from a[i] to b[i]: a, b (B, D), t (B,) -> (B, D)."""
    fn = {"lerp": lerp, "slerp": slerp}[method]
    # The interpolators take one t grid for the whole batch; vmap gives each pair its own t.
    return torch.vmap(lambda ai, bi, ti: fn(ai[None], bi[None], ti[None])[0, 0])(a, b, t)


def path_distances(generate: Callable[[Tensor], Tensor], distance: Callable[[Tensor, Tensor], Tensor],
                   a: Tensor, b: Tensor, t: Tensor, *, epsilon: float = EPSILON, method: str = "lerp") -> Tensor:
    """d(G(p(t)), G(p(t + ε))) / ε² per pair: a, b (B, D), t (B,) -> (B,)."""
    p0, p1 = path_points(a, b, t, method), path_points(a, b, t + epsilon, method)
    x = generate(torch.cat([p0, p1]))  # one decoder batch for both ends: (2B, ...)
    x0, x1 = x[: a.shape[0]], x[a.shape[0]:]
    return distance(x0, x1) / epsilon**2


def trimmed_mean(d: np.ndarray) -> tuple[float, int]:
    """Mean of d over [1st percentile, 99th percentile] ('lower'/'higher' percentiles), and how many were kept."""
    d = np.asarray(d, dtype=np.float64)
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    return float(kept.mean()), int(kept.size)


def _endpoints(prior, space: str, m: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    draw = (lambda: prior.base.sample(m, None, g)) if space == "z0" else (lambda: prior.sample(m, generator=g))
    return draw(), draw()


@torch.no_grad()
def perceptual_path_length(model, distance: Callable[[Tensor, Tensor], Tensor], *, n: int, seed: int,
                           space: str = "zT", epsilon: float = EPSILON, method: str | None = None,
                           batch_size: int = 100, progress: bool = True) -> dict:
    """PPL of ``model`` in latent ``space`` over ``n`` seeded paths (module docstring); images are the
    decoder's output clamped to [0, 1], as generated samples are."""
    prior = model.prior
    check_space(prior, space)
    method = method or _DEFAULT_METHOD[space]

    def generate(p: Tensor) -> Tensor:
        z = prior.from_base(p)[0] if space == "z0" else p
        return model.decode(z).float().clamp(0.0, 1.0)

    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in tqdm(range(0, n, SAMPLE_CHUNK), desc=f"ppl {space}", disable=not progress):
            m, g = min(SAMPLE_CHUNK, n - start), chunk_generator(seed, start)
            a, b = _endpoints(prior, space, m, g)
            t = torch.rand(m, generator=g).to(a.device)  # the prior draws on the model's device
            for s in range(0, m, batch_size):
                sl = slice(s, s + batch_size)
                parts.append(path_distances(generate, distance, a[sl], b[sl], t[sl], epsilon=epsilon,
                                            method=method).double().cpu())
    finally:
        model.train(was_training)
    d = torch.cat(parts).numpy()
    value, kept = trimmed_mean(d)
    return {"value": value, "median": float(np.median(d)), "kept": kept, "n": n, "space": space,
            "method": method, "epsilon": epsilon}

