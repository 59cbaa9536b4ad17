"""The camera-path editor's state: the path being edited, the selected key, preview playback and the video
settings. No windowing toolkit here: the panel's buttons and the viewport's keys call these methods, and the tests
drive them directly.

Keys are made from the viewport's camera (``OrbitCamera``) and shown with ``OrbitCamera.show_pose``, so jumping to a
key or previewing the path shows its exact pose and field of view.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from ..errors import NgpError
from ..export.path_model import CameraPath, PathCamera

# quality presets: (fraction of the chosen size rendered and written, mp4 encoder quality 1..10)
QUALITIES = {"draft": (0.5, 5), "good": (1.0, 8), "best": (1.0, 10)}
PATH_COLOR = (255, 200, 60, 255)
KEY_COLOR = (255, 140, 40, 255)
SELECTED_COLOR = (60, 220, 255, 255)
PLAYHEAD_COLOR = (120, 255, 120, 255)


VIDEO_PATHS = ("keyframes", "orbit", "train")  # what the video follows: the edited path, or ngp video's own


@dataclass
class VideoSettings:
    """How the panel renders a video: which path (``VIDEO_PATHS``; ``frames`` counts only for orbit/train, the
    edited path has its duration x fps), size, quality (``QUALITIES``), samples per pixel (``spp``: 1 for previews,
    more for sharp final renders), the camera (``camera_model``: pinhole, or equirectangular for 360 degrees), whether
    training pauses meanwhile, and the last video written."""

    path: str = "keyframes"
    frames: int = 120
    width: int = 640
    height: int = 360
    quality: str = "good"
    spp: int = 1
    camera_model: str = "pinhole"  # or "equirectangular": a 360-degree video (2:1 frames, spherical metadata)
    pause_training: bool = False
    last_output: Path | None = None

    def render_size(self) -> tuple[int, int]:
        """The video's frame size: the chosen size, halved for drafts (even numbers, as mp4 needs)."""
        f = QUALITIES.get(self.quality, QUALITIES["good"])[0]
        return max(2, int(round(self.width * f / 2)) * 2), max(2, int(round(self.height * f / 2)) * 2)

    def encoder_quality(self) -> int:
        return QUALITIES.get(self.quality, QUALITIES["good"])[1]

    def aspect(self) -> float:
        return self.width / max(self.height, 1)


UNDO_DEPTH = 100  # path edits that Undo can take back
_T = TypeVar("_T")


def _undoable(method: Callable[..., _T]) -> Callable[..., _T]:
    """A :class:`PathEditor` edit that Undo can take back: the path before it is kept once the edit succeeded (a
    refused edit leaves nothing to undo)."""

    @functools.wraps(method)
    def edit(self: PathEditor, *args: Any, **kwargs: Any) -> _T:
        before = (copy.deepcopy(self.path), self.selected)
        out = method(self, *args, **kwargs)
        self.history.push(before)
        return out

    return edit


class EditHistory:
    """The camera path as it was before each of the last ``depth`` edits (and the key selected then), newest last."""

    def __init__(self, depth: int = UNDO_DEPTH) -> None:
        self.depth = depth
        self._states: list[tuple[CameraPath, int | None]] = []

    def __len__(self) -> int:
        return len(self._states)

    def push(self, state: tuple[CameraPath, int | None]) -> None:
        self._states = self._states[-(self.depth - 1) :] + [state]

    def pop(self) -> tuple[CameraPath, int | None] | None:
        return self._states.pop() if self._states else None


def show_path_at(camera: Any, path: CameraPath, seconds: float) -> int:
    """Put ``camera`` where ``path`` is at ``seconds``; returns the camera's version after the move."""
    cam = path.evaluate(seconds)
    camera.show_pose(cam.c2w, cam.fov_y_deg)
    return int(camera.version)


class PathEditor:
    """Edits a :class:`CameraPath` from the viewport's camera. ``version`` bumps on every change (the overlay and the
    panel redraw only then); ``selected`` is the selected key's index (None without keys)."""

    def __init__(self, camera: Any) -> None:
        self.camera = camera
        self.path = CameraPath()
        self.selected: int | None = None
        self.version = 0
        self.playing = False
        self.play_time = 0.0
        self.preview = False  # the viewport follows the path (while playing or scrubbing)
        self.show = True  # draw the path in the viewport
        self.video = VideoSettings()
        self._shown_version = -1  # the camera's version right after the preview last moved it
        self.history = EditHistory()  # for Undo

    # -------------------------------------------------------------------------------------------- keys
    def current_view(self) -> PathCamera:
        return PathCamera(self.camera.c2w().numpy().astype(np.float64), float(self.camera.fov_deg))

    def _changed(self, selected: int | None) -> int | None:
        self.selected = selected if self.path.keys else None
        self.version += 1
        return self.selected

    def undo(self) -> bool:
        """Put back the path as it was before the last edit (Clear included); returns whether there was one."""
        last = self.history.pop()
        if last is None:
            return False
        self.path, selected = last
        self.stop_preview()
        self.play_time = min(self.play_time, self.path.end_time)
        self._changed(selected)
        return True

    def add_view(self) -> int:
        """Append the current view as a key and select it; returns its index. A view that already is a key is not
        added twice: that key (posed exactly as the view, field of view included) is selected instead."""
        view = self.current_view()
        for i, k in enumerate(self.path.keys):
            if abs(k.fov_y_deg - view.fov_y_deg) < 1e-6 and np.allclose(k.c2w, view.c2w, atol=1e-7):
                return self._changed(i)  # type: ignore[return-value]
        self.history.push((copy.deepcopy(self.path), self.selected))
        return self._changed(self.path.append(view))  # type: ignore[return-value]

    @_undoable
    def insert_view(self) -> int:
        """Insert the current view after the selected key (appends without a selection)."""
        at = len(self.path.keys) if self.selected is None else self.selected + 1
        return self._changed(self.path.insert(at, self.current_view()))  # type: ignore[return-value]

    @_undoable
    def split_selected(self) -> int:
        """Add a key where the path is halfway to the next key (``CameraPath.split``) and select it."""
        return self._changed(self.path.split(self._need_selection()))  # type: ignore[return-value]

    @_undoable
    def replace_selected(self) -> None:
        """Give the selected key the current view (pose and field of view), keeping its time."""
        self.path.replace_pose(self._need_selection(), self.current_view())
        self._changed(self.selected)

    @_undoable
    def delete_selected(self) -> None:
        i = self._need_selection()
        self.path.delete(i)
        self._changed(min(i, len(self.path.keys) - 1) if self.path.keys else None)

    @_undoable
    def move_selected(self, offset: int) -> None:
        """Move the selected key earlier (-1) or later (+1) in the order."""
        self._changed(self.path.move(self._need_selection(), offset))

    def select(self, index: int | None) -> None:
        if index is not None:
            self.path._check_index(index)
        self._changed(index)

    def jump(self, index: int | None = None) -> None:
        """Show key ``index`` (default: the selected one) in the viewport, exactly, and select it."""
        i = self._need_selection() if index is None else index
        self.select(i)
        key = self.path.keys[i]
        self.stop_preview()
        self.play_time = key.time
        self.camera.show_pose(key.c2w, key.fov_y_deg)

    @_undoable
    def set_fov(self, index: int, fov_deg: float) -> None:
        self.path.set_fov(index, fov_deg)
        self._changed(self.selected)

    @_undoable
    def set_time(self, index: int, seconds: float) -> float:
        t = self.path.set_time(index, seconds)
        self._changed(self.selected)
        return t

    @_undoable
    def set_duration(self, seconds: float) -> None:
        if len(self.path.keys) < 2:
            raise NgpError("add at least two keyframes before setting the duration")
        self.path.set_duration(seconds)
        self._changed(self.selected)

    @_undoable
    def set_fps(self, fps: float) -> None:
        if not (math.isfinite(fps) and 0 < fps <= 240):
            raise NgpError(f"frame rate {fps} must be in (0, 240]")
        self.path.fps = float(fps)
        self._changed(self.selected)

    @_undoable
    def set_loop(self, loop: bool) -> None:
        self.path.set_loop(bool(loop))
        self._changed(self.selected)

    @_undoable
    def retime(self, even_speed: bool) -> None:
        """Re-space the keys over the current duration: evenly, or at a constant speed."""
        if len(self.path.keys) < 2:
            raise NgpError("add at least two keyframes first")
        self.path.retime(None, even_speed)
        self._changed(self.selected)

    @_undoable
    def clear(self) -> None:
        self.path = CameraPath(fps=self.path.fps)
        self.stop_preview()
        self.play_time = 0.0
        self._changed(None)

    @_undoable
    def set_path(self, path: CameraPath) -> None:
        """Replace the edited path (a loaded or imported file)."""
        self.path = path
        self.stop_preview()
        self.play_time = 0.0
        if path.resolution is not None:
            self.video.width, self.video.height = path.resolution
        self._changed(0 if path.keys else None)

    def _need_selection(self) -> int:
        if self.selected is None or not 0 <= self.selected < len(self.path.keys):
            raise NgpError("select a keyframe first" if self.path.keys else "no keyframes: add the current view first")
        return self.selected

    # -------------------------------------------------------------------------------------------- files
    def load(self, file: str | Path, scene_meta: dict[str, Any], dataparser_transforms: str | None = None) -> int:
        """Open any camera-path file (ours, instant-ngp's, nerfstudio's, transforms-style); returns its key count."""
        from ..export.path_files import load_path

        self.set_path(load_path(file, scene_meta, dataparser_transforms))
        return len(self.path.keys)

    def save(self, file: str | Path, scene_meta: dict[str, Any]) -> Path:
        from ..export.path_files import save_path

        if not self.path.keys:
            raise NgpError("no keyframes to save: add some with K or the panel")
        self.path.resolution = (int(self.video.width), int(self.video.height))
        return save_path(file, self.path, scene_meta)

    # -------------------------------------------------------------------------------------------- preview
    def play(self) -> None:
        """Play the path in the viewport from the playhead (from the start when it is at the end)."""
        if len(self.path.keys) < 2:
            raise NgpError("add at least two keyframes to preview the path")
        if self.play_time >= self.path.end_time - 1e-9 and not self.path.loop:
            self.play_time = 0.0
        self.playing = self.preview = True
        self._shown_version = show_path_at(self.camera, self.path, self.play_time)

    def pause(self) -> None:
        self.playing = False

    def toggle_play(self) -> bool:
        if self.playing:
            self.pause()
        else:
            self.play()
        return self.playing

    def stop_preview(self) -> None:
        self.playing = self.preview = False

    def scrub(self, seconds: float) -> None:
        """Move the playhead and show the path's camera there (pauses playback)."""
        if not self.path.keys:
            raise NgpError("no keyframes to preview")
        self.playing = False
        self.preview = True
        self.play_time = float(min(max(seconds, 0.0), self.path.end_time))
        self._shown_version = show_path_at(self.camera, self.path, self.play_time)

    def tick(self, dt: float) -> bool:
        """Advance playback by ``dt`` seconds of wall time (called every UI frame); returns whether it moved the
        camera. An open path stops at its end, a loop wraps; moving the view by hand (orbit, fly, ...) ends the
        preview there."""
        if self.preview and self.camera.version != self._shown_version:
            self.stop_preview()
        if not self.playing or len(self.path.keys) < 2:
            return False
        end = self.path.end_time
        t = self.play_time + dt
        if self.path.loop:
            t %= end
        elif t >= end:
            t, self.playing = end, False
        self.play_time = t
        self._shown_version = show_path_at(self.camera, self.path, self.play_time)
        return True

    # -------------------------------------------------------------------------------------------- video
    def frame_cameras(self) -> list[PathCamera]:
        """The cameras of every video frame (``duration x fps``)."""
        if len(self.path.keys) < 2:
            raise NgpError("add at least two keyframes to render a path video")
        return self.path.cameras()


def path_segments(ed: PathEditor, length: float = 0.06, per_segment: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The path of editor ``ed`` for the viewport's overlay: segments (n, 2, 3) in ngp space and a colour (n, 4) uint8
    each: the spline and a frustum per key (the selected one highlighted). Changes only with ``ed.version``."""
    segs: list[np.ndarray] = []
    cols: list[tuple[int, int, int, int]] = []
    keys = ed.path.keys
    if len(keys) >= 2:
        pts = ed.path.sample_positions(per_segment)
        line = np.stack([pts[:-1], pts[1:]], 1)
        segs.append(line)
        cols += [PATH_COLOR] * len(line)
    for i, k in enumerate(keys):
        f = frustum(k.c2w, k.fov_y_deg, ed.video.aspect(), length)
        segs.append(f)
        cols += [SELECTED_COLOR if i == ed.selected else KEY_COLOR] * len(f)
    return _stack(segs, cols)


def playhead_segments(ed: PathEditor, length: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """The preview camera's frustum (while previewing), as ``path_segments``."""
    if not (ed.preview and ed.path.keys):
        return _stack([], [])
    cam = ed.path.evaluate(ed.play_time)
    f = frustum(cam.c2w, cam.fov_y_deg, ed.video.aspect(), 0.6 * length)
    return _stack([f], [PLAYHEAD_COLOR] * len(f))


def overlay_segments(ed: PathEditor, length: float = 0.06, per_segment: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """``path_segments`` followed by ``playhead_segments``."""
    a, b = path_segments(ed, length, per_segment), playhead_segments(ed, length)
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def _stack(segs: list[np.ndarray], cols: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    if not segs:
        return np.zeros((0, 2, 3)), np.zeros((0, 4), dtype=np.uint8)
    return np.concatenate(segs), np.asarray(cols, dtype=np.uint8)


def frustum(c2w: np.ndarray, fov_y_deg: float, aspect: float, length: float) -> np.ndarray:
    """A camera as 8 segments (n, 2, 3): apex to the four corners of its image plane ``length`` ahead, and the
    plane's outline; c2w (3, 4) with OpenCV axes."""
    m = np.asarray(c2w, dtype=np.float64)
    ty = math.tan(math.radians(fov_y_deg) / 2.0)
    tx = ty * aspect
    corners = np.array([[-tx, -ty, 1.0], [tx, -ty, 1.0], [tx, ty, 1.0], [-tx, ty, 1.0]])
    base = m[:, 3] + (corners @ m[:, :3].T) * length
    apex = np.repeat(m[:, 3][None], 4, axis=0)
    return np.concatenate([np.stack([apex, base], 1), np.stack([base, np.roll(base, -1, axis=0)], 1)])
