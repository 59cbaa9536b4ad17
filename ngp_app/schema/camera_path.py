"""Schemas of camera-path files: ours (``ngp-app camera path``, version 1), instant-ngp's (``base_cam.json``, the
testbed's *Save* of its camera path) and nerfstudio's (the viewer's exported ``camera_paths/*.json``).

Only the fields we use are declared; the others each tool writes are known (``IGNORED``) so they are not warned
about. Conventions and conversions are in ``export/path_files.py``.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from ..cli_args import MAX_FPS, MIN_FPS
from .core import Bool, IntIn, Model, Number, OneOf, Vector, Whole, expect, invalid
from .transforms import MAX_FOV_DEG, Pose, rigid

PATH_FORMAT = "ngp-app camera path"
PATH_VERSION = 1
MAX_SIDE = 16384
FovDegrees = Number(ge=1.0, le=MAX_FOV_DEG, text=f"a field of view in degrees in 1..{MAX_FOV_DEG:g}")
Seconds = Number(ge=0.0, le=1e6, text="a time in seconds >= 0")


def _nonzero(v: list[float]) -> list[float]:
    if math.fsum(x * x for x in v) < 1e-12:
        raise ValueError("zero")
    return v


def _json_text(v: Any) -> Any:
    """Old nerfstudio viewers wrote a keyframe's matrix as a JSON string of its 16 numbers."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            return v
    return v


Quaternion = Annotated[
    Vector(4), AfterValidator(_nonzero), expect("a quaternion [x, y, z, w] of 4 finite numbers, not all 0")
]
MAX_POSITION = 1e6  # ngp units: scenes span ~1..128; a key further out is a broken file


def _flat16(v: Any) -> Any:
    """nerfstudio reads a matrix as 16 numbers row by row, as 4 rows of 4, or (old viewers) as JSON text."""
    v = _json_text(v)
    if isinstance(v, list) and len(v) == 4 and all(isinstance(r, list) and len(r) == 4 for r in v):
        return [x for row in v for x in row]
    return v


def _rigid_flat(v: list[float]) -> list[float]:
    rigid([v[0:4], v[4:8], v[8:12], v[12:16]])
    return v


def _near(v: list[float]) -> list[float]:
    if max(abs(x) for x in v) > MAX_POSITION:
        raise ValueError("too far")
    return v


Flat4x4 = Annotated[
    Vector(16),
    BeforeValidator(_flat16),
    AfterValidator(_rigid_flat),
    expect("a 4x4 camera-to-world matrix (16 numbers row by row, or 4 rows of 4) whose 3x3 part is a rotation"),
]
Position = Annotated[
    Vector(3), AfterValidator(_near), expect(f"a position of 3 finite numbers within +-{MAX_POSITION:g}")
]
Fps = Number(ge=MIN_FPS, le=MAX_FPS)


# ------------------------------------------------------------------------------------------------ ours
class PathKey(Model):
    """One keyframe: time (seconds from the start), pose (NeRF camera-to-world in the scene's transforms.json
    coordinates, as a ``transform_matrix``) and vertical field of view in degrees."""

    time: Seconds
    transform_matrix: Pose
    fov: FovDegrees = 50.0


class PathFile(Model):
    """Our camera path: ``format``/``version`` identify it; keys in time order, the first at 0."""

    format: OneOf(PATH_FORMAT)
    version: IntIn(PATH_VERSION)
    keyframes: list[PathKey] = Field(min_length=1)
    duration: Seconds = None
    fps: Fps = 30.0
    loop: Bool = False
    width: Whole(2, MAX_SIDE) = None
    height: Whole(2, MAX_SIDE) = None

    @model_validator(mode="after")
    def _times(self) -> PathFile:
        times = [k.time for k in self.keyframes]
        if times[0] != 0.0:
            raise invalid(f"the first keyframe must be at time 0, got {times[0]:g}", "keyframes")
        for i in range(1, len(times)):
            if not times[i] > times[i - 1]:
                raise invalid(
                    f"keyframes[{i}].time {times[i]:g} is not after the previous key's {times[i - 1]:g}", "keyframes"
                )
        if self.loop and len(times) > 1 and self.duration is not None and not self.duration > times[-1]:
            raise invalid(f"a looping path's duration ({self.duration:g}) must exceed its last key's time", "duration")
        return self


# ------------------------------------------------------------------------------------------------ instant-ngp
class NgpKey(Model):
    """instant-ngp's ``CameraKeyframe``: rotation ``R`` as a quaternion [x, y, z, w] (Eigen's coefficient order,
    kept by tiny-cuda-nn's JSON binding) and position ``T`` of the ngp-space camera-to-world, ``fov`` in degrees
    along the testbed's fov axis (vertical by default), ``timestamp`` (seconds, newer versions)."""

    IGNORED = frozenset({"slice", "scale", "aperture_size", "dof", "glow_mode", "glow_y_cutoff"})
    R: Quaternion
    T: Position
    fov: Number(gt=0, lt=180) = 50.625  # the testbed's default view
    timestamp: Number(ge=0) = None


class NgpPathFile(Model):
    IGNORED = frozenset({"time", "spline_order", "render_settings"})
    path: list[NgpKey] = Field(min_length=1)
    loop: Bool = False
    duration_seconds: Number(ge=0) = None


# ------------------------------------------------------------------------------------------------ nerfstudio
class NsFrame(Model):
    """A frame of nerfstudio's dense ``camera_path``: OpenGL camera-to-world (dataparser coordinates), vertical
    field of view in degrees."""

    IGNORED = frozenset({"render_time"})
    camera_to_world: Flat4x4
    fov: Number(gt=0, lt=180)
    aspect: Number(gt=0) = None


class NsKeyframe(Model):
    IGNORED = frozenset({"properties", "render_time", "override_time_enabled", "timestamp"})
    matrix: Flat4x4
    fov: Number(gt=0, lt=180) = None
    aspect: Number(gt=0) = None
    override_transition_enabled: Bool | None = None
    override_transition_sec: Number(gt=0) | None = None


class NsPathFile(Model):
    IGNORED = frozenset({"smoothness_value", "crop", "default_time", "render_time"})
    camera_path: list[NsFrame] = None
    keyframes: list[NsKeyframe] = None
    camera_type: OneOf(
        "perspective", "fisheye", "equirectangular", "omnidirectional", "vr180", case_sensitive=False
    ) = "perspective"
    render_width: Whole(1, MAX_SIDE) = None
    render_height: Whole(1, MAX_SIDE) = None
    fps: Fps = None
    seconds: Number(gt=0, le=1e6) = None
    is_cycle: Bool = False
    default_fov: Number(gt=0, lt=180) = None
    default_transition_sec: Number(gt=0) = None

    @model_validator(mode="after")
    def _frames(self) -> NsPathFile:
        if not self.camera_path and not self.keyframes:
            raise invalid("expected a non-empty 'camera_path' or 'keyframes' list", "camera_path")
        if self.camera_type.lower() != "perspective":
            raise invalid(f"only perspective camera paths can be rendered, not {self.camera_type!r}", "camera_type")
        return self


class DataparserTransforms(Model):
    """nerfstudio's ``dataparser_transforms.json``: the 3x4 ``transform`` and ``scale`` it applied to the poses of
    transforms.json (poses = scale * (transform @ pose))."""

    transform: Pose
    scale: Number(gt=0)
