"""The viewer's orbit/fly camera in ngp space (world up +y, OpenCV camera axes)."""

from __future__ import annotations

import functools
import math
import threading
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from ..data.cameras import Camera, look_at, orbit_direction

SCENE_CENTER = (0.5, 0.5, 0.5)
MAX_PITCH = math.radians(89.0)
F = TypeVar("F", bound=Callable[..., Any])


def _locked(fn: F) -> F:
    """Run a method under the camera's lock: the UI thread moves it while the render thread reads it."""

    @functools.wraps(fn)
    def wrapper(self: OrbitCamera, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class OrbitCamera:
    """Orbits ``target`` at ``distance``; ``yaw``/``pitch`` (radians) give the direction from target to eye.

    Every change bumps ``version`` so renderers can tell a moving camera from a still one. Changes and reads of
    the pose are atomic (a lock), so another thread never sees half of a move. ``show_pose`` shows an exact pose
    (a camera-path key or preview frame, roll included) until the next move, which starts from it.
    """

    def __init__(
        self, target=SCENE_CENTER, distance: float = 1.6, yaw: float = 0.6, pitch: float = 0.35, fov_deg: float = 50.0
    ) -> None:
        self._lock = threading.RLock()
        self.home = (tuple(float(v) for v in target), float(distance), float(yaw), float(pitch), float(fov_deg))
        self.version = 0
        self.reset()

    # ------------------------------------------------------------------------------------------ geometry
    @_locked
    def reset(self) -> None:
        self.pose: np.ndarray | None = None
        target, self.distance, self.yaw, self.pitch, self.fov_deg = self.home
        self.target = np.array(target, dtype=np.float64)
        self.version += 1

    @_locked
    def set_home(self, target, distance: float) -> None:
        """New default view (e.g. for a new scene), applied now."""
        self.home = (tuple(float(v) for v in target), float(distance), *self.home[2:])
        self.reset()

    @_locked
    def direction(self) -> np.ndarray:
        """Unit vector from target to eye."""
        return orbit_direction(self.yaw, self.pitch)

    @property
    @_locked
    def eye(self) -> np.ndarray:
        return self.target + self.distance * self.direction()

    @_locked
    def c2w(self) -> torch.Tensor:
        if self.pose is not None:
            return torch.tensor(self.pose, dtype=torch.float32)
        return look_at(self.eye, self.target)

    @_locked
    def show_pose(self, c2w: np.ndarray, fov_deg: float) -> None:
        """Show exactly ``c2w`` (3, 4) with vertical ``fov_deg``; orbiting, panning, zooming or flying continue from
        it (upright)."""
        self.look_from(c2w)
        self.fov_deg = float(fov_deg)
        self.pose = np.array(c2w, dtype=np.float64)[:3, :4]

    @_locked
    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera right, down and forward in world space."""
        m = self.c2w().numpy().astype(np.float64)
        return m[:, 0], m[:, 1], m[:, 2]

    @_locked
    def camera(self, width: int, height: int) -> Camera:
        fy = 0.5 * height / math.tan(math.radians(self.fov_deg) / 2.0)
        return Camera(self.c2w(), fy, fy, width / 2.0, height / 2.0, int(width), int(height))

    # ------------------------------------------------------------------------------------------ controls
    @_locked
    def orbit(self, dx: float, dy: float, speed: float = 0.01) -> None:
        """Mouse drag in pixels: right drags turn the view around the target, up drags raise the eye."""
        self.pose = None
        self.yaw -= dx * speed
        self.pitch = min(MAX_PITCH, max(-MAX_PITCH, self.pitch - dy * speed))
        self.version += 1

    @_locked
    def pan(self, dx: float, dy: float, speed: float = 0.0015) -> None:
        """Move the target in the view plane with the drag (scaled by distance)."""
        self.pose = None
        right, down, _ = self.basis()
        self.target = self.target - (right * dx - down * dy) * speed * self.distance
        self.version += 1

    @_locked
    def zoom(self, steps: float, factor: float = 0.9) -> None:
        """Positive steps move closer."""
        self.pose = None
        self.distance = float(min(100.0, max(0.02, self.distance * factor**steps)))
        self.version += 1

    @_locked
    def fly(self, forward: float, right: float, up: float, amount: float) -> None:
        """Move eye and target together along the view axes (``amount`` in scene units)."""
        self.pose = None
        r, _, f = self.basis()
        world_up = np.array([0.0, 1.0, 0.0])
        delta = (f * forward + r * right + world_up * up) * amount
        self.target = self.target + delta
        self.version += 1

    @_locked
    def set_fov(self, fov_deg: float) -> None:
        self.fov_deg = float(min(150.0, max(5.0, fov_deg)))
        self.version += 1

    @_locked
    def look_from(
        self, c2w: torch.Tensor | np.ndarray, fy: float | None = None, height: int | None = None, center=SCENE_CENTER
    ) -> None:
        """Snap to a camera-to-world matrix (roll is dropped: the view stays upright)."""
        self.pose = None
        m = np.asarray(c2w, dtype=np.float64)[:3, :4]
        eye, forward = m[:, 3], m[:, 2] / np.linalg.norm(m[:, 2])
        dist = float(np.dot(np.asarray(center) - eye, forward))
        dist = dist if dist > 0.05 else float(np.linalg.norm(np.asarray(center) - eye)) or 1.0
        self.target = eye + forward * dist
        self.distance = dist
        d = -forward
        self.yaw = math.atan2(d[0], d[2])
        self.pitch = min(MAX_PITCH, max(-MAX_PITCH, math.asin(max(-1.0, min(1.0, d[1])))))
        if fy and height:
            self.fov_deg = math.degrees(2.0 * math.atan(0.5 * height / fy))
        self.version += 1


def nearest_camera(c2ws: np.ndarray, eye: np.ndarray, forward: np.ndarray) -> int:
    """Index of the training camera closest to the view: position distance plus a penalty on direction."""
    pos = np.linalg.norm(c2ws[:, :, 3] - eye[None], axis=1)
    fwd = c2ws[:, :, 2] / np.linalg.norm(c2ws[:, :, 2], axis=1, keepdims=True)
    return int(np.argmin(pos + 0.5 * (1.0 - fwd @ forward)))
