"""The VGG perceptual reconstruction term (appendix B.1): its taps, its value and gradient, its place in
log p(x|z), its absence from checkpoints, and the one-line errors for a missing or wrong weights file.

Uses the VGG16 trunk in ``../shared/weights`` (the named substitute for VGG19; skipped without it).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentprior.config import config_from_dict
from latentprior.errors import UserError
from latentprior.models import PerceptualLoss, build_model
from latentprior.nets.vgg import WeightsMismatch, WeightsNotFound, load_vgg_features, tap_index, vgg_features


@pytest.fixture(scope="module")
def vgg16_file(shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no ImageNet VGG16 weights")
    return shared_dir / "weights" / "vgg16_features_imagenet.pth"


@pytest.fixture(scope="module")
def loss(vgg16_file):
    return PerceptualLoss("vgg16", vgg16_file).double()


def _images(n=2, c=3, s=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, s, s, generator=g, dtype=torch.float64)


def test_tap_names_are_the_first_relu_of_blocks_1_to_4():
    # torchvision's vgg16().features: relu1_1 = [1], relu2_1 = [6], relu3_1 = [11], relu4_1 = [18]; VGG19 has a
    # fourth conv in block 3, so its relu4_1 is [20].
    assert [tap_index("vgg16", f"relu{b}_1") for b in (1, 2, 3, 4)] == [1, 6, 11, 18]
    assert [tap_index("vgg19", f"relu{b}_1") for b in (1, 2, 3, 4)] == [1, 6, 11, 20]
    for net in ("vgg16", "vgg19"):
        trunk = vgg_features(net)
        for b, (c_in, c_out) in enumerate([(3, 64), (64, 128), (128, 256), (256, 512)], start=1):
            i = tap_index(net, f"relu{b}_1")
            assert isinstance(trunk[i], nn.ReLU)
            conv = trunk[i - 1]  # the block's first conv: its input is the previous block's width
            assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
    assert len(vgg_features("vgg19", until="relu4_1")) == 21


def test_taps_match_slices_of_the_full_trunk_run_by_hand(loss, vgg16_file):
    full = load_vgg_features("vgg16", vgg16_file).double()  # the whole trunk, not truncated
    x = _images(c=1)
    h = (x.expand(-1, 3, -1, -1) - loss.shift) / loss.scale  # ImageNet normalisation, gray -> RGB
    by_hand = [full[:2](h), full[:7](h), full[:12](h), full[:19](h)]
    got = loss.features(x)
    assert [f.shape[1:] for f in got] == [(64, 28, 28), (128, 14, 14), (256, 7, 7), (512, 3, 3)]
    for a, b in zip(got, by_hand, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_value_zero_on_identical_images_and_the_sum_of_squares_otherwise(loss):
    x, y = _images(seed=0), _images(seed=1)
    assert torch.equal(loss(x, x), torch.zeros(2, dtype=torch.float64))
    pairs = zip(loss.features(x), loss.features(y), strict=True)
    expected = sum(0.5 * (a - b).pow(2).sum((1, 2, 3)) for a, b in pairs)
    torch.testing.assert_close(loss(x, y), expected)
    assert (loss(x, y) > 0).all()


def test_gradient_matches_a_finite_difference(loss):
    x = _images(seed=0)
    g = _images(seed=1).requires_grad_(True)
    loss(x, g).sum().backward()
    v = torch.randn(g.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = 1e-7  # ReLU and max-pool kinks lie within ~1e-6 of random inputs: larger steps cross them
    with torch.no_grad():
        numeric = (loss(x, g + eps * v).sum() - loss(x, g - eps * v).sum()) / (2 * eps)
    assert g.grad.abs().sum() > 0
    assert (g.grad * v).sum().item() == pytest.approx(numeric.item(), rel=1e-6)


def _cfg(**model):
    return config_from_dict({"data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.125},
                             "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
                             "model": {"latent_dim": 4, "perceptual_net": "vgg16", **model}})


def test_log_px_combines_pixel_and_perceptual_terms_and_checkpoints_skip_the_trunk(vgg16_file):
    torch.manual_seed(0)
    both = build_model(_cfg(reconstruction="pixel+perceptual", perceptual_weight=0.5,
                            perceptual_weights=str(vgg16_file)), (1, 28, 28)).double()
    only = build_model(_cfg(reconstruction="perceptual", perceptual_weight=0.5, perceptual_weights=str(vgg16_file)),
                       (1, 28, 28)).double()
    x, g = _images(c=1, seed=0), _images(c=1, seed=1)
    p = both.perceptual(x, g)
    torch.testing.assert_close(both.log_px_given_z(x, g), both.variance.log_density(x, g) - 0.5 * p)
    torch.testing.assert_close(only.log_px_given_z(x, g), -0.5 * p)

    state = both.state_dict()
    assert not [k for k in state if "trunk" in k]  # ImageNet weights come from the file, not the checkpoint
    fresh = build_model(_cfg(reconstruction="pixel+perceptual", perceptual_weight=0.5,
                             perceptual_weights=str(vgg16_file)), (1, 28, 28)).double()
    fresh.load_state_dict(state)  # strict
    torch.testing.assert_close(fresh.perceptual(x, g), p)


def test_missing_or_wrong_weights_give_one_line_errors(monkeypatch, tmp_path, vgg16_file):
    monkeypatch.delenv("LATENTPRIOR_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsNotFound) as e:
        build_model(_cfg(reconstruction="perceptual"), (1, 28, 28))
    msg = str(e.value)
    assert isinstance(e.value, UserError) and "\n" not in msg
    assert "model.perceptual_weights" in msg and "LATENTPRIOR_WEIGHTS_DIR" in msg and "vgg16_features" in msg
    monkeypatch.setenv("LATENTPRIOR_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFound, match=f"not found: {tmp_path}/vgg16_features_imagenet.pth"):
        build_model(_cfg(reconstruction="perceptual"), (1, 28, 28))
    with pytest.raises(WeightsMismatch, match=r"is not a torchvision vgg19\(\)\.features state dict") as e:
        PerceptualLoss("vgg19", vgg16_file)
    assert "\n" not in str(e.value)
