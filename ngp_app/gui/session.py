"""The app's session: it owns the open scene, the training runner, the render source, the camera, the render
settings, the status line, the UI thread's queue and the background jobs; collaborators do the work.

Collaborators (each given, when built, exactly what it needs: the shared camera/settings/scene state, the runner,
the job runner and the status callbacks; none reaches another through the session):
``loader`` (open scenes and snapshots: returns a ``Loaded`` value the session swaps in), ``importer`` (dropped
photo folders and videos), ``view`` (the viewport's pictures and overlays), ``paths`` (the camera-path editor and
path videos), ``images`` (the per-image loss table) and ``exports`` (snapshots, screenshots, meshes).

Nothing here imports a windowing toolkit, so the tests drive it directly; every user error ends up in the status
line instead of an exception. Threads: the UI thread (the main loop) owns this object. Other threads (the panel's
callbacks where DearPyGui runs them elsewhere, background jobs, the render thread) hand work to it with ``post``;
``apply_pending`` runs that work on the UI thread every frame.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import NgpError
from .camera import OrbitCamera, nearest_camera
from .dynres import DynamicResolution
from .exports import Exports
from .image_actions import ImageActions
from .importing import SceneImporter, wants_import
from .jobs import Job, JobRunner
from .loading import Loaded, SceneLoader, open_prefix
from .path_actions import PathActions
from .rendering import RenderSource, ViewRenderer
from .scene_state import SceneState
from .settings import RenderSettings
from .status import StatusLine
from .training import TrainingRunner

log = logging.getLogger(__name__)
WELCOME = "drop a scene folder, transforms.json, snapshot, photo folder or video onto the viewport"


class Session:
    """One app session: the scene, trainer and render source, and the collaborators that act on them."""

    def __init__(
        self,
        config: str = "small",
        device: str | None = "cpu",
        backend: str = "auto",
        downscale: int = 1,
        max_size: int | None = None,
        seed: int = 0,
    ) -> None:
        from ..backends import resolve_device

        self.config_name = config
        self.device = resolve_device(device)
        self.backend_request = backend
        self.seed = seed
        self.current = SceneState()
        self.runner = TrainingRunner()
        self.camera = OrbitCamera()
        self.settings = RenderSettings()
        self.dynres = DynamicResolution()
        self.status_line = StatusLine(WELCOME)
        self._reported_error: str | None = None
        self._loads_applied = 0
        self.ui_thread = threading.get_ident()  # the thread that created the session runs ``apply_pending``
        self._ui_calls: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self.jobs = JobRunner(self.post)
        say, report = self.status_line.set, self.status_line.report_error
        self.loader = SceneLoader(self.jobs, say, report, self.make_trainer, self.device, downscale, max_size)
        self.importer = SceneImporter(self.jobs, say, report, self.open_path_async)
        self.view = ViewRenderer(self.camera, self.settings, self.current, self.source)
        self.paths = PathActions(
            self.camera,
            self.settings,
            self.current,
            self.runner,
            self.jobs,
            say,
            report,
            self.view.frozen,
            full_hd=self.device.type == "cuda",  # as ngp video on a GPU
            save_snapshot=lambda path, then: self.exports.save_snapshot(path, then=then),
        )
        self.images = ImageActions(
            self.camera, self.settings, self.current, self.runner, say, self.paths.path_editor.stop_preview
        )
        self.exports = Exports(self.camera, self.settings, self.current, self.runner, self.jobs, say, report, self.view)
        self.view.overlay_providers["path"] = self.paths.path_layer
        self.view.overlay_providers["path_playhead"] = self.paths.playhead_layer

    # ------------------------------------------------------------------------------------------ threads
    def post(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the UI thread at its next ``apply_pending`` (any thread may call this)."""
        self._ui_calls.put(fn)

    def on_ui_thread(self) -> bool:
        return threading.get_ident() == self.ui_thread

    def call_on_ui(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` now when on the UI thread, else queue it for the UI thread."""
        if self.on_ui_thread():
            fn()
        else:
            self.post(fn)

    def has_pending(self) -> bool:
        """Whether other threads posted work for the UI thread that it has not run yet."""
        return not self._ui_calls.empty()

    def apply_pending(self) -> bool:
        """Run the work other threads posted, in order, on the UI thread: callbacks, job results, finished loads.
        Returns whether a scene or snapshot was swapped in."""
        before = self._loads_applied
        while True:
            try:
                fn = self._ui_calls.get_nowait()
            except queue.Empty:
                break
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one failing callback must not stop the others
                self.status_line.report_error(exc, "app: a panel or job callback")
        return self._loads_applied != before

    def wait_job(self, job: Job | None, timeout: float = 300.0) -> Any:
        """Block until ``job`` ends and its outcome has been handled (tests, scripts); returns its result."""
        if job is None:
            return None
        job.join(timeout)
        self.apply_pending()
        return job.result

    # ------------------------------------------------------------------------------------------ status
    @property
    def status(self) -> str:
        return self.status_line.text

    @property
    def status_is_error(self) -> bool:
        return self.status_line.is_error

    def poll_errors(self) -> None:
        """Move a training-thread error into the status line."""
        err = self.runner.error
        if err and err is not self._reported_error:  # each error once; later messages may replace it
            self._reported_error = err
            if self.status != err:
                self.status_line.set(err, error=True)

    # ------------------------------------------------------------------------------------------ what is open
    @property
    def trainer(self) -> Any:
        return self.runner.trainer

    @property
    def step(self) -> int:
        """The trainer's step, or a view-only snapshot's."""
        return self.runner.step if self.runner.trainer is not None else self.current.snapshot_step

    @property
    def backend(self) -> str:
        return self.trainer.backend if self.trainer is not None else "-"

    def source(self) -> RenderSource | None:
        """What is rendered: the trainer's weight average, or a view-only snapshot's model."""
        t = self.trainer
        if t is not None:
            return RenderSource(t.eval_nerf, t.lock)
        return self.current.snapshot_source

    def make_trainer(self, scene: Any, config: dict[str, Any] | None = None) -> Any:
        """A trainer for ``scene`` with ``config`` (None: the session's config name, loaded now)."""
        from ..config import load_config
        from ..train.trainer import Trainer

        config = config if config is not None else load_config(self.config_name)
        return Trainer(scene, config, device=self.device, backend=self.backend_request, seed=self.seed)

    # ------------------------------------------------------------------------------------------ opening
    def open_path(self, path: str | Path, start: bool = True) -> bool:
        """Open a dropped/chosen path now (blocking). Never raises: failures go to the status line. Returns success."""
        try:
            loaded = self.loader.load(path, start)
        except Exception as exc:  # noqa: BLE001 - the app must survive any bad input
            self.status_line.report_error(exc, f"app: opening {path}", prefix=open_prefix(path, exc))
            return False
        return self._swap(path, loaded)

    def open_path_async(self, path: str | Path, start: bool = True) -> Job | None:
        """Open a path without blocking the UI: it loads in a background job and is swapped in on the UI thread
        (``apply_pending``, every frame); a newer request supersedes an older one. A video or a folder of photos (no
        transforms.json) is imported first (``importer``)."""
        if wants_import(path):
            return self.importer.start(path, start=start)
        return self.loader.open_async(path, start, self._swap)

    def reload_scene(self, aabb_scale: int | None = None) -> Job | None:
        """Open the current scene (or snapshot) again, at the loader's image size now (``loader.downscale``, the
        panel's *images at*), in the box ``aabb_scale`` when given (``SceneLoader.rebox``); training starts again if
        it was running. None (said in the status line) without one."""
        cur = self.current
        path = cur.snapshot_path if cur.snapshot_path is not None else cur.meta.get("path")
        if not path or cur.scene is None:
            self.status_line.set("no scene on disk to reload", error=True)
            return None
        if aabb_scale is not None:
            if cur.snapshot_path is not None:
                self.status_line.set(
                    "a snapshot keeps the box it was trained in; open its scene to change it", error=True
                )
                return None
            try:
                self.loader.rebox(path, aabb_scale, float(cur.meta.get("aabb_scale", 1.0)))
            except (NgpError, OSError) as exc:
                self.status_line.report_error(exc, f"app: changing the box of {path}", prefix="")
                return None
        return self.loader.open_async(path, self.runner.running, self._swap)

    def _swap(self, path: str | Path, loaded: Loaded) -> bool:
        """Swap a loaded scene or snapshot in (UI thread) and reset the view for it; returns success."""
        try:
            cur = self.current
            self.runner.replace(loaded.trainer, start=False)
            cur.scene, cur.snapshot_source, cur.snapshot_path = loaded.scene, loaded.source, loaded.snapshot_path
            if loaded.snapshot_step is not None:
                cur.snapshot_step = loaded.snapshot_step
            self.config_name = loaded.config_name or self.config_name
            if cur.adopt(loaded.meta):  # another scene (a snapshot of the same one keeps the keyframes)
                self.paths.path_editor.clear()
            self.images.close_compare()
            self.settings.look = -1  # another model: the default look
            half = float(loaded.meta.get("aabb_scale", 1.0)) / 2.0
            self.settings.crop_min, self.settings.crop_max = (0.5 - half,) * 3, (0.5 + half,) * 3
            self.settings.ground_truth = False
            c2w = cur.train_cams[0]
            if len(c2w):
                radius = float(np.median(np.linalg.norm(c2w[:, :, 3] - 0.5, axis=1)))
                self.camera.set_home((0.5, 0.5, 0.5), max(radius, 0.3))
            self.dynres.reset(DynamicResolution.scale)
            cur.generation += 1
            if loaded.start:
                self.runner.start()
            self.status_line.set(loaded.message)
        except Exception as exc:  # noqa: BLE001
            self.status_line.report_error(exc, f"app: opening {path}", prefix=f"cannot open {path}: ")
            return False
        self._loads_applied += 1
        return True

    # ------------------------------------------------------------------------------------------ training
    def toggle_training(self) -> bool:
        running = self.runner.toggle()
        if self.runner.error and not running:
            self.status_line.set(self.runner.error, error=True)
        else:
            self.status_line.set("training" if running else f"training stopped at step {self.step}")
        return running

    def reset_training(self) -> None:
        scene = self.current.scene
        if scene is None:
            self.status_line.set("nothing to reset: open a scene first", error=True)
            return
        self.runner.reset(lambda: self.make_trainer(scene))
        self.settings.look = -1
        self.current.generation += 1
        if self.runner.error:
            self.status_line.set(self.runner.error, error=True)
        else:
            self.status_line.set("training reset")

    def set_config(self, name: str) -> None:
        """Switch network config (small/base/big); restarts training from scratch."""
        old = self.config_name
        self.config_name = name
        if self.current.scene is not None:
            self.reset_training()
            if self.runner.error:
                self.config_name = old

    def set_backend(self, name: str) -> None:
        old = self.backend_request
        self.backend_request = name
        if self.current.scene is not None:
            self.reset_training()
            if self.runner.error:
                self.backend_request = old

    def set_optimize_extrinsics(self, on: bool) -> None:
        """Turn camera pose refinement on or off for the running training (takes effect at the next step)."""
        if self.trainer is None:
            self.status_line.set("open a scene first", error=True)
            return
        self.trainer.optimize_extrinsics = bool(on)
        self.status_line.set("pose refinement " + ("on" if on else "off"))

    # ------------------------------------------------------------------------------------------ cameras
    def snap_to_training_camera(self, delta: int) -> int | None:
        """Jump to the previous (-1) / next (+1) training camera, starting from the nearest one."""
        c2w, intr, sizes = self.current.train_cams
        if len(c2w) == 0:
            return None
        if self.settings.gt_index is None:
            self.settings.gt_index = 0
        i = nearest_camera(c2w, self.camera.eye, self.camera.basis()[2])
        if abs(delta) > 0 and i == self.settings.gt_index:
            i = i + delta
        self.settings.gt_index = i % len(c2w)
        k = self.settings.gt_index
        self.camera.look_from(c2w[k], fy=float(intr[k, 1]), height=int(sizes[k, 1]))
        return k

    def set_mode(self, mode: str) -> None:
        """Show ``mode`` (overlays.MODES; leaves the ground truth). The sparse-points view of a scene without SfM
        points says why it shows none."""
        self.settings.mode, self.settings.ground_truth = mode, False
        if mode == "points" and len(self.current.sparse_points[0]) == 0:
            self.status_line.set(
                "this scene has no sparse points to show (an ngp import writes them: transforms.json's ply_file_path)"
            )

    def toggle_ground_truth(self) -> bool:
        if self.current.scene is None:
            self.status_line.set("no training images to show", error=True)
            return False
        self.settings.ground_truth = not self.settings.ground_truth
        if self.settings.ground_truth:
            self.snap_to_training_camera(0)
        return self.settings.ground_truth

    def close(self) -> None:
        self.runner.stop()
        self.jobs.close()
