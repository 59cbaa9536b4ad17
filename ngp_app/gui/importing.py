"""The app's import: a dropped photo folder (no transforms.json) or video becomes a scene in the background
(``data.importer``) as a job (``jobs.JobRunner``: its stage, percent, ETA and Cancel in the panel and HUD); then the
scene opens and trains. Also the sparse points of a scene (``ply_file_path``) in ngp space, for the 'points' mode.

A collaborator of :class:`~ngp_app.gui.session.Session`; no windowing toolkit here, so tests drive it directly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ImportCancelled, NgpError
from .jobs import Job, JobCancelled, JobRunner

log = logging.getLogger(__name__)

#: SIFT runs on copies shrunk to this longer side in the app (phone videos are 1080p-4K; the scene keeps full size).
APP_MAX_IMAGE_SIZE = 1600
#: The scene folder made for a dropped SOURCE: SOURCE's name with this suffix, beside it.
SCENE_SUFFIX = "_ngp"


def wants_import(path: str | Path) -> bool:
    """Whether a dropped path is import material: a video file, or a folder that is not a scene (no
    transforms.json / transforms_train.json / LLFF poses_bounds.npy) nor a snapshot folder and holds photos or a
    COLMAP model. The import
    itself reports what else is wrong with it (too few images, ...); a folder with neither a scene nor photos is
    the loader's one-line error."""
    from ..data.importer.sources import VIDEO_SUFFIXES, detect_source

    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in VIDEO_SUFFIXES
    if not p.is_dir():
        return False
    scene_files = ("transforms.json", "transforms_train.json", "poses_bounds.npy", "snapshot.npz")
    if any((p / name).is_file() for name in scene_files):
        return False
    try:
        detect_source(p)
    except NgpError:  # no photos and no COLMAP model
        return False
    return True


def scene_dir_for(source: Path) -> Path:
    """Where a dropped ``source`` is imported to: ``NAME_ngp`` beside it (NAME: the folder, or the video without
    its suffix; a folder called images names its parent), or under ~/ngp-scenes when that is not writable."""
    import os

    src = source.resolve()
    name = (src.parent.name if src.name == "images" else src.name) if src.is_dir() else src.stem
    parent = src.parent.parent if src.is_dir() and src.name == "images" else src.parent
    if not os.access(parent, os.W_OK):
        parent = Path.home() / "ngp-scenes"
    return parent / f"{name}{SCENE_SUFFIX}"


def scene_points(meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The sparse points of a scene (its transforms.json's ``ply_file_path``) in ngp space (n, 3) with colours
    (n, 3) uint8; empty arrays when it has none or they can't be read."""
    from ..data.importer.points import read_points_ply

    empty = (np.zeros((0, 3)), np.zeros((0, 3), np.uint8))
    path = Path(str(meta.get("path", "")))
    transforms = path if path.is_file() else path / "transforms.json"
    if not transforms.is_file():
        return empty
    try:
        import json

        ply = json.loads(transforms.read_text()).get("ply_file_path")
        if not isinstance(ply, str):
            return empty
        xyz, rgb = read_points_ply(transforms.parent / ply)
    except (NgpError, OSError, ValueError) as exc:
        log.warning("sparse points of %s not shown: %s", transforms, exc)
        return empty
    scale = float(meta.get("scale", 0.33))
    offset = np.asarray(meta.get("offset", (0.5, 0.5, 0.5)), dtype=np.float64)
    return (xyz.astype(np.float64) * scale + offset)[:, [1, 2, 0]], rgb  # as nerf_to_ngp moves camera centres


def outside_box(xyz: np.ndarray, aabb_scale: float) -> np.ndarray:
    """Which points (n, 3) in ngp space lie outside the scene box (side ``aabb_scale`` centred at 0.5): (n,) bool."""
    return (np.abs(np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - 0.5) > aabb_scale / 2.0).any(axis=1)


def box_holding(xyz: np.ndarray) -> int:
    """The smallest aabb_scale (a power of two 1..128) whose box holds 99 % of the points (n, 3) in ngp space, as
    ``ngp import`` chooses it."""
    from ..data.importer.conventions import aabb_scale_for

    return aabb_scale_for(np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - 0.5, scale=1.0)


def points_said(xyz: np.ndarray, aabb_scale: float) -> str:
    """The scene line's words on the sparse points: how many, the share outside the box, the aabb_scale that holds
    99 % of them when it is another; "" without points."""
    n = len(xyz)
    if n == 0:
        return ""
    share = float(outside_box(xyz, aabb_scale).mean())
    holding = box_holding(xyz)
    hint = f" ({holding} holds 99 %)" if holding != int(aabb_scale) else ""
    return f"{n:,} SfM points, {100.0 * share:.1f} % outside the box{hint}"


def import_verdict(meta: dict[str, Any]) -> str:
    """ "import: poses look good" / "import: poses doubtful: <why>" for a scene that ``ngp import`` made (its
    transforms.json's ``ngp_import`` summary), "" for other scenes and older imports."""
    from ..data.importer.verdict import verdict_line

    path = Path(str(meta.get("path", "")))
    transforms = path if path.is_file() else path / "transforms.json"
    try:
        import json

        summary = json.loads(transforms.read_text()).get("ngp_import") if transforms.is_file() else None
    except (OSError, ValueError):
        return ""
    line = verdict_line(summary) if isinstance(summary, dict) else ""
    return f"import: {line}" if line else ""


class SceneImporter:
    """Imports dropped captures as background jobs; ``open_scene(path, start)`` opens the scene an import wrote."""

    def __init__(
        self,
        jobs: JobRunner,
        set_status: Callable[..., None],
        report_error: Callable[..., str],
        open_scene: Callable[..., Any],
    ) -> None:
        self.jobs, self.set_status, self.report_error, self.open_scene = jobs, set_status, report_error, open_scene
        self.job: Job | None = None  # the job importing a dropped photo folder / video
        self.out: Path | None = None  # the scene folder it writes

    def start(self, source: str | Path, out: str | Path | None = None, start: bool = True) -> Job | None:
        """Import ``source`` into ``out`` (default ``scene_dir_for``) as a background job; when it finishes the scene
        opens (and trains when ``start``). An earlier import there is opened instead (returns that load's job).
        Never raises; returns None when refused (one import at a time)."""
        from ..data.importer import ImportOptions, SfmOptions, import_scene

        src = Path(source)
        target = Path(out) if out is not None else scene_dir_for(src)
        if self.running:
            self.set_status(f"{self.job.label} is running; cancel it first", error=True)
            return None
        if (target / "transforms.json").is_file():
            load = self.open_scene(target, start=start)
            self.set_status(f"{src.name} was imported before: opening {target} (delete it to import again)")
            return load

        def work(job: Job) -> Any:
            def progress(p: Any) -> None:  # from the import's threads: fields only, no UI calls
                if p.stage != job.stage.split(" ")[0]:
                    log.info("importing %s: %s", src.name, p.stage)
                job.update(p.overall, p.stage + (f" ({p.message})" if p.message else ""))

            try:
                return import_scene(
                    src,
                    target,
                    ImportOptions(sfm=SfmOptions(max_image_size=APP_MAX_IMAGE_SIZE)),
                    progress=progress,
                    cancel=job.cancel_event,
                )
            except ImportCancelled:  # the import removed what it wrote
                raise JobCancelled(job.label) from None

        def done(result: Any) -> None:
            from ..data.importer.verdict import verdict_line

            s = result.summary
            self.open_scene(target, start=start)
            verdict = verdict_line(s)
            self.set_status(
                f"imported {src.name}: {s.get('registered')} of {s.get('images')} images registered"
                + (f", {verdict}" if verdict else "")
                + f"; opening {target}"
            )

        def failed(exc: BaseException) -> None:
            self.report_error(
                exc, f"app: importing {src}", prefix="" if isinstance(exc, NgpError) else f"cannot import {src.name}: "
            )

        def cancelled() -> None:
            self.set_status(f"import of {src.name} cancelled: nothing kept")

        self.out = target
        self.job = self.jobs.submit(f"import {src.name}", work, done, failed, cancelled)
        self.set_status(f"importing {src.name} into {target}...")
        return self.job

    def cancel(self) -> bool:
        """Ask the running import to stop (it cleans up after itself). Returns whether one was running."""
        job = self.job
        if job is None or not job.active:
            return False
        job.cancel()
        self.set_status(f"cancelling {job.label}...")
        return True

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.active
