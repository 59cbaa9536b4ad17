"""The app's camera-path editor as actions: keyframes, camera-path files, preview and path videos.

A collaborator of :class:`~ngp_app.gui.session.Session`. The panel's buttons and the viewport's keys call these on
the UI thread; each turns an editing error into a status line. The path is drawn as overlay layers (``path`` and
``path_playhead``, registered with the view renderer by the session), previewed by ``tick_preview`` every UI frame,
and rendered to a video by a background job (progress, ETA, Cancel) that can pause training meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import NgpError
from .jobs import Job, JobQueue, JobRunner
from .overlays import Layer, layer
from .path_editor import QUALITIES, PathEditor, path_segments, playhead_segments

if TYPE_CHECKING:
    from ..nerf_model import NerfModel
    from .camera import OrbitCamera
    from .scene_state import SceneState
    from .settings import RenderSettings
    from .training import TrainingRunner


def torch_allclose(a: Any, b: Any) -> bool:
    """Whether two boxes (2, 3) are the same (tensors on any device)."""
    import torch

    return bool(torch.allclose(a.detach().cpu().float(), b.detach().cpu().float()))


class PathActions:
    """Keyframes, camera-path files, preview, path videos and render jobs. ``frozen()`` is a private copy of the
    current model for a video job; ``full_hd``: videos default to 1920x1080 (as ``ngp video`` on a GPU)."""

    def __init__(
        self,
        camera: OrbitCamera,
        settings: RenderSettings,
        current: SceneState,
        runner: TrainingRunner,
        jobs: JobRunner,
        set_status: Callable[..., None],
        report_error: Callable[..., str],
        frozen: Callable[[], NerfModel],
        full_hd: bool = False,
        save_snapshot: Callable[..., Job | None] | None = None,
    ) -> None:
        self.settings, self.current, self.runner, self.jobs = settings, current, runner, jobs
        self.set_status, self.report_error, self.frozen = set_status, report_error, frozen
        self.save_snapshot = save_snapshot  # (path, then=...): a snapshot job (``Exports.save_snapshot``)
        self.path_editor = PathEditor(camera)
        if full_hd:
            self.path_editor.video.width, self.path_editor.video.height = 1920, 1080
        self._path_layers: dict[str, Layer] = {}
        self.video_queue = JobQueue("video")  # videos render one at a time, in the order asked for

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
        n = len(self.path_editor.path.keys)
        self.path_editor.clear()
        self.set_status(f"{n} keyframes cleared (Undo or Ctrl+Z brings them back)" if n else "no keyframes to clear")

    def undo_path_edit(self) -> bool:
        """Take back the last camera-path edit (Undo, Ctrl+Z); says what it did."""
        if not self.path_editor.undo():
            self.set_status("nothing to undo in the camera path")
            return False
        self.set_status(f"camera path edit undone ({len(self.path_editor.path.keys)} keyframes)")
        return True

    def save_keyframes(self, path: str | Path) -> Path | None:
        """Write the path (keys, times, fields of view, duration, fps, loop, size) as our camera-path JSON, which
        the app and ``ngp video --path`` read."""
        from ..outputs import check_output_file

        try:
            check_output_file(path, (".json",), 0, "camera path")
            out = self.path_editor.save(path, self.current.meta)
        except (NgpError, OSError) as exc:
            self.report_error(exc, "app: saving the camera path", prefix="cannot save camera path: ")
            return None
        self.set_status(f"saved {len(self.path_editor.path.keys)} keyframes to {out}")
        return out

    def load_keyframes(self, path: str | Path, dataparser_transforms: str | None = None) -> bool:
        """Open a camera-path file: ours, instant-ngp's base_cam.json, nerfstudio's export or transforms-style
        keyframes (docs/export.md). A bad file leaves the current path as it was."""
        try:
            n = self.path_editor.load(path, self.current.meta, dataparser_transforms)
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
        key = ("path", ed.version, ed.video.aspect())
        cached = self._path_layers.get("path")
        if cached is None or cached.key != key:
            segs, cols = path_segments(ed, length=self._frustum_length())
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
            segs, cols = playhead_segments(ed, length=self._frustum_length())
            cached = layer("path_playhead", "lines", segs.reshape(-1, 3), np.repeat(cols, 2, axis=0), key)
            self._path_layers["path_playhead"] = cached
        return cached

    def _frustum_length(self) -> float:
        """Key frusta sized to the scene: a tenth of the training cameras' distance from the centre."""
        c2w = self.current.train_cams[0]
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
                cams, fps = path_cameras(v.path, self.current.meta, v.frames), ed.path.fps
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        width, height = v.render_size()
        quality = QUALITIES[v.quality][1]
        return self._video_job(out, cams, fps, width, height, quality, v.pause_training, v.spp, v.camera_model)

    def save_render_job(self, job_path: str | Path, out: str | Path) -> Path | Job | None:
        """Write what *Render video* would render into ``out`` as a render job (``ngp video --job``) at
        ``job_path``, to render on another machine or under ``torchrun``. A model as loaded from its snapshot file
        names that file; a model trained since is saved first, beside the job (``<job>.snapshot.npz``: a job is
        returned and the job file follows it). The crop box is not part of a job: the status says so when set."""
        import json

        from ..export.path_files import path_to_json
        from ..export.render_job import job_contents, write_render_job
        from ..outputs import check_output_file

        ed, v = self.path_editor, self.path_editor.video
        width, height = v.render_size()
        options: dict[str, Any] = {
            "out": out,
            "width": width,
            "height": height,
            "spp": v.spp,
            "camera_model": v.camera_model,
            "background": tuple(float(c) for c in self.settings.background),
            "look": self.settings.look if self.settings.look >= 0 else None,
        }
        camera_path = None
        try:
            check_output_file(job_path, (".json",), 1 << 20, "job file")
            frozen = self.frozen()
            if v.path == "keyframes":
                ed.frame_cameras()  # at least two keys
                camera_path = json.loads(path_to_json(ed.path.copy(), self.current.meta))
            else:
                options.update(path=v.path, frames=v.frames, fps=ed.path.fps)
            trainer, snapshot = self.runner.trainer, self.current.snapshot_path
            unchanged = trainer is None or (
                not self.runner.running and int(trainer.step_count) == int(self.current.snapshot_step)
            )
            snapshot = snapshot if unchanged else None  # else the model has trained on since: save it
            if trainer is None and snapshot is None:
                raise NgpError("no snapshot to name in the job: train or open a scene first")
            saved = Path(job_path).with_name(Path(job_path).stem + ".snapshot.npz")
            job_contents({**options, "snapshot": snapshot or saved}, job_path, camera_path)  # checked before work
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        cropped = not torch_allclose(frozen.aabb, frozen.field.aabb)
        note = "; the crop box is not part of a job: ngp video renders the whole box" if cropped else ""

        def write(snapshot_file: Path) -> Path | None:
            try:
                written = write_render_job(job_path, {**options, "snapshot": snapshot_file}, camera_path)
            except NgpError as exc:
                self.set_status(str(exc), error=True)
                return None
            self.set_status(f"saved render job {written} (render it with: ngp video --job {written}){note}")
            return written

        if snapshot is not None:
            return write(Path(snapshot))
        if self.save_snapshot is None:
            self.set_status("cannot save the model for the job here", error=True)
            return None
        return self.save_snapshot(saved, then=write)

    def export_video(
        self,
        path: str | Path,
        path_kind: str,
        n_frames: int,
        fps: float,
        width: int,
        height: int,
        loop: bool = False,
        quality: int = 8,
        pause_training: bool = False,
        spp: int = 1,
        camera_model: str = "pinhole",
    ) -> Job | None:
        """Render ``n_frames`` of a path (``keyframes``: the edited one, its timing kept; ``orbit``; ``train``) in
        the background (progress per frame, cancellable). The panel uses ``render_video``; this is for scripts."""
        from ..export.camera_path import path_cameras

        try:
            if path_kind == "keyframes":
                if not self.path_editor.path.keys:
                    raise NgpError("no keyframes: add the current view with K or the panel first")
                p = self.path_editor.path.copy()
                if len(p.keys) > 1:
                    p.set_loop(loop or p.loop)
                cams = p.cameras(n_frames)
            else:
                cams = path_cameras(path_kind, self.current.meta, n_frames, loop)
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        return self._video_job(path, cams, fps, width, height, quality, pause_training, spp, camera_model)

    def _video_job(
        self,
        out: str | Path,
        cams: list[Any],
        fps: float,
        width: int,
        height: int,
        quality: int,
        pause_training: bool,
        spp: int = 1,
        camera_model: str = "pinhole",
    ) -> Job | None:
        """A background job rendering ``cams`` into ``out`` from a copy of the model taken now (``spp`` samples per
        pixel; ``camera_model`` pinhole, or equirectangular for a 360-degree video of 2:1 frames), queued behind the
        videos asked for before it. When the model is not training, finished frames are kept if it is cancelled or
        fails, and the same video asked for again resumes from them (``frame_cache``)."""
        import os

        from ..export.frame_cache import cache_folder
        from ..export.video import check_video_target, export_video

        target = os.path.abspath(out)
        resumable = not self.runner.running  # a training model changes: its frames could never be reused
        try:
            if camera_model == "equirectangular" and width != 2 * height:
                raise NgpError(f"a 360-degree video needs a 2:1 size (width = 2 x height), got {width}x{height}")
            if self.video_queue.output_taken(target):
                raise NgpError(f"{out}: a queued video is written there already; choose another name")
            check_video_target(out, len(cams), width, height, kept_frames=resumable)
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

        reused = [0]  # frames found kept from an earlier, cancelled render of the same video

        def work(job: Job) -> Path:
            def progress(done: int, total: int) -> None:
                job.report(done / max(total, 1), f"frame {min(done + 1, total)}/{total}")

            with self.video_queue.turn(job):
                job.report(0.0, f"frame 1/{len(cams)}")
                return export_video(
                    frozen,
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
                    spp=spp,
                    camera_model=camera_model,
                    resume=resumable,
                    reused=lambda k: reused.__setitem__(0, k),
                )

        def kept() -> str:
            n = len(list(cache_folder(out).glob("*.png"))) if resumable else 0
            return f"{n} of {len(cams)} frames kept: render the same video again to resume" if n else "nothing written"

        def done(path: Path) -> None:
            resume()
            self.path_editor.video.last_output = Path(os.path.abspath(path))
            self.set_status(
                f"saved video {self.path_editor.video.last_output} ({len(cams)} frames of "
                f"{width}x{height}{' 360-degree' if camera_model == 'equirectangular' else ''} at {fps:g} fps"
                + (f"; {reused[0]} frames reused from the interrupted render)" if reused[0] else ")")
            )

        def failed(exc: BaseException) -> None:
            resume()
            self.report_error(exc, "app: video export", prefix=f"video failed ({kept()}): ")

        def cancelled() -> None:
            resume()
            self.set_status(f"video cancelled: {kept()}")

        job = self.jobs.submit("video", work, on_done=done, on_error=failed, on_cancel=cancelled)
        self.video_queue.add(job, target)
        if self.video_queue.waiting():
            self.set_status(f"video queued: {self.video_queue.waiting()} waiting behind the one rendering")
        return job
