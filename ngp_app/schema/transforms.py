"""Schema of the ``transforms.json`` fields the scene loader uses (instant-ngp / nerfstudio / NeRF-synthetic), plus
the field types camera and keyframe files share with it (poses, angles).

Intrinsics may sit at the top level or in a frame (a frame's value wins); which of them give the focal length is
decided per frame by the loader (``data/loaders.py``), the types and ranges here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, Field

from .core import Bool, Model, Number, OneOf, Text, Vector, Whole, expect, finite_matrix

# nerfstudio / COLMAP camera model names (``camera_model``); instant-ngp marks fisheye captures with ``is_fisheye``.
PERSPECTIVE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "FULL_OPENCV")
FISHEYE_MODELS = ("OPENCV_FISHEYE", "FISHEYE", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE")

MAX_FOV_DEG = 179.0  # a perspective camera's field of view (180 degrees: every ray leaves sideways)
AABB_SCALE_RANGE = (1.0 / 16.0, 128.0)  # instant-ngp: 1..128 (8 occupancy cascades at most)
MAX_IMAGE_SIDE = 1 << 16
ROTATION_TOLERANCE = 0.1  # singular values of a pose's 3x3 part must be within 1 +- this (a rotation, maybe noisy)


def rigid(m: list[list[float]]) -> list[list[float]]:
    """A camera-to-world matrix whose 3x3 part is a rotation (rejects all-zero and absurdly scaled poses)."""
    s = np.linalg.svd(np.asarray(m, dtype=np.float64)[:3, :3], compute_uv=False)
    if not (np.abs(s - 1.0) <= ROTATION_TOLERANCE).all():
        raise ValueError("not a rotation")
    return m


Angle = Number(
    gt=0,
    le=math.radians(MAX_FOV_DEG),
    text=f"an angle in radians in (0, {math.radians(MAX_FOV_DEG):.4f}] (up to {MAX_FOV_DEG:g} degrees)",
)
Pose = Annotated[
    Any,
    AfterValidator(finite_matrix(((4, 4), (3, 4)))),
    AfterValidator(rigid),
    expect("a 4x4 (or 3x4) camera-to-world matrix of finite numbers whose 3x3 part is a rotation"),
]
Coefficient = Number()


class Intrinsics(Model):
    """Lens and image keys valid both at the top level and in a frame."""

    fl_x: Number(gt=0) = None
    fl_y: Number(gt=0) = None
    camera_angle_x: Angle = None
    camera_angle_y: Angle = None
    cx: Coefficient = None
    cy: Coefficient = None
    w: Whole(1, MAX_IMAGE_SIDE) = None
    h: Whole(1, MAX_IMAGE_SIDE) = None
    k1: Coefficient = 0.0
    k2: Coefficient = 0.0
    k3: Coefficient = 0.0
    k4: Coefficient = 0.0
    p1: Coefficient = 0.0
    p2: Coefficient = 0.0
    camera_model: OneOf(*PERSPECTIVE_MODELS, *FISHEYE_MODELS, case_sensitive=False) = None
    is_fisheye: Bool = False


class Frame(Intrinsics):
    """One image and its pose (per-frame intrinsics override the file's), and optionally nerfstudio's mask of the
    pixels that count (``data/masks.py``)."""

    IGNORED = frozenset({"sharpness", "rotation", "colmap_im_id", "depth_path", "depth_file_path", "time"})
    file_path: Text
    transform_matrix: Pose
    mask_path: Text = None


class Transforms(Intrinsics):
    """A whole ``transforms.json`` (or one of NeRF-synthetic's ``transforms_{split}.json``)."""

    IGNORED = frozenset(
        {
            "ngp_import",
            "applied_transform",
            "ply_file_path",
            "sharpness",
            "integer_depth_scale",
            "enable_depth_loading",
            "n_extra_learnable_dims",
            "render_aabb",
            "aabb",
            "up",
            "totp",
            "avglen",
            "orientation_override",
        }
    )
    frames: list[Frame]
    aabb_scale: Number(ge=AABB_SCALE_RANGE[0], le=AABB_SCALE_RANGE[1]) = 1.0
    scale: Number(gt=0, le=1e6) = 0.33
    offset: Vector(3) = Field(default_factory=lambda: [0.5, 0.5, 0.5])
