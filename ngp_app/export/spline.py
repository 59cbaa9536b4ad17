"""Smooth interpolation through keyframes at given times: quaternion helpers and a time-knotted Catmull-Rom spline.

The spline is the Barry-Goldman pyramid of a non-uniform Catmull-Rom spline whose knots are the keyframes' times:
three levels of linear blends, with ``lerp`` for positions and field of view and ``slerp`` for orientations (on
the unit-quaternion sphere). With time knots the velocity through a key is the time-weighted average of the two
neighbouring segments' velocities, so the camera moves smoothly (C1 in position) and reaches every key at its
time. A path timed by chord length (``path_model.CameraPath.retime(even_speed=True)``) is the chordal variant,
which does not overshoot on uneven spacing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable, TypeVar

import numpy as np

T = TypeVar("T")


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
    """Quaternion (w, x, y, z), any non-zero length -> (3, 3) rotation (scaled by its largest entry first, so huge
    or tiny entries neither overflow nor underflow)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.abs(q).max()
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions along the shorter arc; ``t`` outside [0, 1] extrapolates along
    the same great circle (the spline's outer levels need that)."""
    d = float(np.dot(q0, q1))
    if d < 0.0:
        q1, d = -q1, -d
    if d > 0.9995:  # nearly equal: linear blending is exact enough and avoids dividing by ~0
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(min(d, 1.0))
    q = (math.sin((1 - t) * theta) * q0 + math.sin(t * theta) * q1) / math.sin(theta)
    return q / np.linalg.norm(q)


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + t * (b - a)


# ------------------------------------------------------------------------------------------------ spline
def pyramid(values: Sequence[T], knots: Sequence[float], t: float, blend: Callable[[T, T, float], T]) -> T:
    """The non-uniform Catmull-Rom value at time ``t`` between values[1] (knots[1]) and values[2] (knots[2]).

    values, knots: four control values and their strictly increasing times; ``blend(a, b, u)`` is ``lerp`` or
    ``slerp`` (u may leave [0, 1]). Barry and Goldman's recursive form: three levels of blends.
    """
    p0, p1, p2, p3 = values
    t0, t1, t2, t3 = knots

    def mix(a: T, b: T, ta: float, tb: float) -> T:
        return blend(a, b, (t - ta) / (tb - ta))

    a1, a2, a3 = mix(p0, p1, t0, t1), mix(p1, p2, t1, t2), mix(p2, p3, t2, t3)
    b1, b2 = mix(a1, a2, t0, t2), mix(a2, a3, t1, t3)
    return mix(b1, b2, t1, t2)


def control_points(n: int, segment: int, loop: bool) -> tuple[list[int], list[int]]:
    """Indices of the four control keys around ``segment`` (keys segment, segment+1) and how many path periods each
    is shifted by (loop: -1/0/+1; open paths: -1/+1 marks a phantom key mirrored at that end)."""
    idx, shift = [], []
    for k in range(segment - 1, segment + 3):
        if loop:
            idx.append(k % n)
            shift.append(k // n)
        elif k < 0:
            idx.append(0)
            shift.append(-1)
        elif k >= n:
            idx.append(n - 1)
            shift.append(1)
        else:
            idx.append(k)
            shift.append(0)
    return idx, shift
