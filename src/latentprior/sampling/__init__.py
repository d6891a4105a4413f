"""Generation: image grids and latent interpolation."""

from latentprior.sampling.grid import make_grid, save_image_grid
from latentprior.sampling.interpolate import InterpolationError, interpolate, lerp, slerp

__all__ = ["make_grid", "save_image_grid", "interpolate", "lerp", "slerp", "InterpolationError"]
