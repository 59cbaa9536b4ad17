"""A COLMAP reconstruction (pycolmap.Reconstruction) -> an instant-ngp ``transforms.json`` and its sparse points.

Intrinsics map onto the loader's two lens models: OpenCV (``fl_x fl_y cx cy k1 k2 p1 p2``, and ``k3`` for
FULL_OPENCV without its rational terms) and OpenCV fisheye (``camera_model: OPENCV_FISHEYE``, ``k1..k4``). Poses
and points go through ``conventions.normalise``; see docs/import.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ImportFailed
from .conventions import aabb_scale_for, colmap_to_nerf_c2w, normalise
from .sources import natural_key
from .verdict import assess

#: The sparse points' file beside transforms.json (named by its ``ply_file_path``).
POINTS_FILE = "sparse_points.ply"
IMAGES_DIR = "images"

# COLMAP camera model -> (our model, names of its parameters after fx fy cx cy); 'f' models share one focal.
_PERSPECTIVE = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4r", "k5r", "k6r"),
}
_FISHEYE = {
    "SIMPLE_RADIAL_FISHEYE": ("f", "cx", "cy", "k1"),
    "RADIAL_FISHEYE": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV_FISHEYE": ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"),
}
SUPPORTED_MODELS = tuple(_PERSPECTIVE) + tuple(_FISHEYE)


def camera_to_json(
    model: str, params: Sequence[float], width: int, height: int, where: str = "camera"
) -> dict[str, Any]:
    """transforms.json intrinsics of a COLMAP camera: camera_model, fl_x fl_y cx cy w h, the distortion keys of
    its lens model and camera_angle_x/y (for tools that read only those). Unsupported models raise ImportFailed."""
    names = _PERSPECTIVE.get(model) or _FISHEYE.get(model)
    if names is None:
        raise ImportFailed(f"{where}: unsupported camera model {model} (supported: {', '.join(SUPPORTED_MODELS)})")
    if len(params) != len(names):
        raise ImportFailed(f"{where}: {model} needs {len(names)} parameters, got {len(params)}")
    v = dict(zip(names, (float(x) for x in params)))
    if model == "FULL_OPENCV" and any(v.pop(k) != 0.0 for k in ("k4r", "k5r", "k6r")):
        raise ImportFailed(
            f"{where}: unsupported camera model FULL_OPENCV with rational terms k4..k6 "
            f"(refit with --camera-model OPENCV)"
        )
    fx, fy = (v.pop("f"),) * 2 if "f" in v else (v.pop("fx"), v.pop("fy"))
    out: dict[str, Any] = {
        "camera_model": "OPENCV_FISHEYE" if model in _FISHEYE else "OPENCV",
        "fl_x": fx,
        "fl_y": fy,
        "cx": v.pop("cx"),
        "cy": v.pop("cy"),
        "w": int(width),
        "h": int(height),
        "camera_angle_x": 2.0 * math.atan(0.5 * width / fx),
        "camera_angle_y": 2.0 * math.atan(0.5 * height / fy),
    }
    keys = ("k1", "k2", "k3", "k4") if model in _FISHEYE else ("k1", "k2", "p1", "p2")
    out.update({k: v.pop(k, 0.0) for k in keys})
    out.update(v)  # FULL_OPENCV's k3
    return out


@dataclass
class Converted:
    """transforms.json content, the sparse points (m, 3) in its coordinates with colours (m, 3) uint8, and a
    summary of the conversion."""

    transforms: dict[str, Any]
    points: np.ndarray
    colors: np.ndarray
    summary: dict[str, Any]


def registered_images(rec: Any) -> list[Any]:
    """The reconstruction's posed images, in natural name order."""
    images = [rec.images[i] for i in rec.reg_image_ids()]
    return sorted((im for im in images if im.has_pose), key=lambda im: natural_key(im.name))


def convert(rec: Any, n_input: int | None = None, frame_extra: dict[str, dict[str, Any]] | None = None) -> Converted:
    """Convert a pycolmap.Reconstruction. ``n_input``: images given to SfM (for the summary); ``frame_extra``:
    extra keys per image name (a video frame's sharpness)."""
    images = registered_images(rec)
    if not images:
        raise ImportFailed("the COLMAP model has no posed images")
    c2w = np.stack([colmap_to_nerf_c2w(im.cam_from_world().matrix()) for im in images])
    pts = list(rec.points3D.values())
    xyz = np.array([p.xyz for p in pts], dtype=np.float64).reshape(-1, 3)
    tracks = np.array([p.track.length() for p in pts], dtype=np.int64)
    rgb = np.array([p.color for p in pts], dtype=np.uint8).reshape(-1, 3)
    sim, centred_on = normalise(c2w, xyz)
    c2w, xyz = sim.poses(c2w), sim.points(xyz)
    aabb = aabb_scale_for(xyz)
    intrinsics = {}
    for cid in sorted({im.camera_id for im in images}):
        cam = rec.cameras[cid]
        intrinsics[cid] = camera_to_json(cam.model.name, list(cam.params), cam.width, cam.height, f"camera {cid}")
    shared = len(intrinsics) == 1
    frames = []
    for im, m in zip(images, c2w):
        frame: dict[str, Any] = {"file_path": f"{IMAGES_DIR}/{im.name}", "transform_matrix": np.round(m, 10).tolist()}
        if not shared:
            frame.update(intrinsics[im.camera_id])
        frame.update((frame_extra or {}).get(im.name, {}))
        frames.append(frame)
    summary = {
        "images": n_input if n_input is not None else len(images),
        "registered": len(images),
        "points": int(len(xyz)),
        "reprojection_error_px": round(float(rec.compute_mean_reprojection_error()), 4),
        "aabb_scale": aabb,
        "camera_model": sorted({cam["camera_model"] for cam in intrinsics.values()}),
        "cameras": len(intrinsics),
        "centred_on": centred_on,
        "colmap_to_transforms": np.round(sim.matrix(), 10).tolist(),
        **assess(
            n_input if n_input is not None else len(images),
            c2w[:, :3, 3],
            xyz,
            tracks,
            [(float(c["fl_x"]), float(c["fl_y"])) for c in intrinsics.values()],
            c2w,
            [Path(im.name).stem for im in images],
        ).summary(),
    }
    transforms: dict[str, Any] = {
        **(next(iter(intrinsics.values())) if shared else {}),
        "aabb_scale": aabb,
        "ply_file_path": POINTS_FILE,
        "ngp_import": summary,
        "frames": frames,
    }
    return Converted(transforms, xyz.astype(np.float32), rgb, summary)
