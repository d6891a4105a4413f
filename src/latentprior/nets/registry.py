"""The encoder/decoder families by name (``net.arch``): adding one is one entry in :data:`ARCHS`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from latentprior.nets.conv import ConvDecoder, ConvEncoder
from latentprior.nets.infogan import InfoGANDecoder, InfoGANEncoder
from latentprior.nets.resnet import ResNetDecoder, ResNetEncoder
from latentprior.nets.spectral_norm import spectral_norm
from latentprior.nets.unet import UNetDecoder, UNetEncoder

__all__ = ["ARCHS", "Arch", "build_encoder", "build_decoder", "apply_spectral_norm", "set_bn_momentum"]


@dataclass(frozen=True)
class Arch:
    """An encoder class ``(in_channels, image_size, out_dim, width)``, a decoder class ``(latent_dim,
    out_channels, image_size, width, output)``, whether its reference encoder is spectrally normalised, and
    whether it is a conditional pair (the encoder reads [x, y], the decoder (z, y)): those serve ``data.condition``
    models only, and their shapes are tested with the conditional models."""

    encoder: type[nn.Module]
    decoder: type[nn.Module]
    spectral_norm: bool
    conditional: bool = False


ARCHS: dict[str, Arch] = {
    # Dai & Wipf's InfoGAN encoder normalises every layer spectrally; Chen et al.'s original (2016) predates it.
    "infogan": Arch(InfoGANEncoder, InfoGANDecoder, spectral_norm=True),
    "conv4": Arch(ConvEncoder, ConvDecoder, spectral_norm=False),
    "resnet": Arch(ResNetEncoder, ResNetDecoder, spectral_norm=False),
    "unet": Arch(UNetEncoder, UNetDecoder, spectral_norm=False, conditional=True),
}


def _arch(name: str) -> Arch:
    if name not in ARCHS:
        raise ValueError(f"unknown net arch '{name}'; known: {list(ARCHS)}")
    return ARCHS[name]


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every Conv2d and Linear in ``module``, in place and in module order, with
    :func:`latentprior.nets.spectral_norm.spectral_norm` (one power iteration per training forward, as Miyato
    et al.): the output is divided by σ, and u, v are drawn as torch's parametrization would draw them.
    Parameter counts are unchanged: u and v are buffers."""
    for m in list(module.modules()):
        if type(m) in (nn.Conv2d, nn.Linear):
            spectral_norm(m)
    return module


def set_bn_momentum(module: nn.Module, momentum: float) -> nn.Module:
    """Set the running-statistics momentum of every BatchNorm in ``module`` (in place): running = (1 - m)
    running + m batch. TensorFlow's ``decay`` d is PyTorch's 1 - d (Dai & Wipf: d = 0.999, m = 0.001)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
    return module


def build_encoder(arch: str, in_channels: int, image_size: int, out_dim: int, *, width: float = 1.0,
                  spectral_norm: bool | None = None, bn_momentum: float = 0.1) -> nn.Module:
    """x (B, C, s, s) -> (B, out_dim). ``spectral_norm`` None: the arch's reference choice."""
    a = _arch(arch)
    net = set_bn_momentum(a.encoder(in_channels, image_size, out_dim, width=width), bn_momentum)
    if a.spectral_norm if spectral_norm is None else spectral_norm:
        apply_spectral_norm(net)
    return net


def build_decoder(arch: str, latent_dim: int, out_channels: int, image_size: int, *, width: float = 1.0,
                  output: str = "sigmoid", bn_momentum: float = 0.1) -> nn.Module:
    """z (B, D) -> G(z) (B, C, s, s)."""
    return set_bn_momentum(_arch(arch).decoder(latent_dim, out_channels, image_size, width=width, output=output),
                           bn_momentum)
