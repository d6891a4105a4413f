"""The sampling protocol and the one feature pass that both sides of a comparison go through.

    generated_images(model, n, seed) ─┐
                                      ├─► extract(images, extractor) ─► FeatureSet (μ, Σ [, raw features])
    test images (cached by key) ──────┘

The generated set depends on (seed, n) only: images are drawn in fixed chunks of :data:`SAMPLE_CHUNK`, each
from its own CPU generator seeded by (seed, chunk start), so a batch size changes the speed, never the samples.
Every caller (``latentprior eval``, the benchmarks) draws its samples here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .cache import FeatureCache
from .statistics import FeatureStatistics, feature_statistics, iterate_features

__all__ = ["SAMPLE_CHUNK", "FeatureSet", "chunk_generator", "extract", "generated_images", "images_sha1",
           "make_feature_extractor", "reference_features", "reference_cached", "to_uint8"]

SAMPLE_CHUNK = 100


def make_feature_extractor(device: torch.device):
    """The images -> (B, 2048) features callable, with ``protocol() -> dict`` (a seam the tests replace)."""
    from .inception import InceptionFeatureExtractor  # loads an 87 MB network: only when features are asked

    return InceptionFeatureExtractor(fast=True, device=device)


def chunk_generator(seed: int, start: int) -> torch.Generator:
    """The CPU generator of the chunk that begins at sample ``start``: independent streams per (seed, start)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, start]).generate_state(1)[0]))


def generated_images(model, n: int, seed: int, batch_size: int, temperature: float = 1.0) -> Iterator[Tensor]:
    """n images of ``model.sample`` in batches of ``batch_size`` (the last may be smaller): (B, C, H, W).

    ``temperature`` τ is passed to ``model.sample`` when it is not 1 (the same noise, tempered: the τ = 1 set is
    the untempered one bit for bit)."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got n={n}, batch_size={batch_size}")
    tempered = {} if temperature == 1.0 else {"temperature": temperature}
    pending: list[Tensor] = []
    have = 0
    for start in range(0, n, SAMPLE_CHUNK):
        pending.append(model.sample(min(SAMPLE_CHUNK, n - start), generator=chunk_generator(seed, start),
                                    **tempered))
        have += pending[-1].shape[0]
        while have >= batch_size:
            cat = torch.cat(pending)
            yield cat[:batch_size]
            rest = cat[batch_size:]
            pending, have = ([rest] if rest.shape[0] else []), rest.shape[0]
    if have:
        yield torch.cat(pending)


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [0, 1] -> uint8, rounded as the feature extractor rounds them (same features)."""
    return (images.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def images_sha1(images: Tensor) -> str:
    return hashlib.sha1(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@dataclass(frozen=True)
class FeatureSet:
    """Statistics of one side's features, and the raw (N, D) float32 features when they were kept."""

    stats: FeatureStatistics
    features: np.ndarray | None = None


def extract(images: Iterable[Tensor] | Tensor, extractor: Callable[[Tensor], Tensor], *, keep: bool = False,
            batch_size: int = 100, total: int | None = None, desc: str = "features",
            progress: bool = True) -> FeatureSet:
    """Features of image batches (B, C, H, W) — or of one (N, C, H, W) tensor, cut into ``batch_size`` — folded
    into streaming statistics; ``keep`` also returns the raw features (precision/recall and KID need them)."""
    if isinstance(images, Tensor):
        whole, total = images, images.shape[0]
        images = (whole[s:s + batch_size] for s in range(0, total, batch_size))
    kept: list[np.ndarray] = []

    def features() -> Iterator[Tensor]:
        for f in iterate_features(images, extractor, total=total, desc=desc, progress=progress):
            if keep:
                kept.append(f.numpy())
            yield f

    stats = feature_statistics(features())
    return FeatureSet(stats, np.concatenate(kept) if keep else None)


def reference_features(images: Tensor, extractor, *, dataset: str, split: str, keep: bool = False,
                       cache_dir=None, batch_size: int = 100, progress: bool = True,
                       data_sha1: str | None = None) -> FeatureSet:
    """:func:`extract` of reference ``images`` (N, C, H, W) uint8, from the cache when the key is there.

    The key covers everything that changes the features: dataset, split, the images' bytes (sha1, computed
    here unless the caller has it) and count, and the extractor's protocol (network, weights hash, resize).
    """
    key = _reference_key(images, extractor, dataset, split, data_sha1)
    cache = FeatureCache(cache_dir)
    hit = _cached(cache, key, keep)
    if hit is not None:
        return hit
    with cache.computing(key):  # a process computing the same key now finishes first; then its file is read
        hit = _cached(cache, key, keep)
        if hit is not None:
            return hit
        out = extract(images, extractor, keep=keep, batch_size=batch_size, desc="reference features",
                      progress=progress)
        cache.save_statistics(key, out.stats)
        if keep:
            cache.save_features(key, out.features)
    return out


def _reference_key(images: Tensor, extractor, dataset: str, split: str, data_sha1: str | None) -> dict:
    return {"dataset": dataset, "split": split, "data_sha1": data_sha1 or images_sha1(images),
            "count": images.shape[0]} | extractor.protocol()


def reference_cached(images: Tensor, extractor, *, dataset: str, split: str, keep: bool = False, cache_dir=None,
                     data_sha1: str | None = None) -> bool:
    """Whether :func:`reference_features` would read these features from the cache (no network pass)."""
    key = _reference_key(images, extractor, dataset, split, data_sha1)
    return _cached(FeatureCache(cache_dir), key, keep) is not None


def _cached(cache: FeatureCache, key: dict, keep: bool) -> FeatureSet | None:
    stats = cache.load_statistics(key)
    feats = cache.load_features(key) if keep else None
    return FeatureSet(stats, feats) if stats is not None and (feats is not None or not keep) else None
