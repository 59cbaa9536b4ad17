"""Pose conventions of an import (docs/import.md): COLMAP's world-to-camera poses become the NeRF camera-to-world
matrices of ``transforms.json``, then the scene is turned so the cameras' average up is +z, moved so the point
the cameras look at is the origin, scaled so the cameras sit CAMERA_DISTANCE from it on average, and given an
``aabb_scale`` that holds the sparse points. Pure numpy, so every rule is unit-tested on hand-built cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..cameras import NERF_SCALE

#: Mean distance of the cameras from the scene centre after normalisation, in transforms.json units (instant-ngp's
#: colmap2nerf uses the same); with the loader's scale 0.33 that is 1.32 ngp units, around the unit cube.
CAMERA_DISTANCE = 4.0
#: The box holds this percentile of the sparse points (stray far points from bad matches do not grow it).
AABB_PERCENTILE = 99.0
#: aabb_scale is a power of two in this range (instant-ngp's limits: 1 for an object, up to 128 for outdoor scenes).
AABB_MIN, AABB_MAX = 1, 128
#: The cameras' optical axes must spread at least this much (smallest eigenvalue of mean(I - d d^T), ~ the
#: squared sine of their angular spread) for their closest point to be a meaningful centre.
MIN_AXIS_SPREAD = 0.01


@dataclass(frozen=True)
class Similarity:
    """x -> scale * rotation @ x + translation, from COLMAP's world into transforms.json's."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def points(self, x: np.ndarray) -> np.ndarray:
        """Transform points (n, 3)."""
        return self.scale * np.asarray(x, dtype=np.float64) @ self.rotation.T + self.translation

    def poses(self, c2w: np.ndarray) -> np.ndarray:
        """Transform camera-to-world matrices (n, 4, 4): rotations turn, centres move as points."""
        out = np.array(c2w, dtype=np.float64, copy=True)
        out[:, :3, :3] = self.rotation @ out[:, :3, :3]
        out[:, :3, 3] = self.points(out[:, :3, 3])
        return out

    def matrix(self) -> np.ndarray:
        """(4, 4) homogeneous form."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m


def colmap_to_nerf_c2w(cam_from_world: np.ndarray) -> np.ndarray:
    """NeRF camera-to-world (4, 4) of a COLMAP pose ``cam_from_world`` (3|4, 4) = [R | t], x_cam = R x + t.

    The inverse is [R^T | -R^T t] with OpenCV camera axes (x right, y down, looking along +z); negating its y and z
    columns gives the OpenGL camera of transforms.json (x right, y up, looking along -z).
    """
    m = np.asarray(cam_from_world, dtype=np.float64)
    rot, t = m[:3, :3], m[:3, 3]
    c2w = np.eye(4)
    c2w[:3, :3] = rot.T
    c2w[:3, 3] = -rot.T @ t
    c2w[:3, 1:3] *= -1.0
    return c2w


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking direction ``a`` (3,) to direction ``b`` (3,) (Rodrigues)."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        # opposite: half a turn about any axis perpendicular to a
        helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + k + k @ k * ((1.0 - c) / (s * s))


def up_rotation(c2w: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) that turns the cameras' average up vector (their y columns; c2w: (n, 4, 4) OpenGL
    cameras) onto +z, the up axis of transforms.json; identity when the ups cancel out."""
    up = np.asarray(c2w, dtype=np.float64)[:, :3, 1].mean(axis=0)
    if np.linalg.norm(up) < 1e-9:
        return np.eye(3)
    return rotation_between(up, np.array([0.0, 0.0, 1.0]))


def focus_point(c2w: np.ndarray) -> np.ndarray | None:
    """The point (3,) closest to all cameras' optical axes in the least-squares sense (what an orbit looks at),
    or None when the axes are nearly parallel (a forward-facing capture) or the point lies behind the cameras.

    c2w: (n, 4, 4) OpenGL cameras (looking along -z). Minimises sum_i |(I - d_i d_i^T)(p - o_i)|^2.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    o, d = c2w[:, :3, 3], -c2w[:, :3, 2]
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    proj = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # (n, 3, 3) projections across each axis
    a = proj.sum(axis=0)
    if np.linalg.eigvalsh(a / len(c2w))[0] < MIN_AXIS_SPREAD:
        return None
    p = np.linalg.solve(a, np.einsum("nij,nj->i", proj, o))
    if np.median(np.einsum("ni,ni->n", p[None] - o, d)) <= 0.0:
        return None
    return p


def scene_centre(c2w: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, str]:
    """The scene's centre (3,) and how it was found: 'focus' (what the cameras look at), else 'points' (the
    sparse points' per-axis median), else 'cameras' (their mean position). c2w: (n, 4, 4); points: (m, 3)."""
    p = focus_point(c2w)
    if p is not None:
        return p, "focus"
    if len(points):
        return np.median(np.asarray(points, dtype=np.float64), axis=0), "points"
    return np.asarray(c2w, dtype=np.float64)[:, :3, 3].mean(axis=0), "cameras"


def normalise(c2w: np.ndarray, points: np.ndarray) -> tuple[Similarity, str]:
    """The similarity that puts a reconstruction into instant-ngp's expected frame: up alignment, then the
    centre at the origin, then the mean camera distance CAMERA_DISTANCE. c2w: (n, 4, 4) NeRF cameras in the
    reconstruction's world; points: (m, 3). Returns it and how the centre was found (``scene_centre``)."""
    rot = up_rotation(c2w)
    turned = Similarity(1.0, rot, np.zeros(3))
    c2w_r, points_r = turned.poses(c2w), turned.points(points) if len(points) else np.zeros((0, 3))
    centre, how = scene_centre(c2w_r, points_r)
    dist = float(np.linalg.norm(c2w_r[:, :3, 3] - centre, axis=1).mean())
    scale = CAMERA_DISTANCE / dist if dist > 1e-12 else 1.0
    return Similarity(scale, rot, -scale * centre), how


def aabb_scale_for(points: np.ndarray, scale: float = NERF_SCALE, percentile: float = AABB_PERCENTILE) -> int:
    """The smallest power of two in [AABB_MIN, AABB_MAX] whose box (side ``aabb_scale`` ngp units, centred on
    the transforms.json origin) holds ``percentile`` % of ``points`` (m, 3), given transforms.json's ``scale``
    (ngp units per transforms.json unit). No points: AABB_MIN."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return AABB_MIN
    half = float(np.percentile(np.abs(pts).max(axis=1), percentile))
    side = 2.0 * half * scale
    if not math.isfinite(side) or side <= AABB_MIN:
        return AABB_MIN
    return int(min(AABB_MAX, 2 ** math.ceil(math.log2(side) - 1e-9)))
