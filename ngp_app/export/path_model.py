"""The camera path of a video: keyframes with a time (seconds) and field of view each, the whole path's duration and
frame rate, an optional loop, and the smooth camera at any time between (``spline``).

Poses are ngp-space camera-to-world matrices (OpenCV camera axes, docs/conventions.md), as the renderer and the
app's camera use; files store them in the scene's transforms.json coordinates (``path_files``). The editing
operations (add, insert, replace, delete, move, retime) keep the key times strictly increasing, so every edit
leaves a valid path; the app's editor and the tests drive them directly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..cli_args import MAX_VIDEO_FRAMES
from ..errors import NgpError
from .spline import control_points, lerp, pyramid, quaternion_to_rotation, rotation_to_quaternion, slerp

DEFAULT_FOV = 50.0
DEFAULT_FPS = 30.0
SECONDS_PER_KEY = 2.0  # spacing of keys added without a time, and a new path's duration per segment
MIN_GAP = 1e-3  # seconds between two keys at least
FOV_RANGE = (1.0, 179.0)


def check_frame_count(n: int, what: str) -> int:
    """``n`` when a video may have that many frames (``cli_args.MAX_VIDEO_FRAMES``), else a one-line NgpError
    naming ``what`` made the count and the options that change it."""
    if n > MAX_VIDEO_FRAMES:
        raise NgpError(
            f"the video would have {n} frames ({what}); at most {MAX_VIDEO_FRAMES}: lower --frames, --fps or "
            f"--seconds (or the path's duration)"
        )
    return n


@dataclass
class PathCamera:
    """One camera of a path in ngp space: c2w (3, 4) with OpenCV axes, vertical field of view in degrees."""

    c2w: np.ndarray
    fov_y_deg: float = DEFAULT_FOV


@dataclass
class Keyframe:
    """A key of a camera path: pose (ngp c2w (3, 4)), vertical field of view (degrees) and time (seconds)."""

    c2w: np.ndarray
    fov_y_deg: float = DEFAULT_FOV
    time: float = 0.0

    def camera(self) -> PathCamera:
        return PathCamera(np.array(self.c2w, dtype=np.float64), float(self.fov_y_deg))


def _check_pose(c2w: np.ndarray) -> np.ndarray:
    m = np.asarray(c2w, dtype=np.float64)[:3, :4]
    if m.shape != (3, 4) or not np.isfinite(m).all():
        raise NgpError("a keyframe needs a finite 3x4 camera-to-world matrix")
    return m.copy()


@dataclass
class CameraPath:
    """Keyframes in time order, the path's ``duration`` (seconds) and ``fps``; ``loop`` closes the path back to the
    first key, which it reaches again at ``duration``. Without loop the path ends at the last key's time, and
    ``duration`` equals it. ``resolution`` (width, height) is the size the path was made for, when a file says."""

    keys: list[Keyframe] = field(default_factory=list)
    duration: float = 0.0
    fps: float = DEFAULT_FPS
    loop: bool = False
    resolution: tuple[int, int] | None = None

    # -------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_cameras(
        cls, cameras: Sequence[PathCamera], duration: float | None = None, fps: float = DEFAULT_FPS, loop: bool = False
    ) -> CameraPath:
        """Keys at evenly spaced times (``SECONDS_PER_KEY`` apart unless ``duration`` is given)."""
        path = cls([Keyframe(_check_pose(c.c2w), float(c.fov_y_deg), 0.0) for c in cameras], 0.0, fps, loop)
        n_segments = len(path.keys) if loop else len(path.keys) - 1
        path.retime(duration if duration is not None else SECONDS_PER_KEY * max(n_segments, 1))
        return path

    def copy(self) -> CameraPath:
        return replace(self, keys=[Keyframe(k.c2w.copy(), k.fov_y_deg, k.time) for k in self.keys])

    # -------------------------------------------------------------------------------------------- checks
    def validate(self) -> CameraPath:
        """Raise NgpError unless times increase strictly from 0, fields of view and fps are sane; returns self."""
        if not self.keys:
            raise NgpError("a camera path needs at least one keyframe")
        times = [k.time for k in self.keys]
        if abs(times[0]) > 1e-9:
            raise NgpError(f"the first keyframe must be at time 0, not {times[0]:g} s")
        for i in range(1, len(times)):
            if not times[i] > times[i - 1]:
                raise NgpError(f"keyframe {i} at {times[i]:g} s is not after keyframe {i - 1} at {times[i - 1]:g} s")
        for i, k in enumerate(self.keys):
            if not FOV_RANGE[0] <= k.fov_y_deg <= FOV_RANGE[1]:
                raise NgpError(f"keyframe {i} has a field of view of {k.fov_y_deg:g} degrees (1..179)")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise NgpError(f"frame rate {self.fps} must be positive")
        if self.loop and len(self.keys) > 1 and not self.duration > times[-1]:
            raise NgpError(f"a looping path's duration ({self.duration:g} s) must exceed its last key's time")
        return self

    @property
    def end_time(self) -> float:
        """Time at which the path ends: ``duration`` for a loop, the last key's time otherwise."""
        if not self.keys:
            return 0.0
        return self.duration if self.loop and len(self.keys) > 1 else self.keys[-1].time

    # -------------------------------------------------------------------------------------------- evaluation
    def _knot(self, index: int, shift: int) -> float:
        n = len(self.keys)
        if self.loop:
            return self.keys[index].time + shift * self.duration
        if shift < 0:  # phantom before the first key, mirrored
            return 2 * self.keys[0].time - self.keys[1].time
        if shift > 0:
            return 2 * self.keys[n - 1].time - self.keys[n - 2].time
        return self.keys[index].time

    def _controls(self, segment: int) -> tuple[list[float], list[np.ndarray], list[np.ndarray], list[float]]:
        n = len(self.keys)
        idx, shift = control_points(n, segment, self.loop)
        knots = [self._knot(i, s) for i, s in zip(idx, shift)]
        pos = [self.keys[i].c2w[:, 3] for i in idx]
        quats = [rotation_to_quaternion(self.keys[i].c2w[:, :3]) for i in idx]
        fovs = [self.keys[i].fov_y_deg for i in idx]
        if not self.loop:  # phantom keys mirror the end segment (a straight, even start and stop)
            if shift[0] < 0:  # before key 0 = pos[1], mirrored away from key 1 = pos[2]
                pos[0], quats[0], fovs[0] = 2 * pos[1] - pos[2], slerp(quats[2], quats[1], 2.0), 2 * fovs[1] - fovs[2]
            if shift[3] > 0:  # after the last key = pos[2], mirrored away from pos[1]
                pos[3], quats[3], fovs[3] = 2 * pos[2] - pos[1], slerp(quats[1], quats[2], 2.0), 2 * fovs[2] - fovs[1]
        return knots, pos, quats, fovs

    def segment_at(self, t: float) -> int:
        """Index of the segment (keys i, i+1; the closing one for a loop) holding time ``t`` (clamped)."""
        times = [k.time for k in self.keys]
        n_segments = len(times) if self.loop else len(times) - 1
        return min(max(bisect.bisect_right(times, t) - 1, 0), n_segments - 1)

    def evaluate(self, t: float) -> PathCamera:
        """The camera at time ``t`` seconds (clamped to the path; a loop wraps)."""
        if not self.keys:
            raise NgpError("a camera path needs at least one keyframe")
        n = len(self.keys)
        if n == 1:
            return self.keys[0].camera()
        t = float(t) % self.duration if self.loop else min(max(float(t), 0.0), self.keys[-1].time)
        seg = self.segment_at(t)
        knots, pos, quats, fovs = self._controls(seg)
        p = pyramid(pos, knots, t, lerp)
        q = pyramid(quats, knots, t, slerp)
        fov = pyramid([np.array(f) for f in fovs], knots, t, lerp)
        r = quaternion_to_rotation(q)
        fov_deg = float(np.clip(fov, *FOV_RANGE))
        return PathCamera(np.concatenate([r, np.asarray(p)[:, None]], axis=1), fov_deg)

    def n_frames(self, fps: float | None = None) -> int:
        """Frames of the video: ``duration * fps``, plus the closing frame on the last key for an open path."""
        rate = fps or self.fps
        if len(self.keys) <= 1 or self.end_time <= 0:
            return 1
        return max(2, int(round(self.end_time * rate)) + (0 if self.loop else 1))

    def frame_times(self, n_frames: int | None = None) -> np.ndarray:
        """Times of ``n_frames`` frames (default ``n_frames()``): from 0 to the last key inclusive for an open path;
        for a loop, evenly over the period and one step short of its end, so the video loops seamlessly."""
        n = n_frames if n_frames is not None else self.n_frames()
        if n <= 1 or self.end_time <= 0:
            return np.zeros(max(n, 1))
        if self.loop:
            return np.arange(n) * (self.end_time / n)
        return np.linspace(0.0, self.end_time, n)

    def cameras(self, n_frames: int | None = None) -> list[PathCamera]:
        """The cameras of the video's frames (``frame_times``); at most ``MAX_VIDEO_FRAMES``, checked first."""
        self.validate()
        n = n_frames if n_frames is not None else self.n_frames()
        check_frame_count(n, f"{self.end_time:g} s at {self.fps:g} fps")
        return [self.evaluate(t) for t in self.frame_times(n)]

    def sample_positions(self, per_segment: int = 16) -> np.ndarray:
        """(m, 3) points along the path, for drawing it."""
        if len(self.keys) < 2:
            return np.array([k.c2w[:, 3] for k in self.keys]).reshape(-1, 3)
        n_segments = len(self.keys) if self.loop else len(self.keys) - 1
        ts = np.linspace(0.0, self.end_time, n_segments * per_segment + 1)
        return np.array([self.evaluate(t).c2w[:, 3] for t in ts])

    # -------------------------------------------------------------------------------------------- editing
    def retime(self, duration: float | None = None, even_speed: bool = False) -> None:
        """Re-space the keys over ``duration`` seconds (default: the current one, or ``SECONDS_PER_KEY`` per
        segment): evenly, or with ``even_speed`` in proportion to the distance between keys (a constant speed)."""
        n = len(self.keys)
        if n == 0:
            self.duration = 0.0
            return
        n_segments = n if self.loop else n - 1
        if duration is None:
            duration = self.end_time if self.end_time > 0 else SECONDS_PER_KEY * max(n_segments, 1)
        if not (math.isfinite(duration) and duration > 0):
            raise NgpError(f"path duration {duration} must be positive")
        if n_segments == 0:
            self.keys[0].time, self.duration = 0.0, 0.0
            return
        if even_speed:
            pts = [k.c2w[:, 3] for k in self.keys] + ([self.keys[0].c2w[:, 3]] if self.loop else [])
            lengths = np.array([np.linalg.norm(b - a) for a, b in zip(pts[:-1], pts[1:])])
            lengths = np.maximum(lengths, 1e-3 * max(float(lengths.max()), 1e-9))  # coincident keys still get time
        else:
            lengths = np.ones(n_segments)
        cum = np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum() * duration
        for k, t in zip(self.keys, cum[:n]):
            k.time = float(t)
        self.duration = float(duration)

    def set_duration(self, duration: float) -> None:
        """Stretch the path to ``duration`` seconds, keeping the keys' relative timing."""
        if not (math.isfinite(duration) and duration > 0):
            raise NgpError(f"path duration {duration} must be positive")
        if len(self.keys) < 2:
            self.duration = 0.0 if not self.loop else float(duration)
            return
        scale = duration / self.end_time
        for k in self.keys:
            k.time *= scale
        self.duration = float(duration) if self.loop else self.keys[-1].time

    def set_loop(self, loop: bool) -> None:
        """Open or close the path; closing adds a segment back to the first key as long as the average one."""
        if loop == self.loop:
            return
        n = len(self.keys)
        if loop:
            step = self.keys[-1].time / (n - 1) if n > 1 else SECONDS_PER_KEY
            self.duration = self.keys[-1].time + step if n > 1 else 0.0
        else:
            self.duration = self.keys[-1].time if n else 0.0
        self.loop = loop

    def set_time(self, index: int, time: float) -> float:
        """Move key ``index`` in time, clamped between its neighbours (key 0 stays at 0). Returns the time set."""
        self._check_index(index)
        if index == 0:
            return 0.0
        lo = self.keys[index - 1].time + MIN_GAP
        hi = self.keys[index + 1].time - MIN_GAP if index + 1 < len(self.keys) else math.inf
        if self.loop and index + 1 == len(self.keys):
            hi = self.duration - MIN_GAP
        t = float(min(max(time, lo), hi))
        self.keys[index].time = t
        if not self.loop and index + 1 == len(self.keys):
            self.duration = t
        return t

    def set_fov(self, index: int, fov_y_deg: float) -> None:
        self._check_index(index)
        self.keys[index].fov_y_deg = float(min(max(fov_y_deg, FOV_RANGE[0]), FOV_RANGE[1]))

    def insert(self, index: int, camera: PathCamera) -> int:
        """Insert a key before position ``index`` (``len(keys)`` appends). Its time: halfway between its neighbours;
        appended keys come ``SECONDS_PER_KEY`` (or the average gap) after the last. Returns its index."""
        n = len(self.keys)
        index = min(max(index, 0), n)
        key = Keyframe(_check_pose(camera.c2w), float(camera.fov_y_deg), 0.0)
        if n == 0:
            self.keys.append(key)
            self.duration = 0.0
            return 0
        gap = self.keys[-1].time / (n - 1) if n > 1 else SECONDS_PER_KEY
        if index == n:  # append
            key.time = self.keys[-1].time + gap
            if self.loop:
                self.duration = max(self.duration, key.time) + gap
        elif index == 0:  # a new start: everything moves later by one gap
            first_gap = self.keys[1].time if n > 1 else gap
            for k in self.keys:
                k.time += first_gap
            self.duration += first_gap
        else:
            a, b = self.keys[index - 1].time, self.keys[index].time
            if b - a < 2 * MIN_GAP:  # no room: push the later keys back
                for k in self.keys[index:]:
                    k.time += gap
                self.duration += gap
                b = self.keys[index].time
            key.time = 0.5 * (a + b)
        self.keys.insert(index, key)
        if not self.loop:
            self.duration = self.keys[-1].time
        elif self.duration <= self.keys[-1].time:  # a one-key loop (duration 0) gains its closing segment
            self.duration = self.keys[-1].time + gap
        return index

    def split(self, index: int) -> int:
        """Add a key halfway in time between key ``index`` and the next (the closing segment of a loop after the
        last key), posed where the path is at that time: a control point to edit without moving the path there.
        Returns the new key's index."""
        self._check_index(index)
        n = len(self.keys)
        if index + 1 < n:
            end = self.keys[index + 1].time
        elif self.loop and n > 1:
            end = self.duration
        else:
            raise NgpError("split needs a key after the selected one (or a looping path)")
        start = self.keys[index].time
        if end - start < 2 * MIN_GAP:
            raise NgpError(f"keys {index + 1} and {index + 2 if index + 1 < n else 1} are too close in time to split")
        mid = 0.5 * (start + end)
        cam = self.evaluate(mid)
        self.keys.insert(index + 1, Keyframe(_check_pose(cam.c2w), float(cam.fov_y_deg), mid))
        return index + 1

    def append(self, camera: PathCamera) -> int:
        return self.insert(len(self.keys), camera)

    def replace_pose(self, index: int, camera: PathCamera) -> None:
        """Give key ``index`` another pose and field of view, keeping its time."""
        self._check_index(index)
        self.keys[index].c2w = _check_pose(camera.c2w)
        self.keys[index].fov_y_deg = float(camera.fov_y_deg)

    def delete(self, index: int) -> None:
        """Remove key ``index``; deleting the first makes the next one the start (times shift to begin at 0)."""
        self._check_index(index)
        self.keys.pop(index)
        if not self.keys:
            self.duration = 0.0
            return
        if index == 0:  # the next key becomes the start
            t0 = self.keys[0].time
            for k in self.keys:
                k.time -= t0
            if self.loop:
                self.duration -= t0
        if self.loop and len(self.keys) == 1:
            self.duration = 0.0
        if not self.loop:
            self.duration = self.keys[-1].time

    def move(self, index: int, offset: int) -> int:
        """Swap key ``index`` with its neighbour ``offset`` (-1 earlier, +1 later) in the order; the times stay
        where they were (the poses move). Returns the key's new index."""
        self._check_index(index)
        j = index + offset
        if not 0 <= j < len(self.keys) or offset == 0:
            return index
        a, b = self.keys[index], self.keys[j]
        a.time, b.time = b.time, a.time
        self.keys[index], self.keys[j] = b, a
        return j

    def key_camera(self, index: int) -> PathCamera:
        self._check_index(index)
        return self.keys[index].camera()

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.keys):
            raise NgpError(f"no keyframe {index} (the path has {len(self.keys)})")
