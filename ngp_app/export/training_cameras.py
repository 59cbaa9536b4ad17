"""Cameras out (``ngp export cameras``): a snapshot's training cameras as an instant-ngp/nerfstudio transforms.json.

The poses are the snapshot's (refined by ``--optimize-extrinsics`` when it ran), turned back into the scene's own
NeRF convention (OpenGL camera axes, the world before instant-ngp's scale and offset); ``scale``, ``offset`` and
``aabb_scale`` are written too, so ``ngp train`` on the file rebuilds the same ngp space. Intrinsics are given for the
images on disk (the snapshot's are for the size it trained at), and ``file_path`` points at those images, relative to
the written file where it can.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.cameras import FISHEYE, ngp_to_nerf
from ..data.loaders import frame_entries, resolve_scene
from ..errors import NgpError, SceneError
from ..fileio import atomic_write_text

log = logging.getLogger("ngp_app")

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def frame_files(scene_meta: dict[str, Any]) -> list[Path]:
    """The image file of each training camera: the snapshot's ``file_names``, or (older snapshots) the scene's
    frames read again from its folder, when that still gives one image per camera."""
    n = len(scene_meta["c2w"])
    names = scene_meta.get("file_names") or []
    if len(names) == n:
        return [Path(name) for name in names]
    where = scene_meta.get("path") or "(no scene path)"
    try:
        entries = frame_entries(resolve_scene(where, scene_meta.get("split", "train")).files)[0]
    except SceneError as e:
        raise NgpError(f"the snapshot does not name its images and its scene cannot be read again: {e}") from None
    if len(entries) != n:
        raise NgpError(
            f"the snapshot does not name its images, and its scene {where} now has {len(entries)} frames "
            f"for its {n} cameras"
        )
    return [e.image for e in entries]


def scene_files(scene_meta: dict[str, Any]) -> list[Path]:
    """The camera files of the snapshot's scene (its transforms or poses files), when the scene is still there."""
    try:
        return [f for f, _ in resolve_scene(scene_meta.get("path") or "", "all").files]
    except (SceneError, OSError):
        return []


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (POSIX separators) where possible, else absolute."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def frame_entry(scene_meta: dict[str, Any], i: int, image: Path, folder: Path) -> dict[str, Any]:
    """Camera ``i`` as a transforms.json frame: its image, NeRF pose, and intrinsics and lens for the image on
    disk (scaled from the size it trained at)."""
    if not image.is_file():
        raise NgpError(f"{image}: training image {i} is missing (moved or deleted since training)")
    with Image.open(image) as img:
        disk_w, disk_h = img.size
    w, h = scene_meta["sizes"][i]
    sx, sy = disk_w / w, disk_h / h
    fx, fy, cx, cy = scene_meta["intrinsics"][i]
    pose = ngp_to_nerf(np.asarray(scene_meta["c2w"][i]), float(scene_meta["scale"]), tuple(scene_meta["offset"]))
    frame: dict[str, Any] = {
        "file_path": _relative(image, folder),
        "transform_matrix": pose.tolist(),
        "fl_x": fx * sx,
        "fl_y": fy * sy,
        "cx": cx * sx,
        "cy": cy * sy,
        "w": int(disk_w),
        "h": int(disk_h),
    }
    rows = scene_meta.get("distortion") or []
    if i < len(rows):
        *coefficients, model = rows[i]
        fisheye = int(model) == FISHEYE
        if fisheye or any(coefficients):
            frame["camera_model"] = "OPENCV_FISHEYE" if fisheye else "OPENCV"
            frame.update({k: float(v) for k, v in zip(DISTORTION_KEYS, coefficients) if v})
    return frame


def cameras_transforms(scene_meta: dict[str, Any], out_path: Path) -> dict[str, Any]:
    """The transforms.json content for ``scene_meta``'s training cameras, its paths relative to ``out_path``'s
    folder."""
    folder = out_path.parent
    frames = [frame_entry(scene_meta, i, image, folder) for i, image in enumerate(frame_files(scene_meta))]
    return {
        "aabb_scale": scene_meta.get("aabb_scale", 1.0),
        "scale": float(scene_meta["scale"]),
        "offset": [float(v) for v in scene_meta["offset"]],
        "frames": frames,
        "ngp_export": {
            "source": "ngp export cameras",
            "scene": scene_meta.get("path", ""),
            "extrinsics_refined": bool(scene_meta.get("extrinsics_refined", False)),
            "excluded_frames": list(scene_meta.get("excluded") or []),
        },
    }


def export_cameras(scene_meta: dict[str, Any], out_path: str | Path) -> dict[str, Any]:
    """Write the training cameras of a snapshot's ``scene_meta`` to ``out_path`` (a transforms.json, atomically);
    returns what was written."""
    import json

    out = Path(out_path)
    own = scene_files(scene_meta)
    if out.exists() and any(out.resolve() == f.resolve() for f in own):
        raise NgpError(f"{out}: is the scene's own camera file; write the cameras to another file")
    data = cameras_transforms(scene_meta, out)
    atomic_write_text(out, json.dumps(data, indent=2) + "\n")
    log.info(
        "%d cameras written to %s (%s poses)",
        len(data["frames"]),
        out,
        "refined" if data["ngp_export"]["extrinsics_refined"] else "loaded",
    )
    return data


def check_cameras_target(path: str | Path) -> Path:
    """Before any work: a .json name in a writable place."""
    from ..outputs import check_output_file

    return check_output_file(path, (".json",), 1 << 20, "cameras")
