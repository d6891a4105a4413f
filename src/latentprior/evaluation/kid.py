"""Kernel Inception Distance (Bińkowski et al., 2018): unbiased MMD² with a cubic polynomial kernel.

    k(x, y) = (xᵀy / D + 1)³
    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1)) - 2 Σ_{i,j} k(x_i, y_j) / m²

for two size-m sets. KID averages MMD²_u over ``subsets`` random subsets of ``subset_size`` from each side
(drawn without replacement within a subset, as torch-fidelity and the reference do), and reports the mean and
standard deviation across subsets. Unbiased: the expectation is exactly 0 when both sets come from one
distribution, so a single estimate can be slightly negative.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["kid", "mmd2_unbiased", "polynomial_kernel"]


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> Tensor:
    """(xᵀy / D + coef0)^degree for x (N, D), y (M, D) -> (N, M)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD² between x (m, D) and y (m, D) with :func:`polynomial_kernel`."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"need two sets of equal size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx = polynomial_kernel(x, x, degree, coef0)
    kyy = polynomial_kernel(y, y, degree, coef0)
    kxy = polynomial_kernel(x, y, degree, coef0)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, float]:
    """KID between features ``real`` (N, D) and ``fake`` (M, D): ``{"value": mean, "std": std, ...}``.

    ``subset_size`` is capped at min(N, M) (and the cap reported as ``subset_size``). When the cap takes the whole
    of both sets, the one exact estimate is returned with ``subsets: 1`` and ``std: None`` (no spread to report).
    Deterministic given ``seed``.
    """
    r = torch.as_tensor(np.asarray(real) if not isinstance(real, Tensor) else real).detach().to("cpu", dtype)
    f = torch.as_tensor(np.asarray(fake) if not isinstance(fake, Tensor) else fake).detach().to("cpu", dtype)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) features, got {tuple(r.shape)} and {tuple(f.shape)}")
    m = min(subset_size, r.shape[0], f.shape[0])
    if m == r.shape[0] == f.shape[0]:
        # Every "subset" would be the whole of both sets (MMD² is permutation-invariant): one estimate is the
        # exact answer, and repeating it would only report a misleading std of 0.
        subsets = 1
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for i in range(subsets):
        ir = torch.from_numpy(rng.choice(r.shape[0], m, replace=False))
        jf = torch.from_numpy(rng.choice(f.shape[0], m, replace=False))
        vals[i] = mmd2_unbiased(r[ir], f[jf])
    std = float(vals.std()) if subsets > 1 else None
    return {"value": float(vals.mean()), "std": std, "subsets": subsets, "subset_size": m}
