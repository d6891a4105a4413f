"""Stage 3 of FID: two Gaussians (mean, covariance) -> their Fréchet (2-Wasserstein²) distance.

    d² = ||μ₁ - μ₂||² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁ Σ₂)^{1/2}

The trace of the matrix square root is computed without ``scipy.linalg.sqrtm`` of the non-symmetric product:
Σ₁Σ₂ has the same eigenvalues as the symmetric PSD matrix S Σ₂ S with S = Σ₁^{1/2} (similar matrices when Σ₁
is invertible; equal non-zero spectra in general), so tr (Σ₁Σ₂)^{1/2} = Σᵢ sqrt(λᵢ(S Σ₂ S)). Two symmetric
eigendecompositions are faster than ``sqrtm`` at D = 2048, never return a complex result, and agree with the
pytorch-fid / TTUR formula to ~1e-6 on Inception features (tested against pytorch-fid's own function).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .statistics import FeatureStatistics

__all__ = ["frechet_distance", "fid_from_statistics", "sqrtm_psd"]


def sqrtm_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (D, D); negative rounding eigenvalues clip to 0."""
    w, v = linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); means (D,), covariances (D, D). float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    s1 = sqrtm_psd(0.5 * (sigma1 + sigma1.T))
    m = s1 @ (0.5 * (sigma2 + sigma2.T)) @ s1
    eig = linalg.eigvalsh(0.5 * (m + m.T))
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_from_statistics(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """FID between two sets of feature statistics."""
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
