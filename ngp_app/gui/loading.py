"""The app's scene loading: classify a dropped path, load a scene or snapshot (in the background, swapped in
between UI frames), and reset the view for it.

Mixed into :class:`~ngp_app.gui.state.AppState`; every failure ends up in the status line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import NgpError, SceneError, SnapshotError
from .dynres import DynamicResolution
from .jobs import Job, JobRunner

log = logging.getLogger(__name__)


class SceneLoading:
    """Opening scenes and snapshots; relies on AppState's runner, camera, settings, status and jobs."""

    device: Any
    downscale: int
    max_size: int | None
    backend_request: str
    seed: int
    config_name: str
    runner: Any
    camera: Any
    settings: Any
    dynres: DynamicResolution
    scene: Any
    scene_meta: dict[str, Any]
    snapshot_source: Any
    snapshot_path: Path | None
    generation: int
    train_cams: tuple[np.ndarray, np.ndarray, np.ndarray]
    loading: str | None
    _occ_cache: Any
    jobs: JobRunner
    _load_job: Job | None
    _load_token: int
    _loads_applied: int
    snapshot_step: int
    path_editor: Any
    compare_index: int | None
    sparse_points: tuple[np.ndarray, np.ndarray]
    _scene_identity: str | None
    set_status: Callable[..., None]
    report_error: Callable[..., str]

    # ------------------------------------------------------------------------------------------ loading
    def classify(self, path: str | Path) -> str:
        """'scene', 'snapshot', or raise NgpError with a one-line reason."""
        from ..data.loaders import resolve_scene
        from ..snapshot import read_snapshot_meta

        p = Path(path)
        if not p.exists():
            raise NgpError(f"{p}: no such file or folder")
        if p.is_file() and p.suffix.lower() == ".json":
            return "scene"
        if p.is_dir():
            try:
                resolve_scene(p, "train")
                return "scene"
            except SceneError as exc:
                if not (p / "snapshot.npz").is_file():
                    raise NgpError(f"{exc}, no snapshot.npz and no photos to import either") from None
        try:
            read_snapshot_meta(p)
        except SnapshotError as exc:
            raise NgpError(f"cannot open {p.name}: {exc}") from None
        return "snapshot"

    def open_path(self, path: str | Path, start: bool = True) -> bool:
        """Open a dropped/chosen path now (blocking). Never raises: failures go to the status line. Returns success."""
        apply = self._prepare_or_report(path, start)
        return apply is not None and self._apply_or_report(path, apply)

    def open_path_async(self, path: str | Path, start: bool = True) -> Any:
        """Open a path without blocking the UI: images, the model and a snapshot load in a background job; the
        swap itself happens on the UI thread (``apply_pending``, every frame). A newer request supersedes (and
        cancels) an older one still loading. A video or a folder of photos (no transforms.json) is imported first
        (``importing.SceneImporting.start_import``)."""
        from .importing import wants_import

        if wants_import(path):
            return self.start_import(path, start=start)  # type: ignore[attr-defined]
        self._load_token += 1
        token = self._load_token
        name = self.loading = Path(path).name
        self.set_status(f"loading {name}...")
        if self._load_job is not None:
            self._load_job.cancel()

        def work(job: Job) -> Callable[[], None]:
            job.report(None, "checking")
            kind = self.classify(path)
            job.report(None, "loading images, building the model" if kind == "scene" else "loading the snapshot")
            return self._prepare_scene(path, start) if kind == "scene" else self._prepare_snapshot(path)

        def current() -> bool:
            if token != self._load_token:
                return False  # superseded by a later request
            self.loading = self._load_job = None
            return True

        def done(apply: Callable[[], None]) -> None:
            if current() and not job.cancel_requested and self._apply_or_report(path, apply):
                self._loads_applied += 1

        def failed(exc: BaseException) -> None:
            if current():
                self.report_error(exc, f"app: opening {path}", prefix=open_prefix(path, exc))

        def cancelled() -> None:
            if current():
                self.set_status(f"opening {name} cancelled")

        job = self._load_job = self.jobs.submit(f"open {name}", work, done, failed, cancelled)
        return job

    def _prepare_or_report(self, path: str | Path, start: bool) -> Callable[[], None] | None:
        try:
            kind = self.classify(path)
            return self._prepare_scene(path, start) if kind == "scene" else self._prepare_snapshot(path)
        except Exception as exc:  # noqa: BLE001 - the app must survive any bad input
            self.report_error(exc, f"app: opening {path}", prefix=open_prefix(path, exc))
        return None

    def _apply_or_report(self, path: str | Path, apply: Callable[[], None]) -> bool:
        try:
            apply()
            return True
        except Exception as exc:  # noqa: BLE001
            self.report_error(exc, f"app: opening {path}", prefix=f"cannot open {path}: ")
            return False

    def _make_trainer(self, scene: Any, config_name: str | None = None) -> Any:
        from ..config import load_config
        from ..train.trainer import Trainer

        config = load_config(config_name or self.config_name)
        return Trainer(scene, config, device=self.device, backend=self.backend_request, seed=self.seed)

    def _prepare_scene(self, path: str | Path, start: bool) -> Callable[[], None]:
        """Load a scene and build its trainer (slow, any thread); returns the swap to run on the UI thread."""
        from ..data.loaders import load_scene

        scene = load_scene(path, "train", self.downscale, self.max_size)
        if scene.n_frames == 0:
            raise SceneError(f"{path}: scene has no frames")
        trainer = self._make_trainer(scene)

        def apply() -> None:
            self.runner.replace(trainer, start=False)
            self.scene, self.scene_meta = scene, scene.metadata()
            self.snapshot_source, self.snapshot_path = None, None
            self._scene_changed()
            if start:
                self.runner.start()
            self.set_status(f"scene {scene.name}: {scene.n_frames} frames, training {'on' if start else 'off'}")

        return apply

    def _prepare_snapshot(self, path: str | Path) -> Callable[[], None]:
        """Load a snapshot (and its scene and trainer when on disk); returns the swap to run on the UI thread."""
        from ..data.loaders import load_scene
        from ..snapshot import resolve_snapshot_path, snapshot_scene_path
        from ..train.run_files import load_run_snapshot

        snap = load_run_snapshot(path, device=self.device)
        snapshot_path = resolve_snapshot_path(path)
        scene = None
        scene_path = snapshot_scene_path(snap.scene, snapshot_path)
        if scene_path is not None:
            try:
                scene = load_scene(scene_path, "train", self.downscale, self.max_size)
            except SceneError:
                scene = None
        trainer = None
        if scene is not None:
            from ..train.trainer import Trainer

            trainer = Trainer(scene, snap.config, device=self.device, backend=self.backend_request, seed=self.seed)
            trainer.restore(snap)

        def apply() -> None:
            self.snapshot_path, self.snapshot_step = snapshot_path, snap.step
            if trainer is not None:
                self.runner.replace(trainer, start=False)
                self.scene, self.scene_meta, self.snapshot_source = scene, scene.metadata(), None
                how = "training can continue (T)"
            else:
                from .rendering import RenderSource

                self.runner.replace(None, start=False)
                self.scene, self.scene_meta = None, dict(snap.scene)
                self.snapshot_source = RenderSource(snap.model, snap.grid, snap.march, snap.model.aabb.to(self.device))
                how = "view only (its scene is not on disk)"
            self.config_name = snap.config.get("name", self.config_name)
            self._scene_changed()
            self.set_status(f"snapshot {snapshot_path.name} at step {snap.step}: {how}")

        return apply

    def _scene_changed(self) -> None:
        meta = self.scene_meta
        identity = os.path.abspath(meta["path"]) if meta.get("path") else None
        if identity != self._scene_identity:  # another scene (a snapshot of the same one keeps them)
            self._scene_identity = identity
            self.path_editor.clear()
        self.compare_index = None
        c2w = np.asarray(meta.get("c2w", []), dtype=np.float64).reshape(-1, 3, 4)
        intr = np.asarray(meta.get("intrinsics", []), dtype=np.float64).reshape(-1, 4)
        sizes = np.asarray(meta.get("sizes", []), dtype=np.float64).reshape(-1, 2)
        self.train_cams = (c2w, intr, sizes)
        from .importing import scene_points

        self.sparse_points = scene_points(meta)  # (ngp points, colours) of an imported scene, for the points mode
        scale = float(meta.get("aabb_scale", 1.0))
        half = scale / 2.0
        self.settings.crop_min = (0.5 - half,) * 3
        self.settings.crop_max = (0.5 + half,) * 3
        self.settings.ground_truth = False
        if len(c2w):
            radius = float(np.median(np.linalg.norm(c2w[:, :, 3] - 0.5, axis=1)))
            self.camera.set_home((0.5, 0.5, 0.5), max(radius, 0.3))
        self._occ_cache = None
        self.dynres.reset(DynamicResolution.scale)
        self.generation += 1


def open_prefix(path: str | Path, exc: BaseException) -> str:
    """What goes before the error line of a path that cannot be opened (an NgpError names the path itself)."""
    return "" if isinstance(exc, NgpError) else f"cannot open {path}: "
