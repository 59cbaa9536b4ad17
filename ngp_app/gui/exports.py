"""The app's exports: snapshots, screenshots, meshes, point clouds, training cameras and the one-click bundle (the
camera path and its videos are ``path_actions``').

A collaborator of :class:`~ngp_app.gui.session.Session`. Every export is a background job (``jobs.JobRunner``)
working on a private copy of the model taken quickly under the trainer's lock, so training and the viewport go on;
it shows progress, an ETA and a Cancel button in the panel, writes its file atomically at the end (a cancelled job
leaves nothing behind), and reports success or failure in the status line from the UI thread.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import NgpError
from .jobs import Job, JobRunner

if TYPE_CHECKING:
    from .camera import OrbitCamera
    from .rendering import ViewRenderer
    from .scene_state import SceneState
    from .settings import RenderSettings
    from .training import TrainingRunner

EXPORT_FOLDER = "ngp-exports"
EXPORT_NAMES = {
    "snapshot": "snapshot.npz",
    "screenshot": "screenshot.png",
    "mesh": "mesh.ply",
    "pointcloud": "pointcloud.ply",
    "cameras": "transforms.json",
    "video": "video.mp4",
    "path": "camera_path.json",
    "bundle": "",  # a folder: the export folder itself
    "job": "render_job.json",
}


class Exports:
    """Snapshot, screenshot, mesh, point cloud and camera export (path videos are ``path_actions``'). ``view``
    renders and freezes the current model; ``step()`` is the current training step."""

    def __init__(
        self,
        camera: OrbitCamera,
        settings: RenderSettings,
        current: SceneState,
        runner: TrainingRunner,
        jobs: JobRunner,
        set_status: Callable[..., None],
        report_error: Callable[..., str],
        view: ViewRenderer,
    ) -> None:
        self.camera, self.settings, self.current, self.runner, self.jobs = camera, settings, current, runner, jobs
        self.set_status, self.report_error, self.view = set_status, report_error, view
        self.save_optimizer_state = False  # snapshots carry Adam's moments (~2x larger; exact resume)

    # ------------------------------------------------------------------------------------------ where
    def export_dir(self) -> Path:
        """Where exports go by default (absolute): ``<scene>/ngp-exports``, beside a view-only snapshot when its
        scene is not on disk, else under the working directory."""
        scene = self.current.meta.get("path") if self.current.scene is not None else None
        if scene:
            base = Path(os.path.abspath(scene))
            base = base.parent if base.suffix.lower() == ".json" else base
        elif self.current.snapshot_path is not None:
            base = Path(os.path.abspath(self.current.snapshot_path)).parent
        else:
            base = Path.cwd()
        return base / EXPORT_FOLDER

    def default_export_path(self, kind: str) -> Path:
        """The default file of an export kind (snapshot, screenshot, mesh, video, path) in ``export_dir``."""
        return self.export_dir() / EXPORT_NAMES[kind]

    def export_path(self, typed: str | Path) -> Path:
        """A path from the panel: ``~`` expanded; a relative one goes under ``export_dir`` (not the working
        directory the app happened to start in)."""
        p = Path(os.path.expanduser(str(typed).strip()))
        return p if p.is_absolute() else self.export_dir() / p

    def _check_target(self, check: Callable[[], Any]) -> bool:
        """Run an ``outputs`` check of an export's target before any work; a refusal goes to the status line."""
        try:
            check()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return False
        return True

    def _submit(
        self,
        label: str,
        work: Callable[[Job], Any],
        done: Callable[[Any], str],
        then: Callable[[Any], None] | None = None,
    ) -> Job:
        """A job whose success message is ``done(result)`` (then ``then(result)``, on the UI thread); failures and
        cancels are reported too."""

        def on_done(result: Any) -> None:
            self.set_status(done(result))
            if then is not None:
                then(result)

        def on_error(exc: BaseException) -> None:
            self.report_error(exc, f"app: {label} export", prefix=f"{label} failed: ")

        return self.jobs.submit(
            label,
            work,
            on_done=on_done,
            on_error=on_error,
            on_cancel=lambda: self.set_status(f"{label} cancelled: nothing written"),
        )

    # ------------------------------------------------------------------------------------------ snapshot
    def save_snapshot(
        self, path: str | Path, with_optimizer: bool | None = None, then: Callable[[Path], None] | None = None
    ) -> Job | None:
        """Save the trained model, the weight average, in the background (with Adam's moments and the raw weights
        when ``with_optimizer``, default: the panel's checkbox, so that training continues exactly from it; ``then``
        gets the written file on the UI thread). The trainer's lock is held only while the weights are copied;
        compressing and writing happen outside it."""
        from ..outputs import check_output_file
        from ..snapshot import save_snapshot, snapshot_target
        from ..train.run_files import snapshot_bytes

        if with_optimizer is None:
            with_optimizer = self.save_optimizer_state
        t = self.runner.trainer
        if t is None:
            self.set_status("nothing to save: no trained model", error=True)
            return None
        n_bytes = snapshot_bytes(t, with_optimizer)
        target = snapshot_target(path)
        if not self._check_target(lambda: check_output_file(target, (".npz",), n_bytes, "snapshot")):
            return None
        with t.lock:  # a consistent copy, taken quickly (numpy views of CPU tensors are copied too)
            nerf = t.eval_nerf.frozen()
            config, meta, step = t.config, t.scene_metadata(), int(t.step_count)
            training = {
                k: np.array(v, copy=True) for k, v in t.training_state(include_optimizer=with_optimizer).items()
            }
            extra = {"backend": t.backend}

        def work(job: Job) -> Path:
            job.report(0.1, "compressing and writing")
            return save_snapshot(target, nerf, config, meta, step, extra, training)

        return self._submit("snapshot", work, lambda out: f"saved snapshot {out}", then)

    # ------------------------------------------------------------------------------------------ screenshot
    def screenshot(
        self, path: str | Path, width: int, height: int, alpha: bool = False, overlays: bool = False
    ) -> Job | None:
        """Render the current view at any resolution to a PNG (RGBA with ``alpha``) in the background, chunk by
        chunk (progress, cancellable); a clean render unless ``overlays`` (the path, frusta, box and points the
        viewport shows, drawn in; never with ``alpha``). Never raises: problems go to the status line."""
        import imageio.v3 as iio

        from ..fileio import atomic_write_bytes
        from ..outputs import check_output_file
        from ..render.pictures import to_uint8
        from ..render.renderer import default_chunk
        from .overlays import rasterize
        from .rendering import render_outputs

        p = Path(path)
        if not self._check_target(lambda: check_output_file(p, (".png",), width * height * 4, "screenshot")):
            return None
        s = copy.copy(self.settings)
        cam = self.camera.camera(width, height)
        layers = self.view.overlay_layers(s) if overlays and not alpha else []  # drawn in at full size
        gt = s.ground_truth and self.current.scene is not None
        try:
            frozen = None if gt else self.view.frozen()
        except NgpError as exc:
            self.set_status(f"screenshot: {exc}", error=True)
            return None

        def work(job: Job) -> Path:
            if frozen is None:
                img = self.view.ground_truth_image(width, height)
            else:
                bg = (0.0, 0.0, 0.0) if alpha else s.background
                out = render_outputs(
                    frozen.field,
                    frozen.grid,
                    frozen.march,
                    frozen.aabb,
                    cam,
                    bg,
                    s.mode == "normals" and not alpha,
                    default_chunk(frozen.grid.device, interactive=True),
                    job.progress_callback(0.0, 0.95, "rendering"),
                )
                if alpha:
                    op = np.clip(out["opacity"], 1e-6, 1.0)[..., None]
                    rgb = np.where(op > 1e-5, out["rgb"] / op, 0.0)  # un-premultiply
                    img = to_uint8(np.concatenate([rgb, out["opacity"][..., None]], axis=-1))
                else:
                    img = self.view.compose(out, cam, s)
            if layers:
                job.report(0.95, "drawing overlays")
                img = rasterize(img, layers, cam)
            job.report(0.97, "writing")
            atomic_write_bytes(p, iio.imwrite("<bytes>", img, extension=".png"))
            return p

        return self._submit("screenshot", work, lambda out: f"saved {width}x{height} screenshot {out}")

    # ------------------------------------------------------------------------------------------ mesh
    def export_mesh(
        self, path: str | Path, resolution: int = 256, threshold: float = 2.5, space: str = "nerf"
    ) -> Job | None:
        """Mesh the current model inside the crop box in the background (marching cubes, vertex colours)."""
        from ..export.mesh import check_mesh_target, export_mesh

        try:
            check_mesh_target(path, resolution)
            f = self.view.frozen()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        scene_meta = dict(self.current.meta)
        crop = f.aabb.reshape(-1).tolist()

        def work(job: Job) -> Any:
            def progress(done: int, total: int) -> None:
                stage = f"sampling {resolution}^3 densities" if done < total else "surface, colours, writing"
                job.report(0.8 * done / max(total, 1), stage)

            return export_mesh(f, scene_meta, path, resolution, threshold, crop, space, progress=progress)

        return self._submit(
            "mesh", work, lambda m: f"saved mesh {path}: {len(m.vertices)} vertices, {len(m.faces)} faces"
        )

    # ------------------------------------------------------------------------------------------ point cloud
    def export_pointcloud(
        self, path: str | Path, n_points: int = 1_000_000, keep_outliers: bool = False, space: str = "nerf"
    ) -> Job | None:
        """Cast the training cameras' rays at the current model inside the crop box, in the background, and write
        the coloured points (``ngp export pointcloud``)."""
        from ..export.pointcloud import check_pointcloud_target, export_pointcloud

        try:
            check_pointcloud_target(path, n_points)
            f = self.view.frozen()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        scene_meta = self.cameras_meta()
        crop = f.aabb.reshape(-1).tolist()

        def work(job: Job) -> Any:
            def progress(done: int, total: int) -> None:
                job.report(0.9 * done / max(total, 1), f"casting rays: {done} of {total} points")

            return export_pointcloud(
                f, scene_meta, path, n_points, crop=crop, keep_outliers=keep_outliers, space=space, progress=progress
            )

        return self._submit("point cloud", work, lambda c: f"saved point cloud {path}: {len(c)} points")

    # ------------------------------------------------------------------------------------------ bundle
    def export_bundle(
        self,
        folder: str | Path,
        max_faces: int = 200_000,
        frames: int = 120,
        width: int = 640,
        height: int = 360,
        resolution: int = 256,
        threshold: float = 2.5,
    ) -> Job | None:
        """The deliverables of ``ngp export bundle`` from the current model inside the crop box, in the background:
        a clean GLB (floaters removed, decimated to ``max_faces``), then a fly-through mp4 and its camera path."""
        from ..export.bundle import BUNDLE_FILES, bundle_targets, export_bundle
        from ..export.mesh import check_mesh_target

        try:
            targets = bundle_targets(folder)
            check_mesh_target(targets["mesh"].with_suffix(".ply"), resolution)
            if max_faces < 4:
                raise NgpError(f"the GLB needs at least 4 faces, got {max_faces}")
            f = self.view.frozen()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        scene_meta = dict(self.current.meta)
        crop = f.aabb.reshape(-1).tolist()

        def work(job: Job) -> Any:
            return export_bundle(
                f,
                scene_meta,
                folder,
                max_faces,
                resolution=resolution,
                threshold=threshold,
                frames=frames,
                width=width,
                height=height,
                progress=job.report,
                crop=crop,
            )

        def written() -> str:
            done = [name for name in BUNDLE_FILES.values() if (Path(folder) / name).is_file()]
            return f"{', '.join(done)} written (complete files)" if done else "nothing written"

        def done(info: dict[str, Any]) -> str:
            return (
                f"saved the bundle in {folder}: model.glb ({info['faces']} faces, {info['pieces_kept']} of "
                f"{info['pieces']} pieces kept), flythrough.mp4 and its path"
            )

        return self.jobs.submit(
            "bundle",
            work,
            on_done=lambda info: self.set_status(done(info)),
            on_error=lambda exc: self.report_error(exc, "app: bundle export", prefix=f"bundle failed ({written()}): "),
            on_cancel=lambda: self.set_status(f"bundle cancelled: {written()}"),
        )

    # ------------------------------------------------------------------------------------------ cameras
    def cameras_meta(self) -> dict[str, Any]:
        """The training cameras as they are now: the trainer's (refined poses while pose refinement runs), else the
        open scene's or snapshot's."""
        t = self.runner.trainer
        if t is not None:
            with t.lock:
                return t.scene_metadata()
        return dict(self.current.meta)

    def export_cameras(self, path: str | Path) -> Path | None:
        """Write the training cameras as a transforms.json that ``ngp train`` loads (``ngp export cameras``)."""
        from ..export.training_cameras import check_cameras_target, export_cameras

        if not self.current.meta:
            self.set_status("no cameras to export: open a scene or a snapshot", error=True)
            return None
        try:
            check_cameras_target(path)
            data = export_cameras(self.cameras_meta(), path)
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        refined = "refined" if data["ngp_export"]["extrinsics_refined"] else "as loaded"
        self.set_status(f"saved {len(data['frames'])} cameras (poses {refined}) to {path}")
        return Path(path)
