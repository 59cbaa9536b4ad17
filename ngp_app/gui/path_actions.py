"""The app's camera-path editor and per-image loss table, as AppState actions.

Mixed into :class:`~ngp_app.gui.state.AppState`. The panel's buttons and the viewport's keys call these on the UI
thread; each turns an editing error into a status line. The path is drawn as overlay layers (``path`` and
``path_playhead``, via ``overlay_providers``), previewed by ``tick_preview`` every UI frame, and rendered to a video
by a background job (progress, ETA, Cancel) that can pause training meanwhile. The image table is read from the
trainer about once a second; a row flies the view to its camera and shows its training image beside the render.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import NgpError
from ..render.pictures import to_uint8
from .image_table import ImageRow, ImageTable
from .jobs import Job, JobRunner
from .overlays import Layer, layer
from .path_editor import QUALITIES, PathEditor


class PathActions:
    """Keyframes, camera-path files, preview, path videos and the per-image table; relies on AppState's camera,
    scene, scene_meta, settings, trainer, runner, jobs, status and ``frozen`` / ``export_path``."""

    camera: Any
    scene: Any
    scene_meta: dict[str, Any]
    settings: Any
    runner: Any
    trainer: Any
    jobs: JobRunner
    train_cams: tuple[np.ndarray, np.ndarray, np.ndarray]
    overlay_providers: dict[str, Callable[[], Layer | None]]
    set_status: Callable[..., None]
    report_error: Callable[..., str]
    frozen: Callable[[], Any]

    def _init_path_actions(self) -> None:
        self.path_editor = PathEditor(self.camera)
        if getattr(getattr(self, "device", None), "type", "cpu") == "cuda":  # as ngp video: full HD on a GPU
            self.path_editor.video.width, self.path_editor.video.height = 1920, 1080
        self.image_table = ImageTable()
        self.compare_index: int | None = None  # training image shown beside the render (a table row's)
        self._table_step = -1  # the trainer's step when the table was last read
        self._path_layers: dict[str, Layer] = {}
        self._compare_cache: tuple[tuple, np.ndarray] | None = None
        self.overlay_providers["path"] = self.path_layer
        self.overlay_providers["path_playhead"] = self.playhead_layer

    # ------------------------------------------------------------------------------------------ keyframes
    @property
    def keyframes(self) -> list[Any]:
        """The path's keys as ``PathCamera``s (pose and field of view), in ngp space."""
        return [k.camera() for k in self.path_editor.path.keys]

    @keyframes.setter
    def keyframes(self, cameras: list[Any]) -> None:
        from ..export.path_model import CameraPath

        if cameras:
            self.path_editor.set_path(CameraPath.from_cameras(cameras, fps=self.path_editor.path.fps))
        else:
            self.path_editor.clear()

    def edit_path(self, operation: str, *args: Any) -> Any:
        """Run a ``PathEditor`` operation (``insert_view``, ``delete_selected``, ``set_time``...) from the panel; an
        editing error becomes the status line (and None is returned)."""
        try:
            return getattr(self.path_editor, operation)(*args)
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None

    def add_keyframe(self) -> int:
        """Append the current view to the path (K); returns the key count."""
        n = len(self.path_editor.path.keys)
        i = self.path_editor.add_view()
        if len(self.path_editor.path.keys) == n:
            self.set_status(f"this view is keyframe {i + 1} already: move the camera to add another")
            return n
        key = self.path_editor.path.keys[i]
        self.set_status(f"keyframe {i + 1} added at {key.time:.2f} s (fov {key.fov_y_deg:.0f} deg)")
        return len(self.path_editor.path.keys)

    def clear_keyframes(self) -> None:
        self.path_editor.clear()
        self.set_status("keyframes cleared")

    def save_keyframes(self, path: str | Path) -> Path | None:
        """Write the path (keys, times, fields of view, duration, fps, loop, size) as our camera-path JSON, which
        the app and ``ngp video --path`` read."""
        from ..outputs import check_output_file

        try:
            check_output_file(path, (".json",), 0, "camera path")
            out = self.path_editor.save(path, self.scene_meta)
        except (NgpError, OSError) as exc:
            self.report_error(exc, "app: saving the camera path", prefix="cannot save camera path: ")
            return None
        self.set_status(f"saved {len(self.path_editor.path.keys)} keyframes to {out}")
        return out

    def load_keyframes(self, path: str | Path, dataparser_transforms: str | None = None) -> bool:
        """Open a camera-path file: ours, instant-ngp's base_cam.json, nerfstudio's export or transforms-style
        keyframes (docs/export.md). A bad file leaves the current path as it was."""
        try:
            n = self.path_editor.load(path, self.scene_meta, dataparser_transforms)
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return False
        p = self.path_editor.path
        self.set_status(f"loaded {n} keyframes from {path} ({p.end_time:.2f} s at {p.fps:g} fps)")
        return True

    # ------------------------------------------------------------------------------------------ preview
    def toggle_preview(self) -> bool:
        """Play or pause the path in the viewport; returns whether it plays."""
        return bool(self.edit_path("toggle_play"))

    def tick_preview(self, dt: float) -> bool:
        """Advance a playing preview (UI thread, every frame); returns whether it moved the camera."""
        return self.path_editor.tick(dt)

    def path_layer(self) -> Layer | None:
        """Overlay provider: the path's spline and key frusta (rebuilt when the path or selection changes)."""
        ed = self.path_editor
        if not ed.show or not ed.path.keys:
            return None
        key = ("path", ed.version, ed.aspect())
        cached = self._path_layers.get("path")
        if cached is None or cached.key != key:
            segs, cols = ed.path_segments(length=self._frustum_length())
            cached = layer("path", "lines", segs.reshape(-1, 3), np.repeat(cols, 2, axis=0), key)
            self._path_layers["path"] = cached
        return cached

    def playhead_layer(self) -> Layer | None:
        """Overlay provider: the preview camera's frustum while previewing."""
        ed = self.path_editor
        if not (ed.show and ed.preview and ed.path.keys):
            return None
        key = ("playhead", ed.version, ed.play_time)
        cached = self._path_layers.get("path_playhead")
        if cached is None or cached.key != key:
            segs, cols = ed.playhead_segments(length=self._frustum_length())
            cached = layer("path_playhead", "lines", segs.reshape(-1, 3), np.repeat(cols, 2, axis=0), key)
            self._path_layers["path_playhead"] = cached
        return cached

    def _frustum_length(self) -> float:
        """Key frusta sized to the scene: a tenth of the training cameras' distance from the centre."""
        c2w = self.train_cams[0]
        if len(c2w) == 0:
            return 0.06
        return float(np.clip(0.1 * np.median(np.linalg.norm(c2w[:, :, 3] - 0.5, axis=1)), 0.02, 0.5))

    # ------------------------------------------------------------------------------------------ video
    def render_video(self, out: str | Path) -> Job | None:
        """Render the chosen video (``path_editor.video``: the edited path, orbit or a training-camera tour) at the
        chosen size and quality in the background; training goes on, or pauses until the job ends when
        ``pause_training`` is set. Progress, ETA and Cancel are the job's; a cancelled video leaves no file."""
        from ..export.camera_path import path_cameras

        ed, v = self.path_editor, self.path_editor.video
        try:
            if v.path == "keyframes":
                cams, fps = ed.frame_cameras(), ed.path.fps
            else:
                cams, fps = path_cameras(v.path, self.scene_meta, v.frames), ed.path.fps
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        width, height = ed.render_size()
        return self._video_job(out, cams, fps, width, height, QUALITIES[v.quality][1], v.pause_training)

    def _video_job(
        self, out: str | Path, cams: list[Any], fps: float, width: int, height: int, quality: int, pause_training: bool
    ) -> Job | None:
        """A background job rendering ``cams`` into ``out`` from a copy of the model."""
        import os

        from ..export.video import check_video_target, export_video

        try:
            check_video_target(out, len(cams), width, height)
            frozen = self.frozen()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        background = self.settings.background
        paused = self.runner.trainer if pause_training and self.runner.running else None
        if paused is not None:
            self.runner.stop()

        def resume() -> None:  # UI thread, whatever the outcome; not if another scene came in meanwhile
            if paused is not None and self.runner.trainer is paused and not self.runner.running:
                self.runner.start()

        def work(job: Job) -> Path:
            def progress(done: int, total: int) -> None:
                job.report(done / max(total, 1), f"frame {min(done + 1, total)}/{total}")

            job.report(0.0, f"frame 1/{len(cams)}")
            return export_video(
                frozen.model,
                frozen.grid,
                frozen.march,
                frozen.aabb,
                cams,
                out,
                width,
                height,
                fps,
                background,
                "rgb",
                progress,
                quality=quality,
                fraction=job.report,
            )

        def done(path: Path) -> None:
            resume()
            self.path_editor.video.last_output = Path(os.path.abspath(path))
            self.set_status(
                f"saved video {self.path_editor.video.last_output} ({len(cams)} frames of "
                f"{width}x{height} at {fps:g} fps)"
            )

        def failed(exc: BaseException) -> None:
            resume()
            self.report_error(exc, "app: video export", prefix="video failed: ")

        def cancelled() -> None:
            resume()
            self.set_status("video cancelled: nothing written")

        return self.jobs.submit("video", work, on_done=done, on_error=failed, on_cancel=cancelled)

    # ------------------------------------------------------------------------------------------ image table
    def refresh_image_table(self, force: bool = False) -> bool:
        """Re-read the per-image losses (about once a second while training runs; UI thread). Returns whether the
        rows changed."""
        t = self.trainer
        step = int(t.step_count) if t is not None else -1
        if not force and t is self.image_table._trainer and step == self._table_step:
            return False  # nothing new: no host read
        changed = self.image_table.refresh(t, force)
        if changed:
            self._table_step = step
        return changed

    def image_row(self, index: int) -> ImageRow | None:
        return next((r for r in self.image_table.rows if r.index == index), None)

    def fly_to_image(self, index: int) -> bool:
        """Show training frame ``index``: the view jumps to its camera and its image is shown beside the render."""
        c2w, intr, sizes = self.train_cams
        if self.scene is None or not 0 <= index < len(c2w):
            self.set_status(f"no training frame {index} to show", error=True)
            return False
        self.path_editor.stop_preview()
        self.settings.gt_index = index
        self.settings.ground_truth = False
        fov = math.degrees(2.0 * math.atan(0.5 * float(sizes[index, 1]) / float(intr[index, 1])))
        self.camera.show_pose(c2w[index], fov)  # exactly that camera (roll included), so the render lines up
        self.compare_index = index
        row = self.image_row(index)
        loss = f": loss {row.mse:.5f} ({row.psnr:.1f} dB)" if row is not None and row.rays > 0 else ""
        self.set_status(f"frame {index} {self._frame_name(index)}{loss}")
        return True

    def close_compare(self) -> None:
        self.compare_index = None

    def compare_image(self) -> np.ndarray | None:
        """The training image shown beside the render, (h, w, 3) uint8 on the background (None when off)."""
        i = self.compare_index
        if i is None or self.scene is None or not 0 <= i < self.scene.n_frames:
            return None
        key = (id(self.scene), i, tuple(self.settings.background))
        if self._compare_cache is None or self._compare_cache[0] != key:
            img = self.scene.image(i).cpu().numpy().astype(np.float32) / 255.0
            if img.shape[-1] == 4:
                bg = np.asarray(self.settings.background, dtype=np.float32)
                img = img[..., :3] * img[..., 3:] + bg * (1.0 - img[..., 3:])
            self._compare_cache = (key, to_uint8(img))
        return self._compare_cache[1]

    def compare_caption(self) -> str:
        i = self.compare_index
        if i is None:
            return ""
        row = self.image_row(i)
        loss = f"  loss {row.mse:.5f}" if row is not None and row.rays > 0 else ""
        state = "  (excluded)" if self.scene is not None and i in self.scene.excluded else ""
        return f"ground truth {i}: {self._frame_name(i)}{loss}{state}"

    def toggle_image_excluded(self, index: int) -> bool | None:
        """Leave training frame ``index`` out of training or bring it back, without restarting; returns whether it
        is now excluded (None when refused)."""
        t = self.trainer
        if t is None:
            self.set_status("no training: open a scene to exclude frames", error=True)
            return None
        try:
            now = self.image_table.toggle_excluded(t, index)
        except ValueError as exc:
            self.set_status(f"cannot exclude frame {index}: {exc}", error=True)
            return None
        n = len(t.scene.excluded)
        self.set_status(
            f"frame {index} {self._frame_name(index)} "
            + (f"left out of training ({n} excluded)" if now else f"back in training ({n} excluded)")
        )
        return now

    def _frame_name(self, index: int) -> str:
        row = self.image_row(index)
        if row is not None:
            return row.name
        names = getattr(self.scene, "file_names", None) or []
        return Path(names[index]).name if 0 <= index < len(names) else ""
