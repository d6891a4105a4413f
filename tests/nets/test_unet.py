"""The U-Net pair of conditional models."""

from __future__ import annotations

import torch

from latentprior.nets.unet import UNetDecoder, UNetEncoder

DIM, SIDE = 4, 8


def test_unet_pair_shapes_and_the_decoder_reads_z_and_y():
    enc, dec = UNetEncoder(1, 28, 2 * DIM, width=0.25), UNetDecoder(DIM, 1, 28, width=0.25)
    x, y = torch.rand(2, 2, 1, 28, 28)
    assert enc(torch.cat((x, y), 1)).shape == (2, 2 * DIM)
    z = torch.randn(2, DIM)
    out = dec(z, y)
    assert out.shape == (2, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert (dec(z + 1.0, y) - out).abs().max() > 1e-6
    assert (dec(z, x) - out).abs().max() > 1e-6


