"""Sparse point clouds as PLY files: the importer writes SfM's points (transforms.json coordinates, with colours)
beside the scene for display; the app reads them back (``ply_file_path`` in transforms.json, nerfstudio's key)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import SceneError
from ...fileio import atomic_write_bytes

_PLY_TYPES = {
    "char": "i1",
    "uchar": "u1",
    "int8": "i1",
    "uint8": "u1",
    "short": "i2",
    "ushort": "u2",
    "int16": "i2",
    "uint16": "u2",
    "int": "i4",
    "uint": "u4",
    "int32": "i4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def write_points_ply(path: str | Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary little-endian PLY of points xyz (n, 3) (stored float32) with colours rgb (n, 3) uint8; atomic."""
    xyz, rgb = np.asarray(xyz).reshape(-1, 3), np.asarray(rgb).reshape(-1, 3)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment ngp-app sparse points\n"
        f"element vertex {len(xyz)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    rows = np.empty(len(xyz), dtype=[("p", "<f4", 3), ("c", "u1", 3)])
    rows["p"], rows["c"] = xyz, rgb
    atomic_write_bytes(path, header.encode("ascii") + rows.tobytes())


def read_points_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 3) float32 and colours (n, 3) uint8 (grey when the file has none) from a PLY's vertex element
    (binary little-endian or ASCII). Raises SceneError for anything else."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SceneError(f"{p}: cannot read: {exc.strerror or exc}") from None
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise SceneError(f"{p}: not a PLY file")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", "replace").splitlines()
    fmt, count, props, element = "", 0, [], None
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            if element == "vertex":
                break  # vertex properties are complete; later elements come after it in the body
            element = parts[1]
            count = int(parts[2]) if element == "vertex" else count
        elif parts[0] == "property" and element == "vertex":
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise SceneError(f"{p}: unsupported vertex property {' '.join(parts[1:])!r}")
            props.append((parts[2], _PLY_TYPES[parts[1]]))
    names = [n for n, _ in props]
    if element is None or not {"x", "y", "z"} <= set(names):
        raise SceneError(f"{p}: no vertex element with x, y, z")
    if fmt == "binary_little_endian":
        dtype = np.dtype([(n, "<" + t) for n, t in props])
        if len(data) - body_start < count * dtype.itemsize:
            raise SceneError(f"{p}: truncated ({count} points announced)")
        rows = np.frombuffer(data, dtype=dtype, count=count, offset=body_start)
        table = {n: rows[n] for n in names}
    elif fmt == "ascii":
        values = np.array(data[body_start:].split()[: count * len(names)], dtype=np.float64)
        if values.size < count * len(names):
            raise SceneError(f"{p}: truncated ({count} points announced)")
        values = values.reshape(count, len(names))
        table = {n: values[:, i] for i, n in enumerate(names)}
    else:
        raise SceneError(f"{p}: PLY format {fmt!r} is not supported (binary_little_endian or ascii)")
    xyz = np.stack([table["x"], table["y"], table["z"]], axis=1).astype(np.float32)
    if {"red", "green", "blue"} <= set(names):
        rgb = np.stack([table["red"], table["green"], table["blue"]], axis=1).clip(0, 255).astype(np.uint8)
    else:
        rgb = np.full((count, 3), 200, dtype=np.uint8)
    return xyz, rgb
