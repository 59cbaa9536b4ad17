"""Metric depth out: a render's depth in the scene's own units, as 32-bit EXR, ``.npy`` or a 16-bit PNG with its
scale in a JSON file beside it (``ngp render --depth-out``, ``ngp video --depth-out``).

Depth is the expected depth along each ray (accumulated depth / opacity) where the opacity passes 0.5, and 0 where
it does not (nothing there). ``kind`` "ray" is the distance from the camera centre along the ray; "z" is the
distance along the camera's viewing axis (what a depth sensor or a 3D tool's z-buffer holds). Units are those of
the scene's transforms.json: ngp-space distances divided by the scene's ``scale``.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NgpError
from ..fileio import atomic_write_bytes, atomic_write_text
from ..render.depth import DEPTH_KINDS, metric_depth

__all__ = ["DEPTH_KINDS", "DEPTH_SUFFIXES", "check_depth_target", "metric_depth", "read_depth_png", "write_depth"]

DEPTH_SUFFIXES = (".exr", ".npy", ".png")
PNG_MAX = 65535


def depth_format(path: str | Path) -> str:
    """The depth file format of ``path`` by its suffix; anything else is an NgpError."""
    suffix = Path(path).suffix.lower()
    if suffix not in DEPTH_SUFFIXES:
        raise NgpError(f"{path}: unknown depth format {suffix or '(no suffix)'!r} (use .exr, .npy or .png)")
    if suffix == ".exr":
        try:
            import OpenEXR  # noqa: F401
        except ImportError:
            raise NgpError(f"{path}: writing EXR needs OpenEXR's Python bindings (pip install openexr)") from None
    return suffix


def check_depth_target(path: str | Path, pixels: int) -> Path:
    """Before any work: a depth format we can write and a writable place for it (and for a PNG's scale file)."""
    from ..outputs import check_output_file

    suffix = depth_format(path)
    out = check_output_file(path, DEPTH_SUFFIXES, pixels * 4, "depth")
    if suffix == ".png":
        check_output_file(scale_file(out), (".json",), 1024, "depth scale")
    return out


def scale_file(path: str | Path) -> Path:
    """The JSON file beside a 16-bit depth PNG that holds its scale (``depth.png`` -> ``depth.png.json``)."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def png_scale(depth: np.ndarray) -> float:
    """Scene units per PNG step: the largest depth maps to 65535 (1.0 when there is no depth)."""
    far = float(depth.max()) if depth.size else 0.0
    return far / PNG_MAX if far > 0 else 1.0


def exr_bytes(depth: np.ndarray) -> bytes:
    """A one-channel (``Z``) float32 scanline EXR, ZIP-compressed."""
    import OpenEXR

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "depth.exr"
        header = {"type": OpenEXR.scanlineimage, "compression": OpenEXR.ZIP_COMPRESSION}
        with OpenEXR.File(header, {"Z": np.ascontiguousarray(depth, dtype=np.float32)}) as f:
            f.write(str(tmp))
        return tmp.read_bytes()


def write_depth(path: str | Path, depth: np.ndarray, info: dict[str, Any]) -> list[Path]:
    """Write ``depth`` (H, W) to ``path`` (.exr, .npy, or .png with its scale beside it), atomically; ``info``
    (kind, units) goes into the PNG's JSON. Returns the files written."""
    import imageio.v3 as iio

    p = Path(path)
    suffix = depth_format(p)
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, depth.astype(np.float32))
        atomic_write_bytes(p, buf.getvalue())
        return [p]
    if suffix == ".exr":
        atomic_write_bytes(p, exr_bytes(depth))
        return [p]
    step = png_scale(depth)
    values = np.clip(np.round(depth / step), 0, PNG_MAX).astype(np.uint16)
    atomic_write_bytes(p, iio.imwrite("<bytes>", values, extension=".png"))
    sidecar = scale_file(p)
    meta = {"scale": step, "meaning": "depth = pixel value * scale (0: nothing there)", **info}
    atomic_write_text(sidecar, json.dumps(meta, indent=1) + "\n")
    return [p, sidecar]


def read_depth_png(path: str | Path) -> np.ndarray:
    """A 16-bit depth PNG and its scale file back to depth in scene units (H, W) float32."""
    import imageio.v3 as iio

    scale = float(json.loads(scale_file(path).read_text())["scale"])
    if not math.isfinite(scale):
        raise NgpError(f"{scale_file(path)}: the scale is not a number")
    return iio.imread(path).astype(np.float32) * scale
