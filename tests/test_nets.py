"""Encoder/decoder shapes for every supported size, and the paper-size parameter counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentprior.config import load_config
from latentprior.models import build_model
from latentprior.nets import ConvDecoder, ConvEncoder, count_parameters

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (3, 64)])
@pytest.mark.parametrize("width", [0.0625, 0.25])
def test_shapes(channels, size, width):
    enc = ConvEncoder(channels, size, out_dim=2 * 16, width=width)
    dec = ConvDecoder(16, channels, size, width=width)
    x = torch.rand(3, channels, size, size)
    h = enc(x)
    assert h.shape == (3, 32)
    g = dec(h[:, :16])
    assert g.shape == x.shape and g.min() >= 0 and g.max() <= 1  # sigmoid output


def test_unsupported_size_is_refused():
    with pytest.raises(ValueError, match=r"image size 48 is not supported; supported sizes: \[28, 32, 64\]"):
        ConvEncoder(1, 48, 8)


def test_paper_mnist_sizes():
    """Paper MNIST: ~25M-parameter conv autoencoder plus a ~27M-parameter 24-layer, width-1024 flow."""
    with torch.device("meta"):  # no memory, no init time: only the parameter count matters
        model = build_model(load_config(ROOT / "configs" / "mnist_vae_flow.yaml"), (1, 28, 28))
    ae = count_parameters(model.encoder) + count_parameters(model.decoder)
    flow = count_parameters(model.prior)
    assert 24e6 < ae < 26.5e6, ae
    assert 26e6 < flow < 28e6, flow
    assert len(model.prior.transforms) == 24 + 12  # 24 couplings, an affine before every second one
