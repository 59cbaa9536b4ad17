"""The NeRF field: hash-encoded density MLP and SH-conditioned colour MLP."""

from .field import NGPField, trunc_exp

__all__ = ["NGPField", "trunc_exp"]
