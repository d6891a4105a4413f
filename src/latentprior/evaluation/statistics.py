"""Stage 2 of FID: features -> (mean, covariance), streaming, in float64.

Memory is O(D²) whatever the number of samples: batches are folded into a running sum and a running sum of
outer products about a fixed shift (the first batch's mean). Shifting keeps ``Σ x xᵀ - n μ μᵀ`` from
cancelling catastrophically when the mean is large relative to the spread (Inception pool features are all
positive), and float64 accumulation makes the result independent of how the samples were batched to ~1e-12.

    cov = (Σ (x - s)(x - s)ᵀ - n (μ - s)(μ - s)ᵀ) / (n - 1),   μ = s + Σ (x - s) / n
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["FeatureStatistics", "StreamingMoments", "feature_statistics", "iterate_features"]


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean ``mu`` (D,) and unbiased covariance ``sigma`` (D, D), float64, of ``n`` feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


class StreamingMoments:
    """Accumulates mean and covariance of (B, D) batches; :meth:`result` gives :class:`FeatureStatistics`."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._shift: Tensor | None = None
        self._sum = torch.zeros(dim, dtype=torch.float64)
        self._outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, feats: Tensor | np.ndarray) -> None:
        x = torch.as_tensor(feats).detach().to("cpu", torch.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features (B, {self.dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x.mean(0)
        d = x - self._shift
        self._sum += d.sum(0)
        self._outer.addmm_(d.T, d)
        self.n += x.shape[0]

    def result(self) -> FeatureStatistics:
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.n}")
        assert self._shift is not None
        dm = self._sum / self.n  # mean offset from the shift, (D,)
        cov = (self._outer - self.n * torch.outer(dm, dm)) / (self.n - 1)
        cov = 0.5 * (cov + cov.T)  # exact symmetry for the eigendecompositions downstream
        return FeatureStatistics(mu=(self._shift + dm).numpy(), sigma=cov.numpy(), n=self.n)


def iterate_features(
    batches: Iterable[Tensor],
    extractor: Callable[[Tensor], Tensor],
    *,
    total: int | None = None,
    desc: str = "features",
    progress: bool = True,
) -> Iterable[Tensor]:
    """Yield ``extractor(batch)`` (B, D) for each image batch, with a progress bar counted in images."""
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False)
    try:
        for batch in batches:
            feats = extractor(batch)
            bar.update(batch.shape[0])
            yield feats
    finally:
        bar.close()


def feature_statistics(feature_batches: Iterable[Tensor | np.ndarray],
                       dim: int | None = None) -> FeatureStatistics:
    """Mean and covariance of a stream of (B, D) feature batches (or one (N, D) array)."""
    if isinstance(feature_batches, Tensor | np.ndarray):
        feature_batches = [feature_batches]
    acc: StreamingMoments | None = StreamingMoments(dim) if dim is not None else None
    for f in feature_batches:
        if acc is None:
            acc = StreamingMoments(int(f.shape[1]))
        acc.update(f)
    if acc is None:
        raise ValueError("no features")
    return acc.result()
