"""The conditions y = c(x) of image-to-image models: the skeleton and the 7x7 downsampling."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from latentprior.data.conditions import CONDITIONS, downsample7, skeleton


def test_skeleton_matches_scipy_lantuejoul():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(6, 1, 28, 28, generator=g), 5, stride=1, padding=2) * 2.0
    got = skeleton(x)
    square = np.ones((3, 3), bool)
    for i in range(x.shape[0]):
        a, want = x[i, 0].numpy() > 0.5, np.zeros((28, 28), bool)
        while a.any():
            opened = ndi.binary_dilation(ndi.binary_erosion(a, square, border_value=0), square)
            want |= a & ~opened
            a = ndi.binary_erosion(a, square, border_value=0)
        assert want.sum() > 0
        assert np.array_equal(got[i, 0].numpy() > 0.5, want)


def test_downsample7_keeps_the_7x7_means_and_the_shape():
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    y = downsample7(x)
    assert y.shape == x.shape
    want = x.view(3, 1, 7, 4, 7, 4).mean((3, 5))
    torch.testing.assert_close(y[:, :, ::4, ::4], want)
    assert {"downsample7", "skeleton"} <= set(CONDITIONS)


