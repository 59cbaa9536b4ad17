"""Plain-Python state of the desktop app: scene, training thread, camera, render settings, drops, export.

Nothing here imports a windowing toolkit, so the tests drive it directly. The viewport and panel only call
these methods and read these fields; every user error ends up in ``status`` instead of an exception.

Threads: the UI thread (the main loop) owns this object. Other threads (the panel's callbacks where DearPyGui
runs them elsewhere, background jobs, the render thread) hand work to it with ``post``; ``apply_pending`` runs
that work on the UI thread every frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .camera import OrbitCamera, nearest_camera
from .dynres import DynamicResolution
from .exports import ExportActions
from .importing import SceneImporting
from .jobs import JobRunner
from .loading import SceneLoading
from .path_actions import PathActions
from .rendering import RenderCancelled, RenderSource, ViewRendering  # noqa: F401 - re-exported
from .training import TrainingRunner

log = logging.getLogger(__name__)
CONFIGS = ("small", "base", "big")
ERROR_SECONDS = 15.0  # an error message fades over its last FADE_SECONDS, then the status line clears
FADE_SECONDS = 3.0


@dataclass
class RenderSettings:
    mode: str = "rgb"  # one of overlays.MODES (the names ``ngp render --mode`` uses)
    target_fps: float = 30.0
    resolution_scale: float = 1.0  # cap on the fraction of the window rendered (dynamic resolution stays below)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    crop_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    show_hud: bool = True
    ground_truth: bool = False
    gt_index: int = 0
    overlays: tuple[str, ...] = ()  # overlays.OVERLAYS switched on (drawn over the image, not into it)

    def key(self) -> tuple:
        """Everything that changes the rendered picture (compared between frames); not the HUD or the overlays."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in ("show_hud", "overlays"))

    def toggle_overlay(self, name: str, on: bool | None = None) -> None:
        """Switch an overlay on or off (``on`` None: flip it)."""
        have = name in self.overlays
        if on is None:
            on = not have
        self.overlays = tuple(n for n in self.overlays if n != name) + ((name,) if on else ())


class AppState(SceneLoading, SceneImporting, PathActions, ExportActions, ViewRendering):
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
        self.downscale = downscale
        self.max_size = max_size
        self.seed = seed
        self.scene: Any = None
        self.scene_meta: dict[str, Any] = {}
        self.snapshot_source: RenderSource | None = None
        self.snapshot_path: Path | None = None
        self.snapshot_step = 0  # step of a view-only snapshot (no trainer to ask)
        self.runner = TrainingRunner()
        self.camera = OrbitCamera()
        self.settings = RenderSettings()
        self.dynres = DynamicResolution()
        self._status: tuple[str, bool, float] = (
            "drop a scene folder, transforms.json, snapshot, photo folder or video onto the viewport",
            False,
            time.monotonic(),
        )
        self.generation = 0  # bumps whenever the scene/model is swapped
        self.train_cams = (np.zeros((0, 3, 4)), np.zeros((0, 4)), np.zeros((0, 2)))
        self._reported_error: str | None = None
        self._occ_cache: tuple[int, int, np.ndarray] | None = None
        self._replica_lock = threading.Lock()
        self.overlay_providers: dict[str, Callable[[], Any]] = {}  # extra overlay layers by name (rendering.py)
        self._layer_cache: dict[str, Any] = {}
        self.save_optimizer_state = False  # snapshots carry Adam's moments (~2x larger; exact resume)
        self.loading: str | None = None  # name of what a background load is opening, for the HUD
        self._load_token = 0
        self._load_job: Any = None
        self._scene_identity: str | None = None  # absolute path of the open scene (keyframes belong to it)
        self._loads_applied = 0
        self.ui_thread = threading.get_ident()  # the thread that created the state runs ``apply_pending``
        self._ui_calls: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self.jobs = JobRunner(self.post)
        self._init_path_actions()  # the camera-path editor (its keys: ``keyframes``) and the per-image table
        self.import_job: Any = None  # the job importing a dropped photo folder / video (gui/importing.py)
        self.import_out: Path | None = None  # the scene folder it writes
        self.sparse_points: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 3)), np.zeros((0, 3), np.uint8))

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
                self.report_error(exc, "app: a panel or job callback")
        return self._loads_applied != before

    def wait_job(self, job: Any, timeout: float = 300.0) -> Any:
        """Block until ``job`` ends and its outcome has been handled (tests, scripts); returns its result."""
        if job is None:
            return None
        job.join(timeout)
        self.apply_pending()
        return job.result

    # ------------------------------------------------------------------------------------------ status
    @property
    def status(self) -> str:
        return self._status[0]

    @property
    def status_is_error(self) -> bool:
        return self._status[1]

    @property
    def status_time(self) -> float:
        """``time.monotonic()`` when the current message was set."""
        return self._status[2]

    def set_status(self, message: str, error: bool = False) -> None:
        """Show a one-line message (any thread: the three fields change together)."""
        self._status = (message, error, time.monotonic())
        (log.warning if error else log.info)("%s", message)

    def status_alpha(self, now: float | None = None) -> float:
        """How visible the status message is (1 = fully): errors fade out at the end of ``ERROR_SECONDS``."""
        if not self.status_is_error:
            return 1.0
        left = ERROR_SECONDS - ((time.monotonic() if now is None else now) - self.status_time)
        return float(min(1.0, max(0.0, left / FADE_SECONDS)))

    def expire_status(self, now: float | None = None) -> bool:
        """Clear an error that has been shown for ``ERROR_SECONDS`` (UI thread, every frame). Returns whether it did."""
        status = self._status
        if status[1] and self.status_alpha(now) <= 0.0 and self._status is status:
            self._status = ("", False, time.monotonic() if now is None else now)
            return True
        return False

    def report_error(self, exc: BaseException, context: str, prefix: str = "") -> str:
        """Show an exception as one red line and carry on: bad input says what and where; anything unexpected is an
        internal error whose traceback goes to a log file named in the line (``crash.describe_error``)."""
        from ..crash import describe_error

        line = prefix + describe_error(exc, context)
        self.set_status(line, error=True)
        return line

    def poll_errors(self) -> None:
        """Move a training-thread error into the status line."""
        err = self.runner.error
        if err and err is not self._reported_error:  # each error once; later messages may replace it
            self._reported_error = err
            if self.status != err:
                self.set_status(err, error=True)

    @property
    def trainer(self) -> Any:
        return self.runner.trainer

    @property
    def step(self) -> int:
        """The trainer's step, or a view-only snapshot's."""
        return self.runner.step if self.runner.trainer is not None else self.snapshot_step

    @property
    def backend(self) -> str:
        return self.trainer.backend if self.trainer is not None else "-"

    # ------------------------------------------------------------------------------------------ training
    def toggle_training(self) -> bool:
        running = self.runner.toggle()
        if self.runner.error and not running:
            self.set_status(self.runner.error, error=True)
        else:
            self.set_status("training" if running else f"training stopped at step {self.step}")
        return running

    def reset_training(self) -> None:
        if self.scene is None:
            self.set_status("nothing to reset: open a scene first", error=True)
            return
        self.runner.reset(lambda: self._make_trainer(self.scene))
        self.generation += 1
        if self.runner.error:
            self.set_status(self.runner.error, error=True)
        else:
            self.set_status("training reset")

    def set_config(self, name: str) -> None:
        """Switch network config (small/base/big); restarts training from scratch."""
        old = self.config_name
        self.config_name = name
        if self.scene is not None:
            self.reset_training()
            if self.runner.error:
                self.config_name = old

    def set_backend(self, name: str) -> None:
        old = self.backend_request
        self.backend_request = name
        if self.scene is not None:
            self.reset_training()
            if self.runner.error:
                self.backend_request = old

    def set_optimize_extrinsics(self, on: bool) -> None:
        """Turn camera pose refinement on or off for the running training (takes effect at the next step)."""
        if self.trainer is None:
            self.set_status("open a scene first", error=True)
            return
        self.trainer.optimize_extrinsics = bool(on)
        self.set_status("pose refinement " + ("on" if on else "off"))

    # ------------------------------------------------------------------------------------------ cameras
    def snap_to_training_camera(self, delta: int) -> int | None:
        """Jump to the previous (-1) / next (+1) training camera, starting from the nearest one."""
        c2w, intr, sizes = self.train_cams
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

    def toggle_ground_truth(self) -> bool:
        if self.scene is None:
            self.set_status("no training images to show", error=True)
            return False
        self.settings.ground_truth = not self.settings.ground_truth
        if self.settings.ground_truth:
            self.snap_to_training_camera(0)
        return self.settings.ground_truth

    def close(self) -> None:
        self.runner.stop()
        self.jobs.close()
