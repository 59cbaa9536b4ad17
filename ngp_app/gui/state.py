"""Plain-Python state of the desktop app: scene, training thread, camera, render settings, drops, export.

Nothing here imports a windowing toolkit, so the tests drive it directly. The viewport and panel only call
these methods and read these fields; every user error ends up in ``status`` instead of an exception.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import NgpError
from .camera import OrbitCamera, nearest_camera
from .dynres import DynamicResolution
from .exports import ExportActions
from .loading import SceneLoading
from .overlays import MODES, depth_image, frusta_overlay, gray, occupancy_overlay, occupancy_points, to_uint8
from .training import TrainingRunner

log = logging.getLogger(__name__)
CONFIGS = ("small", "base", "big")


class RenderCancelled(Exception):
    """Raised inside a render when its result is no longer wanted (the view moved)."""


@dataclass
class RenderSettings:
    mode: str = "shaded"
    target_fps: float = 30.0
    resolution_scale: float = 1.0  # cap on the fraction of the window rendered (dynamic resolution stays below)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    crop_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    show_hud: bool = True
    ground_truth: bool = False
    gt_index: int = 0

    def key(self) -> tuple:
        """Everything that changes the picture (compared between frames)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "show_hud")


@dataclass
class RenderSource:
    """What is rendered: a trainer's live model or a loaded snapshot's."""

    model: Any
    grid: Any
    march: Any
    aabb: torch.Tensor
    lock: Any = field(default_factory=threading.RLock)


class AppState(SceneLoading, ExportActions):
    def __init__(self, config: str = "small", device: str | None = "cpu", backend: str = "auto",
                 downscale: int = 1, max_size: int | None = None, seed: int = 0) -> None:
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
        self.runner = TrainingRunner()
        self.camera = OrbitCamera()
        self.settings = RenderSettings()
        self.dynres = DynamicResolution()
        self.status = "drop a scene folder, transforms.json or snapshot onto the viewport"
        self.status_is_error = False
        self.generation = 0  # bumps whenever the scene/model is swapped
        self.train_cams = (np.zeros((0, 3, 4)), np.zeros((0, 4)), np.zeros((0, 2)))
        self.last_render_ms = 0.0
        self._reported_error: str | None = None
        self._occ_cache: tuple[int, int, np.ndarray] | None = None
        self._jobs: list[threading.Thread] = []
        self.save_optimizer_state = False  # snapshots carry Adam's moments (3x larger; exact resume)
        self.keyframes: list[Any] = []  # video camera path (export.camera_path.PathCamera), in ngp space
        self.loading: str | None = None  # name of what a background load is opening, for the HUD
        self._load_token = 0
        self._pending: queue.SimpleQueue[tuple[int, str | Path, Callable[[], None]]] = queue.SimpleQueue()

    # ------------------------------------------------------------------------------------------ status
    def set_status(self, message: str, error: bool = False) -> None:
        self.status, self.status_is_error = message, error
        (log.warning if error else log.info)("%s", message)

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
        return self.runner.step

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

    def save_snapshot(self, path: str | Path, with_optimizer: bool | None = None) -> Path | None:
        """Save the training model (with Adam's moments when ``with_optimizer``, default: the panel's checkbox, so
        that training continues exactly from it)."""
        from ..snapshot import save_snapshot

        if with_optimizer is None:
            with_optimizer = self.save_optimizer_state
        if self.trainer is None:
            self.set_status("nothing to save: no trained model", error=True)
            return None
        try:
            with self.trainer.lock:
                out = save_snapshot(path, self.trainer.model, self.trainer.grid, self.trainer.config,
                                    self.trainer.scene_metadata(), self.trainer.step_count,
                                    {"backend": self.trainer.backend},
                                    self.trainer.training_state(include_optimizer=with_optimizer))
        except OSError as exc:
            self.set_status(f"cannot save snapshot: {exc}", error=True)
            return None
        self.set_status(f"saved snapshot {out}")
        return out

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

    # ------------------------------------------------------------------------------------------ rendering
    def source(self) -> RenderSource | None:
        t = self.trainer
        if t is not None:
            return RenderSource(t.model, t.grid, t.march, t.aabb, t.lock)
        return self.snapshot_source

    def crop_aabb(self, aabb: torch.Tensor) -> torch.Tensor:
        lo = torch.maximum(aabb[0], torch.tensor(self.settings.crop_min, dtype=aabb.dtype, device=aabb.device))
        hi = torch.minimum(aabb[1], torch.tensor(self.settings.crop_max, dtype=aabb.dtype, device=aabb.device))
        return torch.stack([lo, torch.maximum(hi, lo + 1e-4)])

    def render_raw(self, width: int, height: int, cancel: Callable[[], bool] | None = None,
                   background: tuple[float, float, float] | None = None) -> dict[str, np.ndarray] | None:
        """rgb (h, w, 3), opacity and depth (h, w) as float arrays for the current view; None without a model."""
        from ..render.renderer import default_chunk, render_image

        src = self.source()
        if src is None:
            return None
        cam = self.camera.camera(width, height)
        bg = background if background is not None else self.settings.background

        def progress(done: int, total: int) -> None:
            if cancel is not None and cancel():
                raise RenderCancelled

        with src.lock:  # a consistent copy of the model, taken quickly; the trainer goes on while we render
            model, grid = self._render_replica(src)
        field: Any = model
        if self.settings.mode == "normals" and not self.settings.ground_truth:
            from ..render.normals import NormalsField

            field, bg = NormalsField(model), (0.0, 0.0, 0.0)
        t0 = time.perf_counter()  # time spent rendering, not waiting for the trainer's lock
        out = render_image(field, grid, self.crop_aabb(src.aabb), cam, src.march, bg,
                           chunk=default_chunk(grid.device, interactive=True), progress=progress)
        self.last_render_ms = (time.perf_counter() - t0) * 1000.0
        return {k: v.detach().float().cpu().numpy() for k, v in out.items()}

    def _render_replica(self, src: Any) -> tuple[Any, Any]:
        """Copy ``src``'s weights into a private replica of its model (made once per scene) and take a shallow
        copy of its occupancy grid, whose tensors the trainer replaces rather than mutates. Call under the lock."""
        import copy

        replica = getattr(self, "_replica", None)
        if replica is None or replica[0] is not src.model:
            clone = copy.deepcopy(src.model)
            clone.eval()
            replica = (src.model, clone)
            self._replica = replica
        clone = replica[1]
        with torch.no_grad():
            for dst, source in zip(clone.parameters(), src.model.parameters()):
                dst.copy_(source)
        clone.set_ops(src.model.ops) if hasattr(clone, "set_ops") else None
        return clone, copy.copy(src.grid)

    def render_view(self, width: int, height: int, cancel: Callable[[], bool] | None = None) -> np.ndarray:
        """The viewport picture for the current mode as (h, w, 3) uint8 (a blank background without a model)."""
        s = self.settings
        if s.ground_truth and self.scene is not None:
            return self.ground_truth_image(width, height)
        out = self.render_raw(width, height, cancel)
        if out is None:
            return np.tile(to_uint8(np.asarray(s.background, dtype=np.float32) * 0.25), (height, width, 1))
        mode = s.mode if s.mode in MODES else "shaded"
        if mode == "depth":
            return depth_image(out["depth"], out["opacity"])
        if mode == "opacity":
            return gray(out["opacity"])
        shaded = to_uint8(out["rgb"])
        cam = self.camera.camera(width, height)
        if mode == "occupancy":
            return occupancy_overlay(shaded, self.occupied_points(), cam)
        if mode == "cameras":
            c2w, intr, sizes = self.train_cams
            hl = s.gt_index if 0 <= s.gt_index < len(c2w) else None
            return frusta_overlay(shaded, c2w, intr, sizes, cam, highlight=hl)
        return shaded

    def occupied_points(self) -> np.ndarray:
        src = self.source()
        if src is None:
            return np.zeros((0, 3))
        grid = src.grid
        key = (self.generation, int(getattr(grid, "n_updates", 0)))
        if self._occ_cache is None or self._occ_cache[:2] != key:
            with src.lock:
                occ = grid.occupied[0].detach().cpu().numpy()
            self._occ_cache = (*key, occupancy_points(occ, grid.resolution))
        return self._occ_cache[2]

    def ground_truth_image(self, width: int, height: int) -> np.ndarray:
        """The selected training image composited on the background, resized (nearest) to the output."""
        i = self.settings.gt_index % self.scene.n_frames
        img = self.scene.image(i).cpu().numpy().astype(np.float32) / 255.0
        if img.shape[-1] == 4:
            bg = np.asarray(self.settings.background, dtype=np.float32)
            img = img[..., :3] * img[..., 3:] + bg * (1.0 - img[..., 3:])
        ys = (np.arange(height) * img.shape[0] / height).astype(np.int64)
        xs = (np.arange(width) * img.shape[1] / width).astype(np.int64)
        return to_uint8(img[ys][:, xs])

    def screenshot(self, path: str | Path, width: int, height: int, alpha: bool = False) -> Path | None:
        """Render the current view at any resolution to a PNG (RGBA with ``alpha``). Never raises."""
        import imageio.v3 as iio

        try:
            if alpha:
                out = self.render_raw(width, height, background=(0.0, 0.0, 0.0))
                if out is None:
                    raise NgpError("nothing to render: open a scene or snapshot first")
                op = np.clip(out["opacity"], 1e-6, 1.0)[..., None]
                rgb = np.where(op > 1e-5, out["rgb"] / op, 0.0)  # un-premultiply
                img = to_uint8(np.concatenate([rgb, out["opacity"][..., None]], axis=-1))
            else:
                img = self.render_view(width, height)
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(p, img)
        except (NgpError, OSError, ValueError) as exc:
            self.set_status(f"screenshot failed: {exc}", error=True)
            return None
        self.set_status(f"saved {width}x{height} screenshot {p}")
        return p

    def run_job(self, label: str, fn: Callable[[], Any]) -> threading.Thread:
        """Run a slow user action (export) off the UI thread; its errors land in the status line."""
        def wrap() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                self.set_status(f"{label} failed: {type(exc).__name__}: {exc}", error=True)

        self.set_status(f"{label}...")
        t = threading.Thread(target=wrap, name=f"ngp-{label}", daemon=True)
        t.start()
        self._jobs.append(t)
        return t

    def close(self) -> None:
        self.runner.stop()
        for t in self._jobs:
            t.join(timeout=1.0)
