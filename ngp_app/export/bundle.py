"""One-click deliverables (``ngp export bundle``): a clean GLB of the object and a fly-through with its camera path.

The mesh is the density iso-surface (``export.mesh.surface_mesh``); disconnected pieces smaller than a share of
its faces (floaters) are removed, it is decimated to a face budget with quadric error collapses
(fast-simplification), its vertices keep the colours of the nearest vertex of the full mesh, and it is written as a
binary glTF (trimesh) with vertex colours and normals. The fly-through is the orbit ``ngp video`` renders (a sweep
for frontal captures), written with the camera path that makes it, so ``ngp video --path`` renders it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import NgpError
from ..fileio import atomic_write_bytes
from .mesh_io import Mesh

if TYPE_CHECKING:
    from ..nerf_model import NerfModel

log = logging.getLogger("ngp_app")

BUNDLE_FILES = {"mesh": "model.glb", "video": "flythrough.mp4", "path": "flythrough_path.json"}
KEYS = 8  # keyframes of the fly-through's camera path


@dataclass
class Cleaned:
    """A cleaned mesh and what cleaning did: pieces found and kept, faces before and after."""

    mesh: Mesh
    pieces: int
    kept: int
    faces_before: int


def clean_mesh(mesh: Mesh, max_faces: int, min_share: float) -> Cleaned:
    """``mesh`` without pieces of fewer than ``min_share`` of its faces (the largest piece always stays),
    decimated to at most ``max_faces`` faces (and filtered again: collapses leave fragments); colours from the
    nearest vertex of ``mesh``, normals recomputed."""
    import fast_simplification
    import trimesh
    from scipy.spatial import cKDTree

    if max_faces < 4:
        raise NgpError(f"--faces must be at least 4, got {max_faces}")

    def without_floaters(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
        pieces = trimesh.Trimesh(vertices, faces, process=False).split(only_watertight=False)
        if not pieces:
            raise NgpError("the mesh has no faces to clean")
        floor = max(1, int(np.ceil(min_share * len(faces))))
        largest = max(pieces, key=lambda p: len(p.faces))
        kept = [p for p in pieces if len(p.faces) >= floor or p is largest]
        joined = trimesh.util.concatenate(kept) if len(kept) > 1 else kept[0]
        return np.asarray(joined.vertices, np.float32), np.asarray(joined.faces, np.int64), len(pieces), len(kept)

    vertices, faces, n_pieces, n_kept = without_floaters(mesh.vertices, mesh.faces)
    if len(faces) > max_faces:  # quadric collapses leave small fragments behind: filter them again
        vertices, faces = fast_simplification.simplify(vertices, faces, target_count=int(max_faces))
        vertices, faces, _, _ = without_floaters(vertices, faces)
    _, nearest = cKDTree(mesh.vertices).query(vertices)
    normals = np.asarray(trimesh.Trimesh(vertices, faces, process=False).vertex_normals, dtype=np.float32)
    cleaned = Mesh(vertices, faces, mesh.colors[nearest], normals)
    return Cleaned(cleaned, n_pieces, n_kept, len(mesh.faces))


def glb_bytes(mesh: Mesh) -> bytes:
    """A binary glTF of ``mesh`` with per-vertex colours (RGBA) and normals."""
    import trimesh

    rgba = np.concatenate([mesh.colors, np.full((len(mesh.colors), 1), 255, np.uint8)], axis=1)
    tm = trimesh.Trimesh(
        mesh.vertices, mesh.faces, vertex_normals=mesh.normals, vertex_colors=rgba, process=False, validate=False
    )
    return tm.export(file_type="glb")


def bundle_targets(folder: str | Path) -> dict[str, Path]:
    """The bundle's files in ``folder``, checked before any work (a writable place, the right suffixes)."""
    from ..outputs import check_output_dir, check_output_file

    root = check_output_dir(folder, 0, "--out", "model.glb, flythrough.mp4 and flythrough_path.json")
    targets = {kind: root / name for kind, name in BUNDLE_FILES.items()}
    for kind, target in targets.items():
        check_output_file(target, None, 0, kind)
    return targets


def export_bundle(
    nerf: NerfModel,
    scene_meta: dict[str, Any],
    folder: str | Path,
    max_faces: int = 200_000,
    min_share: float = 0.01,
    resolution: int = 256,
    threshold: float = 2.5,
    frames: int = 120,
    width: int = 640,
    height: int = 360,
    fps: float = 30.0,
    progress: Callable[[float, str], None] | None = None,
    crop: Any = None,
) -> dict[str, Any]:
    """Write ``model.glb``, ``flythrough.mp4`` and ``flythrough_path.json`` into ``folder``; returns what was written
    (paths, faces, pieces, seconds). ``progress(fraction, stage)`` after each step and frame (it may raise to
    cancel); ``crop``: the box meshed (ngp coordinates, as ``surface_mesh``; default the field's)."""
    from .camera_path import path_cameras
    from .mesh import surface_mesh
    from .path_files import save_path
    from .path_model import CameraPath
    from .video import export_video

    report = progress or (lambda _f, _s: None)
    targets = bundle_targets(folder)
    t0 = time.perf_counter()
    mesh = surface_mesh(
        nerf, scene_meta, resolution, threshold, crop, "nerf", progress=lambda d, t: report(0.3 * d / t, "density")
    )
    cleaned = clean_mesh(mesh, max_faces, min_share)
    atomic_write_bytes(targets["mesh"], glb_bytes(cleaned.mesh))
    t1 = time.perf_counter()
    report(0.4, "mesh written")
    orbit = path_cameras("orbit", scene_meta, frames)
    keys = [orbit[i] for i in np.linspace(0, len(orbit) - 1, KEYS).round().astype(int)]
    path = CameraPath.from_cameras(keys, duration=frames / fps, fps=fps)
    path.resolution = (width, height)
    save_path(targets["path"], path, scene_meta)
    export_video(
        nerf,
        path.cameras(frames),
        targets["video"],
        width,
        height,
        fps,
        progress=lambda done, total: report(0.4 + 0.6 * done / total, f"frame {done}/{total}"),
    )
    info = {
        "files": {k: str(v) for k, v in targets.items()},
        "faces": cleaned.mesh.n_faces,
        "faces_before": cleaned.faces_before,
        "pieces": cleaned.pieces,
        "pieces_kept": cleaned.kept,
        "mesh_seconds": round(t1 - t0, 2),
        "video_seconds": round(time.perf_counter() - t1, 2),
    }
    log.info(
        "bundle: %d of %d pieces kept, %d faces (from %d), mesh %.1f s, video %.1f s",
        cleaned.kept,
        cleaned.pieces,
        cleaned.mesh.n_faces,
        cleaned.faces_before,
        info["mesh_seconds"],
        info["video_seconds"],
    )
    return info
