"""``infogan``: the InfoGAN network (Chen et al., 2016) as Dai & Wipf's Two-Stage VAE uses it as a VAE.

The paper's FID experiments use "the same network architecture as was used in [5]"; [5] sorts between
Bowman and Chen, X., Kingma in its alphabetical bibliography, and the FID code it names (Dai & Wipf's) trains
this network with latent dimension 64 on the same four datasets. With s = image size / 4 (7, 8 or 16):

* encoder: Conv64 (4x4, stride 2), LeakyReLU(0.2) -> Conv128 (4x4, stride 2), BN, LeakyReLU(0.2)
  -> flatten -> FC1024, BN, LeakyReLU(0.2) -> FC out_dim (2·D: mean and log-variance)
* decoder: FC1024, BN, ReLU -> FC 128·s², BN, ReLU -> reshape (128, s, s) -> ConvT64 (4x4, stride 2), BN, ReLU
  -> ConvT C (4x4, stride 2) -> sigmoid

Details checked against Dai & Wipf's public code: leaky-ReLU slope 0.2; BatchNorm on the flat FC outputs is per
feature (``BatchNorm1d``), before the reshape; "SAME" padding, so 28 -> 14 -> 7 and back, 32 -> 8, 64 -> 16; their
encoder has spectral normalisation on every layer (here ``net.spectral_norm``, applied by
:mod:`latentprior.nets.registry`). Layers followed by BatchNorm have no bias (BatchNorm subtracts it), and the
weights keep PyTorch's default initialisation rather than their N(0, 0.02). ``width`` scales 64, 128 and 1024.
"""

from __future__ import annotations

from torch import Tensor, nn

from latentprior.nets.base import channels, check_size, output_layer

__all__ = ["InfoGANEncoder", "InfoGANDecoder"]

_SLOPE = 0.2


class InfoGANEncoder(nn.Module):
    """x (B, C, H, W) in [0, 1] -> features (B, out_dim); out_dim is 2·D (Gaussian) or D (deterministic)."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: float = 1.0) -> None:
        super().__init__()
        s = check_size(image_size) // 4
        c1, c2, h = channels(64, width), channels(128, width), channels(1024, width)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 4, stride=2, padding=1), nn.LeakyReLU(_SLOPE),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.LeakyReLU(_SLOPE),
            nn.Flatten(),  # (B, c2·s·s)
            nn.Linear(c2 * s * s, h, bias=False), nn.BatchNorm1d(h), nn.LeakyReLU(_SLOPE),
            nn.Linear(h, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class InfoGANDecoder(nn.Module):
    """z (B, D) -> G(z) (B, C, H, W): sigmoid output in [0, 1], or linear."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, width: float = 1.0,
                 output: str = "sigmoid") -> None:
        super().__init__()
        s = check_size(image_size) // 4
        c1, c2, h = channels(64, width), channels(128, width), channels(1024, width)
        self.start_shape = (c2, s, s)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(True),
            nn.Linear(h, c2 * s * s, bias=False), nn.BatchNorm1d(c2 * s * s), nn.ReLU(True),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(True),
            nn.ConvTranspose2d(c1, out_channels, 4, stride=2, padding=1), output_layer(output),
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start_shape)  # (B, 128, s, s)
        return self.body(h)
