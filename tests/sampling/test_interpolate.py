"""Tests for latentprior.sampling.interpolate: slerp/lerp paths, and interpolation in the latent or the flow's
base space through a stand-in autoencoder whose decoder shows the latent path itself."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from latentprior.priors import AffineCoupling, RealNVPPrior, StandardNormal
from latentprior.sampling import InterpolationError, interpolate, lerp, slerp

D = 4


def _endpoints(batch: int = 6, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, D, generator=g, dtype=torch.float64)
    b = torch.randn(batch, D, generator=g, dtype=torch.float64)
    return a, b


def test_slerp_keeps_the_endpoints_and_the_norm() -> None:
    a, b = _endpoints()
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)  # equal norms, different directions
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    path = slerp(a, b, t)  # (B, T, D)
    assert path.shape == (6, 9, D)
    torch.testing.assert_close(path[:, 0], a, atol=1e-12, rtol=0)
    torch.testing.assert_close(path[:, -1], b, atol=1e-12, rtol=0)
    torch.testing.assert_close(path.norm(dim=-1), a.norm(dim=-1, keepdim=True).expand(6, 9), atol=1e-12, rtol=1e-12)
    # and it is not the straight line, whose midpoint is shorter
    assert torch.all(lerp(a, b, t)[:, 4].norm(dim=-1) < path[:, 4].norm(dim=-1) - 1e-3)


def test_slerp_of_parallel_endpoints_is_the_straight_line() -> None:
    a, _ = _endpoints()
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    torch.testing.assert_close(slerp(a, 3 * a, t), lerp(a, 3 * a, t), atol=1e-6, rtol=1e-6)


class _StandIn(nn.Module):
    """encode: the first D pixels are the code; decode: the code tiled into an image, so images show paths."""

    def __init__(self, prior: nn.Module) -> None:
        super().__init__()
        self.prior = prior

    def encode(self, x: Tensor) -> tuple[Tensor, None]:
        return x.flatten(1)[:, :D], None

    def decode(self, z: Tensor) -> Tensor:
        return z[:, None, None, :].expand(-1, 1, D, D)  # (B, 1, D, D)


def _images(batch: int, seed: int) -> Tensor:
    return torch.rand(batch, 1, D, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_base_space_interpolation_maps_the_slerp_of_f_back_through_the_flow() -> None:
    torch.manual_seed(0)
    prior = RealNVPPrior(D, 2, 8).double()
    with torch.no_grad():
        for m in prior.modules():
            if isinstance(m, AffineCoupling):  # a fresh coupling ignores its input: make f non-trivial
                m.net[-1].weight.normal_(std=0.3)
    model = _StandIn(prior)
    xa, xb = _images(3, 1), _images(3, 2)
    imgs = interpolate(model, xa, xb, steps=5, space="base")  # (B, T, 1, D, D)
    za, zb = xa.flatten(1)[:, :D], xb.flatten(1)[:, :D]
    with torch.no_grad():
        u = slerp(prior.to_base(za)[0], prior.to_base(zb)[0], torch.linspace(0, 1, 5))
        expected = prior.from_base(u.flatten(0, 1))[0].view(3, 5, D).clamp(0, 1)
    # interpolate returns float32 images: compare at float32 resolution
    torch.testing.assert_close(imgs[:, :, 0, 0, :], expected.float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(imgs[:, 0, 0, 0, :], za.float(), atol=1e-6, rtol=0)  # the path starts at z_a ...
    z_path = interpolate(model, xa, xb, steps=5, space="z")[:, :, 0, 0, :]
    assert not torch.allclose(z_path, expected.float(), atol=1e-4)  # ... but is not the latent-space path


def test_base_space_needs_a_flow_prior() -> None:
    model = _StandIn(StandardNormal(D))
    with pytest.raises(InterpolationError, match="space='base' needs a flow prior; this run's prior is StandardNormal"):
        interpolate(model, _images(2, 1), _images(2, 2), space="base")
