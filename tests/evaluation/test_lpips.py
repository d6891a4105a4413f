"""LPIPS (Alex, VGG) and the VGG16 feature distance: zero on identical images, symmetric, clear weight errors.

Trunk weights come from ``../shared/weights`` (skipped on a machine without it); the linear heads from the
installed ``lpips`` package.
"""

from __future__ import annotations

import pytest
import torch

from latentprior.evaluation import LPIPS, VGGFeatureDistance, WeightsNotFound, trunk_weights_path


@pytest.fixture(scope="module")
def weights_dir(shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no ImageNet trunk weights")
    return shared_dir / "weights"


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    return x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1), torch.rand(3, 3, 32, 32, generator=g)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_zero_on_identical_symmetric_and_ordered(net, weights_dir, images):
    x, near, far = images
    lp = LPIPS(net, trunk_weights_path(net, weights_dir / f"{'alexnet' if net == 'alex' else 'vgg16'}"
                                                         "_features_imagenet.pth"))
    with torch.no_grad():
        assert lp(x, x).abs().max().item() < 1e-6
        d_xy, d_yx = lp(x, near), lp(near, x)
        torch.testing.assert_close(d_xy, d_yx, rtol=1e-5, atol=1e-6)
        assert d_xy.shape == (3,) and (d_xy > 0).all()
        assert (lp(x, far) > d_xy).all()  # more change, larger distance


def test_lpips_weights_from_env_and_clear_errors(weights_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("LATENTPRIOR_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsNotFound, match="LATENTPRIOR_WEIGHTS_DIR"):
        LPIPS("alex")
    with pytest.raises(WeightsNotFound, match="not found"):
        LPIPS("vgg", tmp_path / "missing.pth")
    monkeypatch.setenv("LATENTPRIOR_WEIGHTS_DIR", str(weights_dir))
    lp = LPIPS("alex", resize=64)
    gray = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert lp(gray, gray).abs().max().item() < 1e-6  # grayscale repeated, 28x28 upsampled
    with pytest.raises(ValueError, match="resize"):
        LPIPS("alex")(gray, gray)


def test_vgg_feature_distance_and_path_changes(weights_dir, images):
    x, near, far = images
    d = VGGFeatureDistance(weights_dir / "vgg16_features_imagenet.pth")
    with torch.no_grad():
        assert d(x, x).abs().max().item() < 1e-6
        torch.testing.assert_close(d(x, near), d(near, x), rtol=1e-5, atol=1e-7)
        assert (d(x, far) > d(x, near)).all()
        frames = torch.stack([x, near, far], dim=1)  # (P=3, T=3, C, H, W)
        changes = d.path_changes(frames)
    assert changes.shape == (3, 2)
    torch.testing.assert_close(changes[:, 0], d(x, near))
