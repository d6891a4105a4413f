"""``conv4``: convolutional encoder/decoder bodies in the conv-4x4-stride-2 + BatchNorm + ReLU family.

This is the network of Ghosh et al. ("From Variational to Deterministic Autoencoders") and the WAE paper,
kept for users who want a wider, deeper net. It is not the paper's reference [5]: the paper's FID experiments
use the InfoGAN network (``infogan``, see :mod:`latentprior.nets.infogan`).

* encoder: x -> Conv128 -> Conv256 -> Conv512 -> Conv1024 (each 4x4, stride 2, BN, ReLU) -> flatten -> FC
* decoder: z -> FC to (1024, s, s) -> BN, ReLU -> ConvT512 -> ConvT256 [-> ConvT128 for 64x64]
  (each 4x4, stride 2, BN, ReLU) -> Conv to C channels (3x3, stride 1)

with s = 7 for 28x28 inputs and s = 8 for 32x32 and 64x64. At width 1 on 28x28 this is ~25M parameters and
about 30 times the compute per image of ``infogan``. ``width`` scales every channel count.
"""

from __future__ import annotations

from torch import Tensor, nn

from latentprior.nets.base import channels, check_size, output_layer

__all__ = ["ConvEncoder", "ConvDecoder"]

_BASE_CHANNELS = (128, 256, 512, 1024)

# image size -> (decoder start resolution, decoder up-sampling channels)
_PLANS = {28: (7, (512, 256)), 32: (8, (512, 256)), 64: (8, (512, 256, 128))}


class ConvEncoder(nn.Module):
    """x (B, C, H, W) in [0, 1] -> features (B, out_dim).

    ``out_dim`` is 2·D for a Gaussian encoder (mean and log-variance) and D for a deterministic one.
    """

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: float = 1.0) -> None:
        super().__init__()
        check_size(image_size)
        layers: list[nn.Module] = []
        c_in, size = in_channels, image_size
        for c in _BASE_CHANNELS:
            c_out = channels(c, width)
            # bias is redundant before BatchNorm
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            c_in, size = c_out, size // 2
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * size * size, out_dim)
        self.feature_shape = (c_in, size, size)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x)  # (B, C', s, s)
        return self.fc(h.flatten(1))


class ConvDecoder(nn.Module):
    """z (B, D) -> G(z) (B, C, H, W): sigmoid output in [0, 1], or linear."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, width: float = 1.0,
                 output: str = "sigmoid") -> None:
        super().__init__()
        start, ups = _PLANS[check_size(image_size)]
        c0 = channels(_BASE_CHANNELS[-1], width)
        self.start_shape = (c0, start, start)
        self.fc = nn.Linear(latent_dim, c0 * start * start, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(c0), nn.ReLU(True)]
        c_in = c0
        for c in ups:
            c_out = channels(c, width)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(True)]
            c_in = c_out
        layers += [nn.Conv2d(c_in, out_channels, 3, padding=1), output_layer(output)]
        self.body = nn.Sequential(*layers)
        assert start * 2 ** len(ups) == image_size, "decoder plan must reach the image size"

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start_shape)  # (B, C0, s, s)
        return self.body(h)
