"""Every arch at every size: shapes, the documented parameter counts (hand arithmetic), width, spectral norm."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from latentprior.config import load_config
from latentprior.models import build_model
from latentprior.nets import ARCHS, build_decoder, build_encoder, count_parameters
from latentprior.nets.spectral_norm import SpectralNormConv2d, SpectralNormLinear

# The image-to-image pair (unet) takes a condition too; tests/test_conditional.py covers its shapes.
PLAIN = [name for name, arch in ARCHS.items() if not arch.conditional]

ROOT = Path(__file__).resolve().parents[2]
CASES = [(c, s) for c in (1, 3) for s in (28, 32, 64)]
D = 64  # the paper's latent dimension


def _bn(c: int) -> int:
    return 2 * c  # BatchNorm: scale and shift per channel (running statistics are buffers)


def _infogan(c: int, s: int, d: int) -> tuple[int, int]:
    """Encoder and decoder parameters of ``infogan`` at width 1; layers followed by BN have no bias."""
    k = s // 4  # 7, 8, 16: the map size after two stride-2 convs
    enc = ((c * 64 * 4 * 4 + 64)  # conv 64, 4x4, bias
           + (64 * 128 * 4 * 4) + _bn(128)  # conv 128, 4x4, BN
           + (128 * k * k * 1024) + _bn(1024)  # FC 1024, BN
           + (1024 * 2 * d + 2 * d))  # FC 2D
    dec = ((d * 1024) + _bn(1024)  # FC 1024, BN
           + (1024 * 128 * k * k) + _bn(128 * k * k)  # FC 128·k², BN per feature
           + (128 * 64 * 4 * 4) + _bn(64)  # convT 64, 4x4, BN
           + (64 * c * 4 * 4 + c))  # convT C, 4x4, bias
    return enc, dec


def _conv4(c: int, s: int, d: int) -> tuple[int, int]:
    """``conv4`` at width 1: four bias-free 4x4 convs with BN, an FC; the decoder starts at t x t."""
    f = {28: 1, 32: 2, 64: 4}[s]  # 28 -> 14 -> 7 -> 3 -> 1; 32 -> 2; 64 -> 4
    enc = (c * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 1024 * 16 + _bn(128 + 256 + 512 + 1024)
           + 1024 * f * f * 2 * d + 2 * d)
    t = {28: 7, 32: 8, 64: 8}[s]
    ups = {28: [1024, 512, 256], 32: [1024, 512, 256], 64: [1024, 512, 256, 128]}[s]
    dec = d * 1024 * t * t + _bn(1024)  # FC without bias, BN
    dec += sum(a * b * 16 + _bn(b) for a, b in itertools.pairwise(ups))  # bias-free convT 4x4 + BN
    dec += ups[-1] * c * 9 + c  # conv 3x3 to C
    return enc, dec


def _res_block(ch: int) -> int:
    return 2 * _bn(ch) + 3 * (ch * ch * 9 + ch)  # BN, conv 3x3, BN, conv 3x3, shortcut conv 3x3 (biases)


def _resnet(c: int, s: int, d: int) -> tuple[int, int]:
    """``resnet`` (depth 4, base 16, FC 512) at width 1."""
    dims = [16, 32, 64, 128]
    enc = (c * 16 * 9 + 16) + sum(_res_block(x) for x in dims)
    enc += sum(a * b * 9 + b for a, b in itertools.pairwise(dims))  # stride-2 convs between scales
    enc += (128 * 512 + 512) + (512 * 512 + 512) + (128 * 512 + 512)  # FC residual block (two layers + shortcut)
    enc += 512 * 2 * d + 2 * d
    up = {28: [256, 128, 64, 32, 16], 32: [256, 128, 64, 32, 16], 64: [512, 256, 128, 64, 32, 16]}[s]
    dec = d * up[0] * 2 * 2 + up[0] * 2 * 2  # FC to (d0, 2, 2)
    dec += sum(a * b * 9 + b + _res_block(b) for a, b in itertools.pairwise(up))  # convT 3x3 stride 2, block
    dec += up[-1] * c * 9 + c
    return enc, dec


EXPECTED = {"infogan": _infogan, "conv4": _conv4, "resnet": _resnet}


def test_every_arch_has_a_count():
    assert set(EXPECTED) == set(PLAIN) and set(PLAIN) | {"unet"} == set(ARCHS)


@pytest.mark.parametrize("arch", PLAIN)
@pytest.mark.parametrize("c,s", CASES)
def test_parameter_counts_match_the_hand_arithmetic(arch, c, s):
    with torch.device("meta"):  # no memory, no init time: only the count matters
        enc = build_encoder(arch, c, s, 2 * D)
        dec = build_decoder(arch, D, c, s)
    assert (count_parameters(enc), count_parameters(dec)) == EXPECTED[arch](c, s, D)


def test_documented_mnist_totals():
    """The numbers quoted in the docs: MNIST (1, 28, 28), D = 64, width 1."""
    assert sum(_infogan(1, 28, 64)) == 13_323_073
    assert sum(_conv4(1, 28, 64)) == 24_850_049
    assert sum(_resnet(1, 28, 64)) == 2_194_593


@pytest.mark.parametrize("arch", PLAIN)
@pytest.mark.parametrize("c,s", CASES)
def test_shapes(arch, c, s):
    enc = build_encoder(arch, c, s, out_dim=2 * 16, width=0.125)
    dec = build_decoder(arch, 16, c, s, width=0.125)
    x = torch.rand(3, c, s, s)
    h = enc(x)
    assert h.shape == (3, 32)
    g = dec(h[:, :16])
    assert g.shape == x.shape and g.min() >= 0 and g.max() <= 1  # sigmoid output
    assert build_decoder(arch, 16, c, s, width=0.125, output="linear")(h[:, :16]).shape == x.shape


@pytest.mark.parametrize("arch", PLAIN)
def test_width_scales_every_arch(arch):
    with torch.device("meta"):
        full = count_parameters(build_encoder(arch, 3, 32, 2 * D)) + count_parameters(build_decoder(arch, D, 3, 32))
        half = (count_parameters(build_encoder(arch, 3, 32, 2 * D, width=0.5))
                + count_parameters(build_decoder(arch, D, 3, 32, width=0.5)))
    assert half < 0.35 * full  # the hidden layers' parameters go as width² (heads as width)


def test_unsupported_size_and_arch_are_refused():
    with pytest.raises(ValueError, match=r"image size 48 is not supported; supported sizes: \[28, 32, 64\]"):
        build_encoder("infogan", 1, 48, 8)
    with pytest.raises(ValueError, match=r"unknown net arch 'vgg'; known: \['infogan', 'conv4', 'resnet', 'unet'\]"):
        build_decoder("vgg", 8, 1, 28)


def _normalised(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, SpectralNormConv2d | SpectralNormLinear)]


def test_spectral_norm_defaults_and_effect():
    torch.manual_seed(0)
    enc = build_encoder("infogan", 1, 28, 2 * D, width=0.25)
    layers = [m for m in enc.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert _normalised(enc) == layers and len(layers) == 4  # infogan: every encoder layer (Dai & Wipf)
    assert not _normalised(build_encoder("infogan", 1, 28, 2 * D, width=0.125, spectral_norm=False))
    assert not _normalised(build_encoder("conv4", 1, 28, 2 * D, width=0.125))
    assert _normalised(build_encoder("resnet", 1, 28, 2 * D, width=0.125, spectral_norm=True))
    head = layers[-1]
    with torch.no_grad():
        head.weight.mul_(5.0)  # default init has norm ~1: make the effect visible
    for _ in range(5):  # power iterations, one per training forward
        enc.train()(torch.rand(4, 1, 28, 28))
    assert torch.linalg.matrix_norm(head.weight.detach(), 2).item() > 4.0
    assert torch.linalg.matrix_norm(head.normalised_weight().detach(), 2).item() == pytest.approx(1.0, abs=1e-2)


def test_paper_configs_use_infogan_and_mnist_sizes():
    """Paper MNIST: the 13.3M-parameter InfoGAN autoencoder plus a ~27M-parameter 24-layer, width-1024 flow."""
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.stem.split("_")[0] in ("mnist", "fashion", "cifar10", "celeba") and "2d" not in path.stem:
            assert load_config(path).net.arch == "infogan", path.name
    with torch.device("meta"):
        model = build_model(load_config(ROOT / "configs" / "mnist_vae_flow.yaml"), (1, 28, 28))
    assert count_parameters(model.encoder) + count_parameters(model.decoder) == 13_323_073
    assert 26e6 < count_parameters(model.prior) < 28e6
    assert len(model.prior.transforms) == 24 + 12  # 24 couplings, an affine before every second one
