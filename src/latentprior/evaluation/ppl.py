"""Perceptual path length (Karras et al., 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks", §4.1), for generative autoencoders.

For endpoint pairs (a, b) drawn from a latent space and t ~ U(0, 1), the path is interpolated there and decoded:

    l = E[ d(C(G(p(a, b; t))), C(G(p(a, b; t + ε)))) / ε² ],      ε = 1e-4,  d = LPIPS (VGG16)

with distances below the 1st and above the 99th percentile discarded before the mean (StyleGAN's
``np.percentile(..., 'lower'/'higher')``, bounds kept). The interpolation p follows StyleGAN's rule — slerp in a
Gaussian input space (its Z), lerp in a learned one (its W) — which is also the paper's (section 6.2: lerp in
Z_T, f⁻¹ ∘ slerp ∘ f through Z_0):

* ``space="zT"`` of a model whose prior is the fixed N(0, I) (VAE, β-VAE, FactorVAE): a, b ~ N(0, I), slerp;
* ``space="zT"`` of a learned prior (a flow, an adversarial prior): a, b ~ p(z), lerp; G = decoder;
* ``space="z0"`` (flow priors only): a, b ~ p_0 = N(0, I) (the base), slerp, G = decoder ∘ f⁻¹.

(:func:`default_method`; ``method=`` overrides it, and the record states which was used.) StyleGAN's slerp also
projects onto the unit sphere (its mapping network normalises its input first); here the decoder reads the point
itself, of norm about √D, so the slerp is the norm-keeping one of :func:`latentprior.sampling.slerp`.

C is the image the distance reads: the decoder mean clamped to [0, 1] — the same images as the generated samples
of FID and separability; the clamp is a no-op for a sigmoid decoder and bounds a linear one — then, with
``crop="face"``, StyleGAN's face crop (:func:`face_crop`: rows [3c, 7c), columns [2c, 6c) of an H x W image,
c = H // 8), which keeps LPIPS on the face of aligned CelebA-like images rather than the background.

Sample size. ``n`` paths, or, with ``max_n > n``, blocks of ``n`` paths drawn until the standard error of the
trimmed mean (:func:`trimmed_mean_se`) falls below ``rel_se`` × the mean, or ``max_n`` paths are drawn. Paths
come in chunks of 100 seeded by (seed, path index), so with n a multiple of 100 an adaptive run that stops at N
paths gives exactly the value of a fixed run of N.

API (used by the metric registry and the disentanglement study)::

    perceptual_path_length(model, distance, n=..., seed=..., space="zT", epsilon=1e-4, method=None,
                           crop="none", max_n=0, rel_se=0.05)
        -> {"value": trimmed mean, "median", "std_err", "kept", "n", "space", "method", "crop", "epsilon",
            "converged"}
    path_distances(generate, distance, a, b, t, epsilon=1e-4, method="lerp")   # (B,) d / ε², any generator
    trimmed_mean(d), trimmed_mean_se(d)                                         # the 1–99 % rule
    face_crop(x), default_method(prior, space)

``distance(x, y) -> (B,)`` is injected (the registry passes LPIPS-VGG16; tests pass a plain squared L2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentprior.priors import StandardNormal
from latentprior.sampling import lerp, slerp

from .features import SAMPLE_CHUNK, chunk_generator
from .separability import check_space

__all__ = ["CROPS", "EPSILON", "default_method", "face_crop", "path_distances", "path_points",
           "perceptual_path_length", "trimmed_mean", "trimmed_mean_se"]

EPSILON = 1e-4
CROPS = ("none", "face")


def default_method(prior, space: str) -> str:
    """slerp where the endpoints are N(0, I) draws (Z_0 of a flow; Z_T of a fixed N(0, I) prior), else lerp.

    ``type(...) is``, not ``isinstance``: a subclass of :class:`StandardNormal` with a learned mean (a
    conditional base) is not N(0, I).
    """
    return "slerp" if space == "z0" or type(prior) is StandardNormal else "lerp"


def face_crop(x: Tensor) -> Tensor:
    """StyleGAN's PPL face crop: x (B, C, H, W) -> x[:, :, 3c:7c, 2c:6c] (B, C, 4c, 4c), c = H // 8.

    For 64 x 64 CelebA: rows 24..55 and columns 16..47, the 32 x 32 window around the face."""
    c = x.shape[-2] // 8
    return x[:, :, 3 * c:7 * c, 2 * c:6 * c]


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


def _bounds(d: np.ndarray) -> tuple[float, float]:
    return np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")


def trimmed_mean(d: np.ndarray) -> tuple[float, int]:
    """Mean of d over [1st percentile, 99th percentile] ('lower'/'higher' percentiles), and how many were kept."""
    d = np.asarray(d, dtype=np.float64)
    lo, hi = _bounds(d)
    kept = d[(d >= lo) & (d <= hi)]
    return float(kept.mean()), int(kept.size)


def trimmed_mean_se(d: np.ndarray) -> float:
    """Standard error of :func:`trimmed_mean` (Tukey & McLaughlin 1963): s_w / (k/N · √N), with s_w the standard
    deviation of d winsorized at the same bounds, k of N values kept; nan for N < 2."""
    d = np.asarray(d, dtype=np.float64)
    if d.size < 2:
        return float("nan")
    lo, hi = _bounds(d)
    kept = int(((d >= lo) & (d <= hi)).sum())
    return float(np.clip(d, lo, hi).std(ddof=1) / (kept / d.size * np.sqrt(d.size)))


def _endpoints(prior, space: str, m: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    draw = (lambda: prior.base.sample(m, None, g)) if space == "z0" else (lambda: prior.sample(m, generator=g))
    return draw(), draw()


@torch.no_grad()
def perceptual_path_length(model, distance: Callable[[Tensor, Tensor], Tensor], *, n: int, seed: int,
                           space: str = "zT", epsilon: float = EPSILON, method: str | None = None,
                           crop: str = "none", max_n: int = 0, rel_se: float = 0.05, batch_size: int = 100,
                           progress: bool = True) -> dict:
    """PPL of ``model`` in latent ``space`` over ``n`` seeded paths, or adaptively up to ``max_n`` paths until
    the standard error is below ``rel_se`` × the value (module docstring)."""
    prior = model.prior
    check_space(prior, space)
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; known: {', '.join(CROPS)}")
    method = method or default_method(prior, space)

    def generate(p: Tensor) -> Tensor:
        z = prior.from_base(p)[0] if space == "z0" else p
        x = model.decode(z).float().clamp(0.0, 1.0)
        return face_crop(x) if crop == "face" else x

    def block(start: int, stop: int) -> list[Tensor]:
        out = []
        for c0 in tqdm(range(start, stop, SAMPLE_CHUNK), desc=f"ppl {space}", disable=not progress):
            m, g = min(SAMPLE_CHUNK, stop - c0), chunk_generator(seed, c0)
            a, b = _endpoints(prior, space, m, g)
            t = torch.rand(m, generator=g).to(a.device)  # the prior draws on the model's device
            for s in range(0, m, batch_size):
                sl = slice(s, s + batch_size)
                out.append(path_distances(generate, distance, a[sl], b[sl], t[sl], epsilon=epsilon,
                                          method=method).double().cpu())
        return out

    cap = max(n, max_n)
    was_training = model.training
    model.eval()
    parts: list[Tensor] = []
    try:
        drawn = 0
        while True:
            parts += block(drawn, min(drawn + n, cap))
            drawn = min(drawn + n, cap)
            d = torch.cat(parts).numpy()
            value, se = trimmed_mean(d)[0], trimmed_mean_se(d)
            converged = bool(se < rel_se * abs(value))
            if converged or drawn >= cap:
                break
    finally:
        model.train(was_training)
    value, kept = trimmed_mean(d)
    return {"value": value, "median": float(np.median(d)), "std_err": se, "kept": kept, "n": int(d.size),
            "space": space, "method": method, "crop": crop, "epsilon": epsilon, "converged": converged}
