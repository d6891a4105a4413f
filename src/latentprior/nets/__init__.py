"""Encoder/decoder network bodies (``infogan``, ``conv4``, ``resnet``; ``unet`` for conditional models) and the
VGG feature trunk."""

from latentprior.nets.base import SUPPORTED_SIZES, count_parameters
from latentprior.nets.conv import ConvDecoder, ConvEncoder
from latentprior.nets.infogan import InfoGANDecoder, InfoGANEncoder
from latentprior.nets.registry import ARCHS, apply_spectral_norm, build_decoder, build_encoder, set_bn_momentum
from latentprior.nets.resnet import ResNetDecoder, ResNetEncoder
from latentprior.nets.unet import UNetDecoder, UNetEncoder

__all__ = [
    "ARCHS", "SUPPORTED_SIZES", "ConvDecoder", "ConvEncoder", "InfoGANDecoder", "InfoGANEncoder", "ResNetDecoder",
    "ResNetEncoder", "UNetDecoder", "UNetEncoder", "apply_spectral_norm", "build_decoder", "build_encoder",
    "count_parameters", "set_bn_momentum",
]
