"""The app's scene loading: classify a dropped path and load a scene or snapshot (slow, any thread) into a ``Loaded``
value, which the session swaps in on the UI thread; ``open_async`` does it as a background job.

A collaborator of :class:`~ngp_app.gui.session.Session`: it gets the job runner, the status callbacks and a trainer
factory, and returns what it loaded; every failure ends up in the status line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import NgpError, SceneError, SnapshotError
from .jobs import Job, JobRunner
from .rendering import RenderSource

log = logging.getLogger(__name__)


def _scene_key(path: str | Path) -> Path:
    """The folder a scene path names (a scene file's folder), absolute: where the app keeps a scene's chosen box."""
    p = Path(path).resolve()
    return p.parent if p.is_file() else p


def _made_by_import(transforms: Path) -> bool:
    """Whether ``transforms`` is a transforms.json that ``ngp import`` wrote (it carries the import's summary)."""
    import json

    try:
        return transforms.is_file() and isinstance(json.loads(transforms.read_text()).get("ngp_import"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def frames_said(meta: dict[str, Any]) -> str:
    """How many frames train and how many are held out: "70 training frames (11 held out for evaluation)"."""
    n, held = int(meta.get("n_frames", 0)), int(meta.get("held_out", 0))
    return f"{n} training frames" + (f" ({held} held out for evaluation)" if held else "")


@dataclass
class Loaded:
    """A scene or snapshot loaded off the UI thread, ready to swap in."""

    scene: Any  # with its training images; None for a view-only snapshot
    meta: dict[str, Any]  # the scene's metadata (a view-only snapshot's copy)
    trainer: Any  # None for a view-only snapshot
    message: str  # the status line once it is in
    start: bool = False  # start training once it is in
    source: RenderSource | None = None  # a view-only snapshot's model
    snapshot_path: Path | None = None
    snapshot_step: int | None = None  # a snapshot's step (None: a scene, keep the last)
    config_name: str | None = None  # a snapshot's config name (None: keep the current one)


class SceneLoader:
    """Opens scenes and snapshots. ``make_trainer(scene, config)`` builds a trainer (config None: the session's)."""

    def __init__(
        self,
        jobs: JobRunner,
        set_status: Callable[..., None],
        report_error: Callable[..., str],
        make_trainer: Callable[[Any, dict[str, Any] | None], Any],
        device: Any,
        downscale: int = 1,
        max_size: int | None = None,
    ) -> None:
        self.jobs, self.set_status, self.report_error = jobs, set_status, report_error
        self.make_trainer, self.device, self.downscale, self.max_size = make_trainer, device, downscale, max_size
        self.loading: str | None = None  # name of what a background load is opening, for the HUD
        self.boxes: dict[Path, int] = {}  # aabb_scale chosen in the app for scenes ngp import did not make
        self._box_notes: dict[Path, str] = {}  # said once the scene loads with its new box
        self._token = 0
        self._job: Job | None = None

    def classify(self, path: str | Path) -> str:
        """'scene', 'snapshot', or raise NgpError with a one-line reason."""
        from ..data.importer.sources import IMAGE_SUFFIXES
        from ..data.llff import POSES_FILE
        from ..data.loaders import resolve_scene
        from ..snapshot import read_snapshot_meta

        p = Path(path)
        if not p.exists():
            raise NgpError(f"{p}: no such file or folder")
        if p.is_file() and (p.suffix.lower() == ".json" or p.name == POSES_FILE):
            return "scene"
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:  # as ``ngp import`` explains it
            raise NgpError(f"{p.name}: a single photo; drop the folder that holds the photos to import them")
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

    def load(self, path: str | Path, start: bool) -> Loaded:
        """Load a scene (and build its trainer) or a snapshot (slow, any thread); raises on bad input."""
        return self._load_scene(path, start) if self.classify(path) == "scene" else self._load_snapshot(path)

    def open_async(self, path: str | Path, start: bool, swap: Callable[[str | Path, Loaded], bool]) -> Job:
        """Load ``path`` in a background job; ``swap(path, loaded)`` runs on the UI thread when it is loaded. A newer
        request supersedes (and cancels) an older one still loading."""
        self._token += 1
        token = self._token
        name = self.loading = Path(path).name
        self.set_status(f"loading {name}...")
        if self._job is not None:
            self._job.cancel()

        def work(job: Job) -> Loaded:
            job.report(None, "checking")
            kind = self.classify(path)
            job.report(None, "loading images, building the model" if kind == "scene" else "loading the snapshot")
            return self._load_scene(path, start) if kind == "scene" else self._load_snapshot(path)

        def current() -> bool:
            if token != self._token:
                return False  # superseded by a later request
            self.loading = self._job = None
            return True

        def done(loaded: Loaded) -> None:
            if current() and not job.cancel_requested:
                swap(path, loaded)

        def failed(exc: BaseException) -> None:
            if current():
                self.report_error(exc, f"app: opening {path}", prefix=open_prefix(path, exc))

        def cancelled() -> None:
            if current():
                self.set_status(f"opening {name} cancelled")

        job = self._job = self.jobs.submit(f"open {name}", work, done, failed, cancelled)
        return job

    def rebox(self, path: str | Path, aabb_scale: int, was: float) -> None:
        """Give the scene at ``path`` the box ``aabb_scale`` from its next load on: a scene ``ngp import`` made gets it
        written into its transforms.json (poses and sparse points kept: a re-convert without SfM); another scene
        keeps its file and gets the box for this session (``ngp train --aabb-scale`` does the same)."""
        from ..data.importer.pipeline import rebox_import

        key = _scene_key(path)
        transforms = key / "transforms.json"
        if _made_by_import(transforms):
            rebox_import(transforms, aabb_scale)
            self.boxes.pop(key, None)
            self._box_notes[key] = f"aabb_scale {aabb_scale} written to transforms.json (was {was:g}; poses kept)"
        else:
            self.boxes[key] = aabb_scale
            self._box_notes[key] = f"aabb_scale {aabb_scale} for this session (the scene's file says otherwise)"

    def _load_scene(self, path: str | Path, start: bool) -> Loaded:
        """Load a scene (in the box chosen in the app, if any) and build its trainer."""
        from ..data.loaders import held_out_frames, load_scene

        scene = load_scene(path, "train", self.downscale, self.max_size)
        if scene.n_frames == 0:
            raise SceneError(f"{path}: scene has no frames")
        key = _scene_key(path)
        if key in self.boxes:
            log.info("%s: aabb_scale %d as chosen in the app (its file: %g)", path, self.boxes[key], scene.aabb_scale)
            scene.aabb_scale = float(self.boxes[key])
        trainer = self.make_trainer(scene, None)
        meta = {**scene.metadata(), "held_out": held_out_frames(path), "downscale": self.downscale}
        note = self._box_notes.pop(key, "")
        return Loaded(
            scene,
            meta,
            trainer,
            start=start,
            message=f"scene {scene.name}: {frames_said(meta)}, training {'on' if start else 'off'}"
            + (f"; {note}" if note else ""),
        )

    def _load_snapshot(self, path: str | Path) -> Loaded:
        """Load a snapshot, and its scene and a trainer restored from it when the scene is on disk."""
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
        config_name = snap.config.name
        if scene is not None:
            trainer = self.make_trainer(scene, snap.config)
            trainer.restore(snap)
            return Loaded(
                scene,
                {**scene.metadata(), "downscale": self.downscale},
                trainer,
                snapshot_path=snapshot_path,
                snapshot_step=snap.step,
                config_name=config_name,
                message=f"snapshot {snapshot_path.name} at step {snap.step}: training can continue (T)",
            )
        source = RenderSource(snap.nerf.to(self.device))
        return Loaded(
            None,
            dict(snap.scene),
            None,
            source=source,
            snapshot_path=snapshot_path,
            snapshot_step=snap.step,
            config_name=config_name,
            message=f"snapshot {snapshot_path.name} at step {snap.step}: view only (its scene is not on disk)",
        )


def open_prefix(path: str | Path, exc: BaseException) -> str:
    """What goes before the error line of a path that cannot be opened (an NgpError names the path itself)."""
    return "" if isinstance(exc, NgpError) else f"cannot open {path}: "
