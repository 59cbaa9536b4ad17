"""The app's exports: video keyframes and camera paths, videos and meshes of the current model.

Mixed into :class:`~ngp_app.gui.state.AppState`; every export renders from a private copy of the model in a
background job, so training and the viewport go on, and every failure ends up in the status line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import NgpError


class ExportActions:
    """Keyframes, video and mesh export; relies on AppState's camera, scene_meta, settings, status and jobs."""

    camera: Any
    keyframes: list[Any]
    scene_meta: dict[str, Any]
    settings: Any
    set_status: Callable[..., None]
    source: Callable[[], Any]
    crop_aabb: Callable[[torch.Tensor], torch.Tensor]
    run_job: Callable[[str, Callable[[], Any]], threading.Thread]

    # ------------------------------------------------------------------------------------------ video
    def add_keyframe(self) -> int:
        """Append the current view to the video keyframes; returns their count."""
        from ..export.camera_path import PathCamera

        self.keyframes.append(PathCamera(self.camera.c2w().numpy().astype(np.float64), float(self.camera.fov_deg)))
        self.set_status(f"keyframe {len(self.keyframes)} added")
        return len(self.keyframes)

    def clear_keyframes(self) -> None:
        self.keyframes = []
        self.set_status("keyframes cleared")

    def save_keyframes(self, path: str | Path) -> Path | None:
        """Write the keyframes as a camera-path JSON (transforms.json convention; ``ngp video --path`` reads it)."""
        from ..export.camera_path import keyframes_json
        from ..fileio import atomic_write_text

        if not self.keyframes:
            self.set_status("no keyframes to save: add some with K or the panel", error=True)
            return None
        try:
            atomic_write_text(path, keyframes_json(self.keyframes, self.scene_meta))
        except OSError as exc:
            self.set_status(f"cannot save camera path: {exc}", error=True)
            return None
        self.set_status(f"saved {len(self.keyframes)} keyframes to {path}")
        return Path(path)

    def load_keyframes(self, path: str | Path) -> bool:
        from ..export.camera_path import load_keyframes

        try:
            self.keyframes = load_keyframes(path, self.scene_meta)
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return False
        self.set_status(f"loaded {len(self.keyframes)} keyframes from {path}")
        return True

    def _frozen_model(self) -> tuple[Any, Any, Any, torch.Tensor]:
        """A private copy of the current model and grid (training goes on meanwhile), its march and crop box."""
        import copy

        src = self.source()
        if src is None:
            raise NgpError("nothing to export: open a scene or snapshot first")
        with src.lock:
            model = copy.deepcopy(src.model).eval()
            grid = copy.copy(src.grid)
        return model, grid, src.march, self.crop_aabb(src.aabb)

    def export_video(self, path: str | Path, path_kind: str, n_frames: int, fps: float, width: int, height: int,
                     loop: bool = False) -> threading.Thread | None:
        """Render a video of the current model in the background; progress and errors go to the status line."""
        from ..export.camera_path import path_cameras
        from ..export.video import check_output, export_video

        try:
            check_output(path)
            cams = path_cameras(path_kind, self.scene_meta, n_frames, loop, self.keyframes)
            model, grid, march, aabb = self._frozen_model()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        background = self.settings.background

        def progress(done: int, total: int) -> None:
            self.set_status(f"video: {done}/{total} frames")

        def work() -> None:
            try:
                out = export_video(model, grid, march, aabb, cams, path, width, height, fps, background, "rgb",
                                   progress)
            except NgpError as exc:
                self.set_status(f"video failed: {exc}", error=True)
                return
            self.set_status(f"saved video {out} ({len(cams)} frames of {width}x{height})")

        return self.run_job("video", work)

    # ------------------------------------------------------------------------------------------ mesh
    def export_mesh(self, path: str | Path, resolution: int = 256, threshold: float = 2.5,
                    space: str = "nerf") -> threading.Thread | None:
        """Mesh the current model inside the crop box in the background (marching tetrahedra, vertex colours)."""
        from ..export.mesh import export_mesh
        from ..export.mesh_io import check_mesh_path
        from ..snapshot import Snapshot

        try:
            check_mesh_path(Path(path))
            model, grid, march, aabb = self._frozen_model()
        except NgpError as exc:
            self.set_status(str(exc), error=True)
            return None
        step = int(getattr(self, "step", 0))  # AppState.step: the trainer's step count
        snap = Snapshot(model, grid, march, {}, dict(self.scene_meta), step, {})
        crop = aabb.reshape(-1).tolist()

        def work() -> None:
            self.set_status(f"mesh: sampling {resolution}^3 densities...")
            try:
                mesh = export_mesh(snap, path, resolution, threshold, crop, space, progress=False)
            except NgpError as exc:
                self.set_status(f"mesh failed: {exc}", error=True)
                return
            self.set_status(f"saved mesh {path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")

        return self.run_job("mesh", work)
