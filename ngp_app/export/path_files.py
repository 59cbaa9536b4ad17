"""Camera-path files: ours (save and load), instant-ngp's and nerfstudio's (import), and keyframes in the
transforms.json convention (the app's older *Save keyframes* files, or a scene's own transforms.json).

``load_path`` tells the formats apart by their keys and returns a :class:`~.path_model.CameraPath` in ngp space.
Conventions (docs/export.md, "Camera paths"):

- **ours** (``"format": "ngp-app camera path", "version": 1``): keys with ``time`` (s), ``fov`` (vertical,
  degrees) and ``transform_matrix`` (NeRF/OpenGL camera-to-world in the scene's transforms.json coordinates, so a
  path is independent of the scale/offset ngp space uses), plus ``duration``, ``fps``, ``loop``, ``width``/``height``.
- **instant-ngp** (``{"path": [{"R", "T", "fov", ...}], "loop", "duration_seconds"}``): poses are already in ngp
  space (the testbed's camera matrix: OpenCV axes, the scene's scale/offset and axis cycle applied, which our ngp
  space shares for the same transforms.json); ``R`` is [x, y, z, w]. Key k is reached at ``path[k-1].timestamp``
  (key 0 at 0; the testbed's convention) when timestamps increase, else keys are evenly spaced. Its B-spline
  smooths past the keys; we pass through them.
- **nerfstudio** (``camera_path`` of dense frames and/or ``keyframes``; ``render_width/height``, ``fps``,
  ``seconds``, ``is_cycle``): OpenGL camera-to-world matrices in nerfstudio's dataparser coordinates, which are the
  transforms.json ones after ``dataparser_transforms.json`` (``scale * (transform @ pose)``): pass that file (it is
  in the run's output folder), or put it next to the path file; without it the path is taken to be in the scene's
  transforms.json coordinates (true with ``--orientation-method none --center-method none --auto-scale-poses
  False``) and a warning says so.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..data.cameras import NERF_OFFSET, NERF_SCALE, nerf_to_ngp, ngp_to_nerf
from ..errors import NgpError
from ..schema import read_json, validate
from ..schema.camera_path import PATH_FORMAT, PATH_VERSION, DataparserTransforms, NgpPathFile, NsPathFile, PathFile
from ..schema.cameras import KeyframeFile
from .path_model import SECONDS_PER_KEY, CameraPath, Keyframe
from .spline import quaternion_to_rotation

log = logging.getLogger("ngp_app")

FORMATS = ("ngp-app", "instant-ngp", "nerfstudio", "transforms")
VIDEO_ASPECT = 16.0 / 9.0  # for horizontal-only fields of view (camera_angle_x) in transforms-style keyframes
DATAPARSER_FILE = "dataparser_transforms.json"


def nerf_space(scene_meta: dict[str, Any]) -> tuple[float, tuple[float, float, float]]:
    """The scene's transforms.json -> ngp scale and offset (instant-ngp's defaults without a scene)."""
    return float(scene_meta.get("scale", NERF_SCALE)), tuple(scene_meta.get("offset", NERF_OFFSET))  # type: ignore[return-value]


def detect_format(data: Any) -> str:
    """Which camera-path format parsed JSON ``data`` is (one of ``FORMATS``); raises NgpError for none."""
    if isinstance(data, dict):
        if "format" in data or "version" in data:
            return "ngp-app"
        if "path" in data:
            return "instant-ngp"
        if "camera_path" in data or "keyframes" in data:
            return "nerfstudio"
        if "frames" in data:
            return "transforms"
    raise NgpError(
        "not a camera path: expected ours ('format': 'ngp-app camera path'), instant-ngp's ('path': "
        "[{R, T, fov}]), nerfstudio's ('camera_path' / 'keyframes') or transforms.json-style 'frames'"
    )


def path_format(path: str | Path) -> str:
    """Which camera-path format the file at ``path`` is (``detect_format``)."""
    try:
        return detect_format(read_json(Path(path)))
    except NgpError as exc:
        raise NgpError(f"{path}: {exc}") from None


def load_path(
    path: str | Path, scene_meta: dict[str, Any], dataparser_transforms: str | Path | None = None, dense: bool = False
) -> CameraPath:
    """Read any supported camera-path file into ngp space (``scene_meta``: the scene's ``scale``/``offset``).

    dense: for nerfstudio files with both, use the dense ``camera_path`` frames as keys (reproduces its video
    exactly) instead of its editable ``keyframes``."""
    p = Path(path)
    if not p.exists():
        raise NgpError(f"{p}: no such camera path file")
    data = read_json(p)
    try:
        kind = detect_format(data)
    except NgpError as exc:
        raise NgpError(f"{p}: {exc}") from None
    if kind == "ngp-app":
        cam_path = _from_ours(validate(PathFile, data, str(p)), scene_meta)
    elif kind == "instant-ngp":
        cam_path = _from_instant_ngp(validate(NgpPathFile, data, str(p)))
    elif kind == "nerfstudio":
        transform = _find_dataparser_transforms(p, dataparser_transforms)
        cam_path = _from_nerfstudio(validate(NsPathFile, data, str(p)), scene_meta, transform, dense, p)
    else:
        cam_path = _from_transforms(validate(KeyframeFile, data, str(p)), scene_meta)
    try:
        return cam_path.validate()
    except NgpError as exc:
        raise NgpError(f"{p}: {exc}") from None


# ------------------------------------------------------------------------------------------------ ours
def inline_path(data: PathFile, scene_meta: dict[str, Any], source: str) -> CameraPath:
    """A camera path of our format held inside another file (a render job's ``camera_path``), in ngp space."""
    try:
        return _from_ours(data, scene_meta).validate()
    except NgpError as exc:
        raise NgpError(f"{source}: {exc}") from None


def path_to_json(path: CameraPath, scene_meta: dict[str, Any]) -> str:
    """Our file format's text for ``path`` (poses in the scene's transforms.json coordinates)."""
    path.validate()
    scale, offset = nerf_space(scene_meta)
    out: dict[str, Any] = {
        "format": PATH_FORMAT,
        "version": PATH_VERSION,
        "duration": round(path.end_time, 6),
        "fps": path.fps,
        "loop": path.loop,
    }
    if path.resolution is not None:
        out["width"], out["height"] = int(path.resolution[0]), int(path.resolution[1])
    out["keyframes"] = [
        {
            "time": round(k.time, 6),
            "fov": round(k.fov_y_deg, 6),
            "transform_matrix": ngp_to_nerf(k.c2w, scale, offset).round(8).tolist(),
        }
        for k in path.keys
    ]
    return json.dumps(out, indent=1)


def save_path(file: str | Path, path: CameraPath, scene_meta: dict[str, Any]) -> Path:
    """Write ``path`` in our format atomically; returns the file's path."""
    from ..fileio import atomic_write_text

    text = path_to_json(path, scene_meta)
    atomic_write_text(file, text)
    return Path(file)


def _from_ours(data: PathFile, scene_meta: dict[str, Any]) -> CameraPath:
    scale, offset = nerf_space(scene_meta)
    keys = [
        Keyframe(nerf_to_ngp(np.asarray(k.transform_matrix), scale, offset), float(k.fov), float(k.time))
        for k in data.keyframes
    ]
    resolution = (int(data.width), int(data.height)) if data.width and data.height else None
    path = CameraPath(keys, 0.0, float(data.fps), bool(data.loop), resolution)
    if data.loop and len(keys) > 1:
        path.duration = float(data.duration) if data.duration is not None else keys[-1].time + SECONDS_PER_KEY
    else:
        path.duration = keys[-1].time
    return path


# ------------------------------------------------------------------------------------------------ instant-ngp
def _from_instant_ngp(data: NgpPathFile) -> CameraPath:
    keys = []
    for k in data.path:
        x, y, z, w = k.R
        m = np.concatenate([quaternion_to_rotation(np.array([w, x, y, z])), np.asarray(k.T)[:, None]], axis=1)
        keys.append(Keyframe(m, float(min(max(k.fov, 1.0), 179.0)), 0.0))
    n, loop = len(keys), bool(data.loop) and len(keys) > 1
    path = CameraPath(keys, 0.0, 30.0, loop)
    stamps = [k.timestamp for k in data.path]
    valid = n > 1 and all(s is not None for s in stamps) and all(b > a for a, b in zip([0.0] + stamps[:-1], stamps))  # type: ignore[operator]
    if not valid:
        path.retime()
        return path
    times = [0.0] + [float(s) for s in stamps[:-1]]  # type: ignore[arg-type]
    period = float(stamps[-1]) if loop else times[-1]  # type: ignore[arg-type]
    # The testbed's editor writes timestamps in (0, 1] with duration_seconds 1; recorded paths are in seconds.
    seconds = float(data.duration_seconds or 0.0)
    stretch = 1.0 if seconds > 1.0 else SECONDS_PER_KEY * (n if loop else n - 1) / period
    for key, t in zip(keys, times):
        key.time = t * stretch
    path.duration = period * stretch if loop else keys[-1].time
    return path


# ------------------------------------------------------------------------------------------------ nerfstudio
def _find_dataparser_transforms(path_file: Path, given: str | Path | None) -> DataparserTransforms | None:
    candidates = (
        [Path(given)] if given else [path_file.parent / DATAPARSER_FILE, path_file.parent.parent / DATAPARSER_FILE]
    )
    for c in candidates:
        if c.is_file() or given:
            return validate(DataparserTransforms, read_json(c), str(c))
    log.warning(
        "%s: nerfstudio camera path without %s (give it with --dataparser-transforms or put it next to the "
        "path): assuming the path is in the scene's transforms.json coordinates",
        path_file,
        DATAPARSER_FILE,
    )
    return None


def _ns_to_nerf(flat: list[float], transform: DataparserTransforms | None) -> np.ndarray:
    """A nerfstudio camera-to-world (16 numbers, row-major, OpenGL axes, dataparser space) -> transforms.json space."""
    m = np.asarray(flat, dtype=np.float64).reshape(4, 4)[:3]
    if transform is None:
        return m
    t = np.asarray(transform.transform, dtype=np.float64)[:3]
    r, offset = t[:, :3], t[:, 3]
    rot = r.T @ m[:, :3]
    pos = r.T @ (m[:, 3] / float(transform.scale) - offset)
    return np.concatenate([rot, pos[:, None]], axis=1)


def _from_nerfstudio(
    data: NsPathFile, scene_meta: dict[str, Any], transform: DataparserTransforms | None, dense: bool, source: Path
) -> CameraPath:
    scale, offset = nerf_space(scene_meta)
    fps = float(data.fps or 30.0)
    loop = bool(data.is_cycle)
    resolution = (int(data.render_width), int(data.render_height)) if data.render_width and data.render_height else None
    use_frames = bool(data.camera_path) and (dense or not data.keyframes)
    if use_frames:
        frames = data.camera_path or []
        keys = [
            Keyframe(
                nerf_to_ngp(_ns_to_nerf(f.camera_to_world, transform), scale, offset),
                float(min(max(f.fov, 1.0), 179.0)),
                i / fps,
            )
            for i, f in enumerate(frames)
        ]
        path = CameraPath(keys, 0.0, fps, loop and len(keys) > 1, resolution)
        path.duration = len(keys) / fps if path.loop else keys[-1].time
        return path
    kfs = data.keyframes or []
    default_fov = float(data.default_fov or 50.0)
    keys = [
        Keyframe(
            nerf_to_ngp(_ns_to_nerf(k.matrix, transform), scale, offset),
            float(min(max(k.fov if k.fov is not None else default_fov, 1.0), 179.0)),
            0.0,
        )
        for k in kfs
    ]
    loop = loop and len(keys) > 1
    path = CameraPath(keys, 0.0, fps, loop, resolution)
    if len(keys) == 1:
        return path
    n_segments = len(keys) if loop else len(keys) - 1
    default = float(data.default_transition_sec or 1.0)
    # nerfstudio: a key's transition is the time to reach it from the previous key (key 0's closes a loop)
    transitions = [
        k.override_transition_sec if k.override_transition_enabled and k.override_transition_sec else default
        for k in kfs
    ]
    gaps = (transitions[1:] + transitions[:1])[:n_segments]
    total = float(sum(gaps))
    stretch = float(data.seconds) / total if data.seconds else 1.0
    t = 0.0
    for key, gap in zip(keys, [0.0] + gaps):
        t += gap * stretch
        key.time = t
    path.duration = total * stretch if loop else keys[-1].time
    if not math.isfinite(path.duration):
        raise NgpError(f"{source}: keyframe transitions do not add up to a finite duration")
    return path


# ------------------------------------------------------------------------------------------------ transforms
def _from_transforms(data: KeyframeFile, scene_meta: dict[str, Any]) -> CameraPath:
    """Keyframes in transforms.json convention, evenly spaced (``SECONDS_PER_KEY`` apart)."""
    scale, offset = nerf_space(scene_meta)
    keys = []
    for frame in data.frames:
        fov = 50.0
        for source in (frame, data):
            if source.camera_angle_y is not None:
                fov = math.degrees(source.camera_angle_y)
                break
            if source.camera_angle_x is not None:  # convert assuming the video's 16:9
                fov = math.degrees(2.0 * math.atan(math.tan(0.5 * source.camera_angle_x) / VIDEO_ASPECT))
                break
        keys.append(Keyframe(nerf_to_ngp(np.asarray(frame.transform_matrix), scale, offset), fov, 0.0))
    path = CameraPath(keys)
    path.retime()
    return path
