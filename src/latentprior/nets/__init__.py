"""Encoder/decoder network bodies."""

from latentprior.nets.conv import SUPPORTED_SIZES, ConvDecoder, ConvEncoder, count_parameters, decoder_plan

__all__ = ["ConvEncoder", "ConvDecoder", "SUPPORTED_SIZES", "decoder_plan", "count_parameters"]
