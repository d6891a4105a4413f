"""``unet``: the conditional nets of an image-to-image model, after the Variational U-Net (Esser et al. 2018).

* :class:`UNetEncoder` q(z | x, y): a conv net over the channel concatenation [x, y] (B, 2C, H, W) ->
  (B, out_dim); one tensor in, as every encoder of the library takes.
* :class:`UNetDecoder` p(x | y, z): a U-Net over the condition y; z enters at the bottleneck (a linear map
  to one extra feature map there), and skip connections carry y at every resolution to the output.

The skips are the point: the decoder can rebuild much of x from y alone, which is how a KL-regularised model
learns to ignore z (the Variational U-Net's loss of diversity that the flow prior is meant to fix).

Every conv is followed by a per-example normalisation (GroupNorm with one group: no batch statistics) and an
ELU (as the Variational U-Net). Without them these narrow nets could collapse to a constant output: ReLUs died,
and an unregularised code of large norm saturated the decoder's sigmoid.
Channels per level: (32, 64, 128, 128) x ``width``; 28x28 and 32x32 images go down twice (to 7x7, 8x8),
64x64 three times (to 8x8). At width 0.5 on 28x28 the pair has ~0.4M parameters: a CPU-sized model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentprior.nets.base import channels, check_size, output_layer

__all__ = ["UNetEncoder", "UNetDecoder", "unet_levels"]

_BASE_CHANNELS = (32, 64, 128, 128)


def unet_levels(image_size: int) -> int:
    """Stride-2 downsamplings from ``image_size`` to the bottleneck (7x7 or 8x8)."""
    return 3 if check_size(image_size) == 64 else 2


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(1, c_out), nn.ELU())


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.ELU(),
                         _conv(c_out, c_out))


class UNetEncoder(nn.Module):
    """q(z | x, y): [x, y] (B, 2C, H, W), C = ``in_channels`` -> (B, out_dim), 2·D for a Gaussian encoder."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: float = 1.0) -> None:
        super().__init__()
        levels = unet_levels(image_size)
        chs = [channels(c, width) for c in _BASE_CHANNELS[:levels + 1]]
        layers: list[nn.Module] = [_conv(2 * in_channels, chs[0])]  # x and y side by side
        layers += [_down(chs[i], chs[i + 1]) for i in range(levels)]
        side = image_size // 2 ** levels
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(chs[-1] * side * side, out_dim))

    def forward(self, xy: Tensor) -> Tensor:
        return self.net(xy)  # (B, out_dim)


class UNetDecoder(nn.Module):
    """p(x | y, z): z (B, D), y (B, C, H, W) -> decoder mean G(z, y) (B, C, H, W)."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, width: float = 1.0,
                 output: str = "sigmoid") -> None:
        super().__init__()
        levels = unet_levels(image_size)
        chs = [channels(c, width) for c in _BASE_CHANNELS[:levels + 1]]
        self.side = image_size // 2 ** levels
        self.bottleneck = chs[-1]
        self.inp = _conv(out_channels, chs[0])
        self.down = nn.ModuleList(_down(chs[i], chs[i + 1]) for i in range(levels))
        self.z_in = nn.Linear(latent_dim, chs[-1] * self.side * self.side)
        self.mid = nn.Sequential(_conv(2 * chs[-1], chs[-1]), _conv(chs[-1], chs[-1]))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(chs[i + 1], chs[i], 4, stride=2, padding=1), nn.GroupNorm(1, chs[i]),
                          nn.ELU())
            for i in reversed(range(levels))
        )
        self.merge = nn.ModuleList(_conv(2 * chs[i], chs[i]) for i in reversed(range(levels)))
        self.out = nn.Sequential(nn.Conv2d(chs[0], out_channels, 3, padding=1), output_layer(output))

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        h = self.inp(y)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        zmap = self.z_in(z).view(-1, self.bottleneck, self.side, self.side)  # (B, C_bottleneck, s, s)
        h = self.mid(torch.cat((skips.pop(), zmap), dim=1))
        for up, merge in zip(self.up, self.merge, strict=True):
            h = merge(torch.cat((up(h), skips.pop()), dim=1))
        return self.out(h)  # (B, C, H, W)
