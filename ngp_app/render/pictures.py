"""Render mode -> pixels: the one mapping from a render's outputs to an 8-bit picture, shared by ``ngp render``,
``ngp video`` and the app's viewport, so each shows a mode the same way.

- ``rgb``: the colours over the background; ``normals``: the surface normals as colours, (n + 1) / 2, over black
  (``shaded_field`` swaps the field); both come straight from the renderer's uint8 buffer.
- ``depth``: the expected depth (depth / opacity), normalised to ``depth_range`` (the nearest and farthest pixel
  that hit something, opacity > 0.5), through one ramp (near: bright and warm, far: dim blue), faded to black by
  the opacity. A video takes its first frame's range for every frame, so the brightness does not flicker.
- ``opacity``: the accumulated opacity as grey.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PICTURE_MODES = ("rgb", "depth", "opacity", "normals")
FLOAT_MODES = ("depth", "opacity")  # modes drawn from float outputs (``picture``); the others from uint8 RGBA
HIT_OPACITY = 0.5  # a pixel "hit something" above this opacity (the depth range is taken over those)


def _numpy(x: Any) -> np.ndarray:
    """A float32 numpy array from a numpy array or a torch tensor (any device)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> uint8 (rounded, clipped)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def expected_depth(depth: Any, opacity: Any) -> np.ndarray:
    """Accumulated depth (h, w) / opacity (h, w): the depth of the surface a pixel sees."""
    return _numpy(depth) / np.maximum(_numpy(opacity), 1e-6)


def depth_range(depth: Any, opacity: Any) -> tuple[float, float]:
    """(near, far): the smallest and largest expected depth over the pixels that hit something; (0, 1) if none."""
    d, hit = expected_depth(depth, opacity), _numpy(opacity) > HIT_OPACITY
    if not hit.any():
        return 0.0, 1.0
    return float(d[hit].min()), float(d[hit].max())


def depth_ramp(t: np.ndarray) -> np.ndarray:
    """The depth colormap: nearness ``t`` in [0, 1] (1 = nearest) (...,) -> RGB floats (..., 3)."""
    return np.stack([t, t**2, 0.35 + 0.4 * (1.0 - t)], axis=-1)


def depth_picture(depth: Any, opacity: Any, near_far: tuple[float, float] | None = None) -> np.ndarray:
    """Depth (h, w) and opacity (h, w) -> (h, w, 3) uint8; ``near_far`` as ``depth_range`` (default: this image's)."""
    lo, hi = near_far if near_far is not None else depth_range(depth, opacity)
    d, a = expected_depth(depth, opacity), np.clip(_numpy(opacity), 0.0, 1.0)
    t = 1.0 - np.clip((d - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return to_uint8(depth_ramp(t) * a[..., None])


def opacity_picture(opacity: Any) -> np.ndarray:
    """Opacity (h, w) -> (h, w, 3) uint8 grey."""
    return to_uint8(np.repeat(_numpy(opacity)[..., None], 3, axis=-1))


def picture(mode: str, out: dict[str, Any], near_far: tuple[float, float] | None = None) -> np.ndarray:
    """A float-output mode's picture: ``out`` holds ``depth``/``opacity`` (h, w) (and ``rgb`` (h, w, 3)) as numpy
    arrays or tensors -> (h, w, 3) uint8. ``rgb`` here is the float colour (the uint8 path is ``render_rgba``)."""
    if mode == "depth":
        return depth_picture(out["depth"], out["opacity"], near_far)
    if mode == "opacity":
        return opacity_picture(out["opacity"])
    if mode in ("rgb", "normals"):
        return to_uint8(_numpy(out["rgb"]))
    raise ValueError(f"unknown render mode {mode!r} (choose from {', '.join(PICTURE_MODES)})")


def shaded_field(
    model: Any, mode: str, background: tuple[float, float, float], step: float | None = None
) -> tuple[Any, tuple[float, ...]]:
    """What to render for ``mode``: the model over ``background``, or (``normals``) its normals as colours over
    black (``step``: the normals' finite-difference step, default from the model's hash grid)."""
    if mode != "normals":
        return model, tuple(background)
    from .normals import NormalsField

    return NormalsField(model, step=step), (0.0, 0.0, 0.0)
