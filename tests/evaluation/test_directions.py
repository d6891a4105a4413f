"""Attribute directions, direction paths in Z_T and Z_0, PCA traversals and the rate of change along a path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentprior.evaluation.directions import (
    RateOfChange,
    attribute_direction,
    direction_path,
    first_component,
    pca_traversal,
    rate_of_change,
)
from latentprior.priors import build_prior


def test_attribute_direction_equals_the_known_direction():
    g = torch.Generator().manual_seed(0)
    n, d = 4000, 6
    attr = torch.rand(n, generator=g) < 0.1  # imbalanced, as the paper's case
    known = torch.tensor([1.5, -2.0, 0.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    z = torch.randn(n, d, generator=g, dtype=torch.float64) * 0.01 + attr[:, None] * known
    direction = attribute_direction(z, attr)
    assert torch.allclose(direction, known, atol=2e-3)
    exact = z[attr].mean(0) - z[~attr].mean(0)
    assert torch.equal(direction, exact)
    with pytest.raises(ValueError, match="both with and without"):
        attribute_direction(z, torch.ones(n, dtype=torch.bool))


def _flow(dim: int = 4):
    torch.manual_seed(0)
    prior = build_prior("realnvp", dim, layers=4, hidden=16, noise_dim=None).double()
    with torch.no_grad():  # a fresh coupling is a trivial map: randomise it so Z_0 differs from Z_T
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return prior


def test_direction_path_endpoints_in_both_spaces():
    prior = _flow()
    z = torch.randn(3, 4, dtype=torch.float64)
    d = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)
    for space in ("z", "base"):
        path = direction_path(prior, z, d, steps=5, space=space)  # (3, 5, 4)
        assert path.shape == (3, 5, 4)
        assert torch.allclose(path[:, 0], z, atol=1e-6)
        assert torch.allclose(path[:, -1], z + d, atol=1e-6)
    lin = direction_path(prior, z, d, steps=5, space="z")
    assert torch.allclose(lin[:, 1:] - lin[:, :-1], (d / 4).expand(3, 4, 4))  # Z_T: equal steps
    curved = direction_path(prior, z, d, steps=5, space="base")
    assert (curved[:, 2] - lin[:, 2]).abs().max() > 1e-2  # Z_0: f⁻¹ of a slerp, not the straight line


def test_pca_traversal_moves_only_the_first_component():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    codes = torch.randn(5000, 1, generator=g, dtype=torch.float64) * 3.0 * axis \
        + torch.randn(5000, 3, generator=g, dtype=torch.float64) * 0.1
    mu, v, sd = first_component(codes)
    assert abs(abs(v @ axis) - 1) < 1e-3 and sd == pytest.approx(3.0, rel=0.05)
    z = codes[:2]
    out = pca_traversal(z, codes, torch.tensor([-1.5, 0.0, 1.5], dtype=torch.float64))  # (2, 3, 3)
    coord = (out - mu) @ v
    assert torch.allclose(coord, torch.tensor([-1.5, 0.0, 1.5], dtype=torch.float64).expand(2, 3) * sd)
    rest = (out - mu) - coord[..., None] * v
    assert torch.allclose(rest, ((z - mu) - ((z - mu) @ v)[:, None] * v)[:, None].expand(2, 3, 3))


class _Linear(torch.nn.Module):
    """A decoder-only model: images are the codes' first coordinate broadcast to a 1x2x2 image."""

    def __init__(self, prior) -> None:
        super().__init__()
        self.prior, self.w = prior, torch.nn.Parameter(torch.ones(1, dtype=torch.float64))

    def decode(self, z):
        return (z[:, :1] * self.w).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


class _AbsChange:
    def path_changes(self, frames):  # (P, T, C, H, W) -> (P, T-1)
        return (frames[:, 1:] - frames[:, :-1]).abs().flatten(2).mean(-1)


def test_rate_of_change_is_constant_along_a_straight_path_in_z():
    model = _Linear(_flow())
    codes = torch.zeros(10, 4, dtype=torch.float64)
    d = torch.tensor([0.15, 0.0, 0.0, 0.0], dtype=torch.float64)  # images stay inside [0, 1]
    r = rate_of_change(model, codes, d, _AbsChange(), space="z", steps=16, batch_size=4)
    assert r.changes.shape == (10, 15)
    assert np.allclose(r.changes, 0.01)
    assert r.flatness() == pytest.approx(1.0, rel=1e-5)  # decoded in float32
    rb = rate_of_change(model, codes + 0.3, d, _AbsChange(), space="base", steps=16)
    assert rb.changes.shape == (10, 15) and not np.allclose(rb.changes, rb.changes[:, :1])


def test_rate_of_change_summary_percentiles():
    changes = np.tile(np.arange(100.0)[:, None], (1, 3))  # 100 sequences, 3 steps
    r = RateOfChange(changes)
    assert np.allclose(r.median, 49.5) and np.allclose(r.p5, 4.95) and np.allclose(r.p95, 94.05)
    assert math.isclose(RateOfChange(np.array([[1.0, 2.0, 4.0]])).flatness(), 4.0)


