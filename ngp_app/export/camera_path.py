"""Camera paths for videos: an orbit around the scene, a tour of the training cameras, or keyframes.

Keyframe paths (``path_model.CameraPath``: per-key time and field of view, a spline through the keys) come from
the app's editor or from a camera-path file (``path_files``: ours, instant-ngp's ``base_cam.json``, nerfstudio's
viewer export, or keyframes in transforms.json convention, so a scene's own ``transforms.json`` is a valid path).
``path_cameras`` turns any of them into the cameras of a video's frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.cameras import look_at, orbit_eye
from ..errors import NgpError
from .path_files import load_path, path_to_json
from .path_model import CameraPath, PathCamera, check_frame_count
from .spline import quaternion_to_rotation, rotation_to_quaternion, slerp  # noqa: F401 (re-exported)

SCENE_CENTER = np.array([0.5, 0.5, 0.5])


# ------------------------------------------------------------------------------------------------ paths
def orbit_path(
    n_frames: int,
    center: Sequence[float] = (0.5, 0.5, 0.5),
    radius: float = 1.5,
    elevation_deg: float = 20.0,
    fov_y_deg: float = 50.0,
    start_azimuth_deg: float = 0.0,
) -> list[PathCamera]:
    """A full turn around ``center`` (ngp y up) at constant elevation, ending one step short of the start so the
    video loops seamlessly."""
    c = np.asarray(center, dtype=np.float64)
    cams = []
    for i in range(n_frames):
        eye = orbit_eye(c, radius, start_azimuth_deg + 360.0 * i / n_frames, elevation_deg)
        cams.append(PathCamera(look_at(eye, c).numpy().astype(np.float64), fov_y_deg))
    return cams


def interpolate_path(keys: Sequence[PathCamera], n_frames: int, loop: bool = False) -> list[PathCamera]:
    """``n_frames`` cameras passing through every keyframe in order at even times (the first and, unless ``loop``,
    the last frame are keys): the spline of :class:`~.path_model.CameraPath`."""
    if not keys:
        raise NgpError("a camera path needs at least one keyframe")
    return CameraPath.from_cameras(keys, loop=loop and len(keys) > 1).cameras(n_frames)


def tour_order(c2ws: np.ndarray) -> list[int]:
    """Order cameras (n, 3, 4) along a short tour: greedy nearest neighbour from camera 0 (captures recorded in
    random order, like NeRF-synthetic, would otherwise jump across the scene)."""
    pos = c2ws[:, :, 3]
    left = set(range(1, len(pos)))
    order = [0]
    while left:
        last = pos[order[-1]]
        nxt = min(left, key=lambda i: float(np.linalg.norm(pos[i] - last)))
        order.append(nxt)
        left.remove(nxt)
    return order


def training_keyframes(scene_meta: dict[str, Any], max_keys: int = 10) -> list[PathCamera]:
    """Up to ``max_keys`` training cameras, evenly spaced along a tour of all of them."""
    c2ws = np.asarray(scene_meta.get("c2w") or [], dtype=np.float64).reshape(-1, 3, 4)
    if len(c2ws) == 0:
        raise NgpError("the model's scene has no training cameras to follow; use --path orbit")
    intr = np.asarray(scene_meta.get("intrinsics") or [], dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(scene_meta.get("sizes") or [], dtype=np.float64).reshape(-1, 2)
    order = tour_order(c2ws)
    picks = [order[int(round(i))] for i in np.linspace(0, len(order) - 1, min(max_keys, len(order)))]
    keys = []
    for i in picks:
        fov = 50.0
        if i < len(intr) and i < len(sizes):
            fov = math.degrees(2.0 * math.atan(0.5 * sizes[i][1] / intr[i][1]))
        keys.append(PathCamera(c2ws[i].copy(), fov))
    return keys


def covered_arc(c2ws: np.ndarray) -> tuple[float, float]:
    """The arc of azimuths (degrees, around the scene centre, ngp y up) the cameras (n, 3, 4) cover: (start, width),
    the complement of the largest gap between neighbouring cameras. A capture all around gives a width near 360."""
    offsets = c2ws[:, :, 3] - SCENE_CENTER
    az = np.sort(np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2])) % 360.0)
    if len(az) < 2:
        return float(az[0]) if len(az) else 0.0, 0.0
    gaps = np.diff(np.concatenate([az, [az[0] + 360.0]]))
    i = int(np.argmax(gaps))
    return float(az[(i + 1) % len(az)]), float(360.0 - gaps[i])


def sweep_path(
    n_frames: int,
    center: Sequence[float],
    radius: float,
    elevation_deg: float,
    fov_y_deg: float,
    start_deg: float,
    width_deg: float,
) -> list[PathCamera]:
    """Back and forth over an arc of azimuths (eased at the ends), for captures that do not go all around: the
    video stays where the model has seen the scene, and loops."""
    c = np.asarray(center, dtype=np.float64)
    cams = []
    for i in range(n_frames):
        phase = 0.5 - 0.5 * math.cos(2.0 * math.pi * i / n_frames)  # 0 -> 1 -> 0
        eye = orbit_eye(c, radius, start_deg + width_deg * phase, elevation_deg)
        cams.append(PathCamera(look_at(eye, c).numpy().astype(np.float64), fov_y_deg))
    return cams


FULL_ORBIT_DEGREES = 300.0  # captures covering less than this get a sweep instead of a full turn


def default_orbit(
    scene_meta: dict[str, Any],
    n_frames: int,
    fov_y_deg: float | None = None,
    radius: float | None = None,
    elevation_deg: float | None = None,
) -> list[PathCamera]:
    """An orbit at the training cameras' median distance and elevation (or a default view without cameras). When
    the cameras cover less than ``FULL_ORBIT_DEGREES`` of azimuth (a frontal capture), the camera sweeps back and
    forth over the central 90% of their arc instead of going all the way round into never-seen space."""
    c2ws = np.asarray(scene_meta.get("c2w") or [], dtype=np.float64).reshape(-1, 3, 4)
    r, elevation, fov = 1.5, 20.0, 50.0
    if len(c2ws):
        offsets = c2ws[:, :, 3] - SCENE_CENTER
        dist = np.linalg.norm(offsets, axis=1)
        r = float(np.median(dist))
        elevation = float(np.degrees(np.median(np.arcsin(np.clip(offsets[:, 1] / np.maximum(dist, 1e-9), -1, 1)))))
        intr = np.asarray(scene_meta.get("intrinsics") or [], dtype=np.float64).reshape(-1, 4)
        sizes = np.asarray(scene_meta.get("sizes") or [], dtype=np.float64).reshape(-1, 2)
        if len(intr) and len(sizes):
            fov = float(np.median(np.degrees(2.0 * np.arctan(0.5 * sizes[:, 1] / intr[:, 1]))))
    r = radius if radius is not None else r
    elevation = elevation_deg if elevation_deg is not None else elevation
    fov = fov_y_deg or fov
    if len(c2ws) >= 2:
        start, width = covered_arc(c2ws)
        if width < FULL_ORBIT_DEGREES:
            return sweep_path(n_frames, SCENE_CENTER, r, elevation, fov, start + 0.05 * width, 0.9 * width)
    return orbit_path(n_frames, SCENE_CENTER, r, elevation, fov)


def path_cameras(
    spec: str | Path,
    scene_meta: dict[str, Any],
    n_frames: int | None,
    loop: bool = False,
    keyframes: Sequence[PathCamera] | CameraPath | None = None,
    fov_y_deg: float | None = None,
    radius: float | None = None,
    elevation_deg: float | None = None,
) -> list[PathCamera]:
    """The cameras of a video path: ``orbit`` (``default_orbit``), ``train`` (a tour of the training cameras),
    ``keyframes`` (the given ones, or the given path), or a camera-path file (``path_files.load_path``: ours,
    instant-ngp's, nerfstudio's or transforms-style). ``n_frames`` None: 120 for orbit and tour, the path's own
    duration x fps for keyframes and files."""
    if spec in ("orbit", "train") and n_frames is not None:
        check_frame_count(n_frames, f"{spec} path")
    if spec == "orbit":
        return default_orbit(scene_meta, n_frames or 120, fov_y_deg, radius, elevation_deg)
    if spec == "train":
        return interpolate_path(training_keyframes(scene_meta), n_frames or 120, loop)
    if spec == "keyframes":
        if not keyframes:
            raise NgpError("no keyframes: move the view and press K (or Add view) a few times")
        path = keyframes.copy() if isinstance(keyframes, CameraPath) else CameraPath.from_cameras(keyframes)
    else:
        if not Path(spec).is_file():
            raise NgpError(f"--path {spec}: not orbit, train or an existing camera path file")
        path = load_path(spec, scene_meta)
    if loop and len(path.keys) > 1:
        path.set_loop(True)
    return path.cameras(n_frames)


def load_keyframes(path: str | Path, scene_meta: dict[str, Any]) -> list[PathCamera]:
    """The keys of any camera-path file (``path_files.load_path``) as cameras, without their timing."""
    return [k.camera() for k in load_path(path, scene_meta).keys]


def keyframes_json(keys: Sequence[PathCamera], scene_meta: dict[str, Any]) -> str:
    """Our camera-path file for evenly timed ``keys`` (``path_files.path_to_json``)."""
    return path_to_json(CameraPath.from_cameras(keys), scene_meta)
