"""Camera paths for videos: an orbit around the scene, a tour of the training cameras, or keyframes.

Keyframes are stored in the convention of a ``transforms.json`` (NeRF/OpenGL camera-to-world matrices in the
dataset's coordinates, ``camera_angle_x`` per frame or at the top), so a path file written by the app can be
edited by hand, and a scene's own ``transforms.json`` is a valid path. Between keyframes the position follows a
Catmull-Rom spline and the orientation a quaternion slerp, so the camera moves smoothly through every key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.cameras import NERF_OFFSET, NERF_SCALE, look_at, nerf_to_ngp, ngp_to_nerf
from ..errors import NgpError
from ..schema import read_json, validate
from ..schema.cameras import KeyframeFile

SCENE_CENTER = np.array([0.5, 0.5, 0.5])


@dataclass
class PathCamera:
    """One camera of a path in ngp space: c2w (3, 4) with OpenCV axes, vertical field of view in degrees."""

    c2w: np.ndarray
    fov_y_deg: float = 50.0


# ------------------------------------------------------------------------------------------------ rotations
def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """r: (3, 3) rotation -> unit quaternion (4,) as (w, x, y, z) with w >= 0."""
    m = np.asarray(r, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    else:
        i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2]]))  # the largest diagonal entry keeps the division stable
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = np.zeros(4)
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> (3, 3) rotation."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions along the shorter arc."""
    d = float(np.dot(q0, q1))
    if d < 0.0:
        q1, d = -q1, -d
    if d > 0.9995:  # nearly equal: linear interpolation is exact enough and avoids dividing by ~0
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(d)
    return (math.sin((1 - t) * theta) * q0 + math.sin(t * theta) * q1) / math.sin(theta)


def catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, t: float) -> np.ndarray:
    """Uniform Catmull-Rom point between p1 (t=0) and p2 (t=1)."""
    t2, t3 = t * t, t * t * t
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)


# ------------------------------------------------------------------------------------------------ paths
def orbit_path(n_frames: int, center: Sequence[float] = (0.5, 0.5, 0.5), radius: float = 1.5,
               elevation_deg: float = 20.0, fov_y_deg: float = 50.0, start_azimuth_deg: float = 0.0) -> list[PathCamera]:
    """A full turn around ``center`` (ngp y up) at constant elevation, ending one step short of the start so the
    video loops seamlessly."""
    c = np.asarray(center, dtype=np.float64)
    el = math.radians(elevation_deg)
    cams = []
    for i in range(n_frames):
        az = math.radians(start_azimuth_deg) + 2.0 * math.pi * i / n_frames
        eye = c + radius * np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        cams.append(PathCamera(look_at(eye, c).numpy().astype(np.float64), fov_y_deg))
    return cams


def interpolate_path(keys: Sequence[PathCamera], n_frames: int, loop: bool = False) -> list[PathCamera]:
    """``n_frames`` cameras passing through every keyframe in order (the first and, unless ``loop``, the last
    frame are keys); positions by Catmull-Rom, orientations by slerp, field of view linearly."""
    if not keys:
        raise NgpError("a camera path needs at least one keyframe")
    if len(keys) == 1 or n_frames == 1:
        return [PathCamera(keys[0].c2w.copy(), keys[0].fov_y_deg) for _ in range(n_frames)]
    pos = [np.asarray(k.c2w, dtype=np.float64)[:, 3] for k in keys]
    quats = [rotation_to_quaternion(np.asarray(k.c2w, dtype=np.float64)[:, :3]) for k in keys]
    n = len(keys)
    n_segments = n if loop else n - 1

    def point(i: int) -> np.ndarray:
        if loop:
            return pos[i % n]
        if i < 0:  # mirror the ends so the spline starts and stops along the path
            return 2 * pos[0] - pos[1]
        if i >= n:
            return 2 * pos[-1] - pos[-2]
        return pos[i]

    cams = []
    for f in range(n_frames):
        u = f * n_segments / (n_frames if loop else n_frames - 1)
        seg = min(int(u), n_segments - 1)
        t = u - seg
        p = catmull_rom(point(seg - 1), point(seg), point(seg + 1), point(seg + 2), t)
        r = quaternion_to_rotation(slerp(quats[seg % n], quats[(seg + 1) % n], t))
        fov = (1 - t) * keys[seg % n].fov_y_deg + t * keys[(seg + 1) % n].fov_y_deg
        cams.append(PathCamera(np.concatenate([r, p[:, None]], axis=1), fov))
    return cams


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


def sweep_path(n_frames: int, center: Sequence[float], radius: float, elevation_deg: float, fov_y_deg: float,
               start_deg: float, width_deg: float) -> list[PathCamera]:
    """Back and forth over an arc of azimuths (eased at the ends), for captures that do not go all around: the
    video stays where the model has seen the scene, and loops."""
    c = np.asarray(center, dtype=np.float64)
    el = math.radians(elevation_deg)
    cams = []
    for i in range(n_frames):
        phase = 0.5 - 0.5 * math.cos(2.0 * math.pi * i / n_frames)  # 0 -> 1 -> 0
        az = math.radians(start_deg + width_deg * phase)
        eye = c + radius * np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        cams.append(PathCamera(look_at(eye, c).numpy().astype(np.float64), fov_y_deg))
    return cams


FULL_ORBIT_DEGREES = 300.0  # captures covering less than this get a sweep instead of a full turn


def default_orbit(scene_meta: dict[str, Any], n_frames: int, fov_y_deg: float | None = None,
                  radius: float | None = None, elevation_deg: float | None = None) -> list[PathCamera]:
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


def path_cameras(spec: str | Path, scene_meta: dict[str, Any], n_frames: int, loop: bool = False,
                 keyframes: Sequence[PathCamera] | None = None, fov_y_deg: float | None = None,
                 radius: float | None = None, elevation_deg: float | None = None) -> list[PathCamera]:
    """The cameras of a video path: ``orbit`` (``default_orbit``), ``train`` (a tour of the training cameras),
    ``keyframes`` (the given ones), or the path of a keyframe JSON file."""
    if spec == "orbit":
        return default_orbit(scene_meta, n_frames, fov_y_deg, radius, elevation_deg)
    if spec == "train":
        return interpolate_path(training_keyframes(scene_meta), n_frames, loop)
    if spec == "keyframes":
        if not keyframes:
            raise NgpError("no keyframes: move the view and press K (or Add keyframe) a few times")
        return interpolate_path(keyframes, n_frames, loop)
    if not Path(spec).is_file():
        raise NgpError(f"--path {spec}: not orbit, train or an existing keyframe JSON file")
    return interpolate_path(load_keyframes(spec, scene_meta), n_frames, loop)


# ------------------------------------------------------------------------------------------------ files
def _nerf_space(scene_meta: dict[str, Any]) -> tuple[float, tuple[float, float, float]]:
    return float(scene_meta.get("scale", NERF_SCALE)), tuple(scene_meta.get("offset", NERF_OFFSET))  # type: ignore[return-value]


def load_keyframes(path: str | Path, scene_meta: dict[str, Any]) -> list[PathCamera]:
    """Keyframes from a JSON file in transforms.json convention (``frames[].transform_matrix``, optional
    ``camera_angle_y``/``camera_angle_x`` per frame or at the top, radians), checked against
    :class:`ngp_app.schema.cameras.KeyframeFile`."""
    p = Path(path)
    if not p.exists():
        raise NgpError(f"{p}: no such camera path file")
    data = validate(KeyframeFile, read_json(p), str(p))
    scale, offset = _nerf_space(scene_meta)
    aspect = 16.0 / 9.0
    keys = []
    for frame in data.frames:
        fov = 50.0
        for source in (frame, data):
            if source.camera_angle_y is not None:
                fov = math.degrees(source.camera_angle_y)
                break
            if source.camera_angle_x is not None:  # convert assuming the video's 16:9
                fov = math.degrees(2.0 * math.atan(math.tan(0.5 * source.camera_angle_x) / aspect))
                break
        keys.append(PathCamera(nerf_to_ngp(np.asarray(frame.transform_matrix), scale, offset), fov))
    return keys


def keyframes_json(keys: Sequence[PathCamera], scene_meta: dict[str, Any]) -> str:
    """The JSON text :func:`load_keyframes` reads back (matrices in the scene's NeRF coordinates)."""
    scale, offset = _nerf_space(scene_meta)
    frames = [
        {"transform_matrix": ngp_to_nerf(k.c2w, scale, offset).round(8).tolist(),
         "camera_angle_y": math.radians(k.fov_y_deg)}
        for k in keys
    ]
    return json.dumps({"frames": frames}, indent=2)
