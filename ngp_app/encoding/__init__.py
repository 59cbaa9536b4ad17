"""Input encodings: multiresolution hash grid and spherical harmonics."""

from .hashgrid import GridGeometry, HashGridEncoding, hash_grid_corners, hash_grid_encode
from .sh import sh_encode

__all__ = ["GridGeometry", "HashGridEncoding", "hash_grid_encode", "hash_grid_corners", "sh_encode"]
