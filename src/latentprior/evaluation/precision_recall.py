"""Improved precision and recall (Kynkäänniemi et al., 2019) on feature vectors.

Each set Φ approximates its manifold by the union of balls around its points, the radius of the ball at φ
being the distance to φ's k-th nearest neighbour in Φ (itself excluded; k = 3 in the paper):

    f(φ, Φ) = 1  if  ∃ φ' ∈ Φ : ||φ - φ'|| <= ||φ' - NN_k(φ', Φ)||,   else 0
    precision = mean_{φ_g ∈ Φ_g} f(φ_g, Φ_r)        recall = mean_{φ_r ∈ Φ_r} f(φ_r, Φ_g)

Distances are computed block by block (memory O(block · N)) on squared distances (monotone, no square root),
after centring both sets on the real set's mean: the expansion ||a||² + ||b||² - 2 a·b then loses less to
rounding, which matters for the "a point is inside its own twin's ball" case of identical sets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["knn_radii", "manifold_coverage", "precision_recall"]


def _as_tensor(x: Tensor | np.ndarray, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().to("cpu", dtype)


def _sq_dists(a: Tensor, b: Tensor, b_sq: Tensor) -> Tensor:
    """Squared Euclidean distances (A, B) from the expansion, clipped at 0 (rounding can go below)."""
    d = (a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * (a @ b.T)
    return d.clamp_(min=0.0)


def knn_radii(feats: Tensor, k: int = 3, block: int = 1024) -> Tensor:
    """Squared distance from each row of ``feats`` (N, D) to its k-th nearest other row: (N,)."""
    n = feats.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N-1] = [1, {n - 1}], got {k}")
    sq = (feats * feats).sum(1)
    out = torch.empty(n, dtype=feats.dtype)
    for s in range(0, n, block):
        d = _sq_dists(feats[s:s + block], feats, sq)
        # The (k+1)-th smallest includes the point itself at distance ~0.
        out[s:s + block] = d.kthvalue(k + 1, dim=1).values
    return out


def manifold_coverage(query: Tensor, ref: Tensor, ref_radii: Tensor, block: int = 1024) -> Tensor:
    """Boolean (Q,): whether each query row lies in a ball (ref[j], squared radius ref_radii[j])."""
    sq = (ref * ref).sum(1)
    out = torch.empty(query.shape[0], dtype=torch.bool)
    for s in range(0, query.shape[0], block):
        d = _sq_dists(query[s:s + block], ref, sq)
        out[s:s + block] = (d <= ref_radii[None, :]).any(1)
    return out


def precision_recall(
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    k: int = 3,
    *,
    block: int = 1024,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Improved precision and recall of ``fake`` (M, D) against ``real`` (N, D) features.

    Returns ``{"precision": P, "recall": R}``, each in [0, 1]. Cost O(N·M·D) time, O(block·max(N, M)) memory.
    """
    r = _as_tensor(real, torch.float64)
    f = _as_tensor(fake, torch.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) features, got {tuple(r.shape)} and {tuple(f.shape)}")
    centre = r.mean(0)
    r, f = (r - centre).to(dtype), (f - centre).to(dtype)
    r_radii = knn_radii(r, k, block)
    f_radii = knn_radii(f, k, block)
    precision = manifold_coverage(f, r, r_radii, block).double().mean().item()
    recall = manifold_coverage(r, f, f_radii, block).double().mean().item()
    return {"precision": precision, "recall": recall}
