"""The sRGB transfer functions and exposure, written once for numpy arrays and torch tensors alike.

Images (and the colour the field predicts) are sRGB-encoded values in [0, 1]; an exposure change of ``s`` stops
multiplies the *linear* colour by ``2**s``, and a camera saturates at 1 (``expose``).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_TINY = 1e-12  # keeps the power's gradient finite at 0 (that branch is masked off there)


def srgb_to_linear(x: Array) -> Array:
    """sRGB-encoded values in [0, 1] (any shape) -> linear intensities (same shape)."""
    low = x / 12.92
    high = ((abs(x) + 0.055) / 1.055) ** 2.4
    return low + (high - low) * (x > 0.04045)


def linear_to_srgb(x: Array) -> Array:
    """Linear intensities in [0, 1] (any shape) -> sRGB-encoded values (same shape)."""
    low = x * 12.92
    high = 1.055 * (abs(x) + _TINY) ** (1.0 / 2.4) - 0.055
    return low + (high - low) * (x > 0.0031308)


def expose(rgb: Array, stops: Array) -> Array:
    """sRGB colours (..., 3) as a camera ``stops`` (broadcast to them) brighter would record them: the linear
    colour times 2**stops, clipped at 1."""
    scaled = srgb_to_linear(rgb) * 2.0**stops
    scaled = scaled.clamp(0.0, 1.0) if isinstance(scaled, torch.Tensor) else np.clip(scaled, 0.0, 1.0)
    return linear_to_srgb(scaled)
