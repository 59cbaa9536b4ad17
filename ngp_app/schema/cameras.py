"""Schemas of the camera files ``ngp render --camera cam.json`` reads and the keyframe files ``ngp video --path
keys.json`` (and the app) read: NeRF-convention camera-to-world matrices and fields of view in radians. A scene's
own ``transforms.json`` is a valid keyframe file, so its keys are known (not warned about) here."""

from __future__ import annotations

from pydantic import Field

from .core import Model
from .transforms import Angle, Frame, Pose, Transforms


class CameraFile(Model):
    """One camera: ``transform_matrix`` and, optionally, ``camera_angle_x`` (else ``--fov`` or 50 degrees)."""

    IGNORED = frozenset(Frame.model_fields) | Frame.IGNORED
    transform_matrix: Pose
    camera_angle_x: Angle = None


class Keyframe(Model):
    """One keyframe; its field of view (``camera_angle_y``, or ``camera_angle_x`` for a 16:9 video) wins over the
    file's."""

    IGNORED = frozenset(Frame.model_fields) | Frame.IGNORED
    transform_matrix: Pose
    camera_angle_x: Angle = None
    camera_angle_y: Angle = None


class KeyframeFile(Model):
    IGNORED = frozenset(Transforms.model_fields) | Transforms.IGNORED
    frames: list[Keyframe] = Field(min_length=1)
    camera_angle_x: Angle = None
    camera_angle_y: Angle = None
