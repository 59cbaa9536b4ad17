"""Mesh files: the :class:`Mesh` container and its PLY (binary) and OBJ (text) writers, both atomic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NgpError
from ..fileio import atomic_write_bytes, atomic_write_text

MESH_SUFFIXES = (".ply", ".obj")


@dataclass
class Mesh:
    """A triangle mesh: vertices (V, 3) float32, faces (F, 3) int64 (counter-clockwise seen from outside),
    colors (V, 3) uint8, normals (V, 3) float32 unit vectors pointing out of the object."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    normals: np.ndarray

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


# --------------------------------------------------------------------------------------------------- sampling


def check_mesh_path(path: Path) -> str:
    """The mesh format of ``path`` (.ply or .obj); raises NgpError before any work for anything else."""
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise NgpError(f"{path}: unknown mesh format {path.suffix or '(no suffix)'!r} (use .ply or .obj)")
    return suffix


def ply_bytes(mesh: Mesh) -> bytes:
    """Binary little-endian PLY: per vertex float x y z, float nx ny nz, uchar red green blue; faces uchar/int (a
    mesh without faces is a point cloud: no face element)."""
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment ngp-app mesh export\n"
        f"element vertex {mesh.n_vertices}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        + (f"element face {mesh.n_faces}\nproperty list uchar int vertex_indices\n" if mesh.n_faces else "")
        + "end_header\n"
    )
    vtype = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    verts = np.empty(mesh.n_vertices, dtype=vtype)
    verts["p"], verts["n"], verts["c"] = mesh.vertices, mesh.normals, mesh.colors
    ftype = np.dtype([("k", "u1"), ("i", "<i4", 3)])
    faces = np.empty(mesh.n_faces, dtype=ftype)
    faces["k"], faces["i"] = 3, mesh.faces
    return header.encode("ascii") + verts.tobytes() + faces.tobytes()


def obj_text(mesh: Mesh) -> str:
    """Wavefront OBJ: ``v x y z r g b`` (colours in [0, 1]), ``vn``, ``f a//a b//b c//c`` (1-based)."""
    rgb = mesh.colors.astype(np.float64) / 255.0
    v = np.concatenate([mesh.vertices.astype(np.float64), rgb], axis=1)
    f = mesh.faces + 1
    lines = ["# ngp-app mesh export", f"# {mesh.n_vertices} vertices, {mesh.n_faces} faces"]
    lines += [f"v {x:.6g} {y:.6g} {z:.6g} {r:.4g} {g:.4g} {b:.4g}" for x, y, z, r, g, b in v.tolist()]
    lines += [f"vn {x:.6g} {y:.6g} {z:.6g}" for x, y, z in mesh.normals.tolist()]
    lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in f.tolist()]
    return "\n".join(lines) + "\n"


def write_ply(path: str | Path, mesh: Mesh) -> Path:
    """Write ``mesh`` to ``path`` as binary PLY (atomically)."""
    path = Path(path)
    atomic_write_bytes(path, ply_bytes(mesh))
    return path


def write_obj(path: str | Path, mesh: Mesh) -> Path:
    """Write ``mesh`` to ``path`` as OBJ with vertex colours (atomically)."""
    path = Path(path)
    atomic_write_text(path, obj_text(mesh))
    return path


def write_mesh(path: str | Path, mesh: Mesh) -> Path:
    """Write ``mesh`` as PLY or OBJ, chosen by the suffix of ``path`` (anything else is an NgpError)."""
    path = Path(path)
    return write_ply(path, mesh) if check_mesh_path(path) == ".ply" else write_obj(path, mesh)
