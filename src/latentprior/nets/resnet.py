"""``resnet``: Dai & Wipf's ResNet encoder/decoder (Two-Stage VAE) at depth 4, as appendix B uses it.

Residual block at c channels: y = conv(ReLU(BN(conv(ReLU(BN(x)))))) + conv(x), every conv 3x3 "same" with
a bias (the shortcut is a convolution too, as in their code). With b = 16 and f = 512 (times ``width``):

* encoder: Conv b -> 4 scales at b, 2b, 4b, 8b channels, each one residual block, a stride-2 conv (3x3)
  between scales -> mean over H, W -> fully connected residual block to f
  (y = L2(ReLU(L1(ReLU(h)))) + L3(h)) -> FC out_dim
* decoder: FC to (d0, 2, 2) -> per scale: ConvT (3x3, stride 2) to the next resolution, one residual block
  -> Conv C (3x3) -> sigmoid. Channels double from b at full resolution towards the 2x2 start (capped at
  1024·width): 256-128-64-32-16 for 28 and 32, 512-256-128-64-32-16 for 64.

Their decoder doubles 2 -> 4 -> ... and so needs a power of two; for 28x28 the resolutions here are the
encoder's in reverse, 2 -> 4 -> 7 -> 14 -> 28 (``output_padding`` 1, 0, 1, 1).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from latentprior.nets.base import channels, check_size, output_layer

__all__ = ["ResNetEncoder", "ResNetDecoder", "DEPTH"]

DEPTH = 4  # encoder scales (their num_scale; appendix B: "a depth of 4")


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


class _ResBlock(nn.Module):
    """(B, c, H, W) -> (B, c, H, W): pre-activation residual block with a convolutional shortcut."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), _conv(c, c), nn.BatchNorm2d(c), nn.ReLU(), _conv(c, c))
        self.shortcut = _conv(c, c)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class _ResFC(nn.Module):
    """(B, n) -> (B, f): the fully connected residual block of the encoder (no BatchNorm, as theirs)."""

    def __init__(self, n: int, f: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(n, f), nn.ReLU(), nn.Linear(f, f))
        self.shortcut = nn.Linear(n, f)

    def forward(self, h: Tensor) -> Tensor:
        return self.body(h) + self.shortcut(h)


class ResNetEncoder(nn.Module):
    """x (B, C, H, W) in [0, 1] -> features (B, out_dim); out_dim is 2·D (Gaussian) or D (deterministic)."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: float = 1.0) -> None:
        super().__init__()
        check_size(image_size)
        dims = [channels(16 * 2**i, width) for i in range(DEPTH)]
        layers: list[nn.Module] = [_conv(in_channels, dims[0])]
        for i, c in enumerate(dims):
            layers.append(_ResBlock(c))
            if i + 1 < DEPTH:
                layers.append(_conv(c, dims[i + 1], stride=2))  # 28 -> 14 -> 7 -> 4; 32 -> 4; 64 -> 8
        self.body = nn.Sequential(*layers)
        f = channels(512, width)
        self.fc = nn.Sequential(_ResFC(dims[-1], f), nn.Linear(f, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x).mean((2, 3))  # (B, 8b)
        return self.fc(h)


def decoder_resolutions(image_size: int) -> list[int]:
    """2, ..., image_size: the encoder's stride-2 resolutions (rounded up) in reverse, e.g. [2, 4, 7, 14, 28]."""
    sizes = [check_size(image_size)]
    while sizes[-1] > 2:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes[::-1]


class ResNetDecoder(nn.Module):
    """z (B, D) -> G(z) (B, C, H, W): sigmoid output in [0, 1], or linear."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, width: float = 1.0,
                 output: str = "sigmoid") -> None:
        super().__init__()
        sizes = decoder_resolutions(image_size)
        cap = channels(1024, width)
        dims = [min(channels(16 * 2**j, width), cap) for j in range(len(sizes))][::-1]  # (B, dims[i], sizes[i])
        self.start_shape = (dims[0], sizes[0], sizes[0])
        self.fc = nn.Linear(latent_dim, dims[0] * sizes[0] ** 2)
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            # A stride-2 transposed conv with padding 1 gives 2·r - 1 + output_padding pixels.
            pad = sizes[i + 1] - (2 * sizes[i] - 1)
            layers += [nn.ConvTranspose2d(dims[i], dims[i + 1], 3, stride=2, padding=1, output_padding=pad),
                       _ResBlock(dims[i + 1])]
        layers += [_conv(dims[-1], out_channels), output_layer(output)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start_shape)  # (B, d0, 2, 2)
        return self.body(h)
