"""The app's pictures of the current model: the viewport's frames (from a private replica of the weights, owned by
the render thread) and full-size renders for exports (from a frozen copy taken under the trainer's lock).

A collaborator of :class:`~ngp_app.gui.session.Session`: it gets the camera, the settings, the open scene and a
function returning what to render; no windowing toolkit here.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..data.cameras import Camera
from ..errors import NgpError
from ..model.appearance import LookedField, frame_look
from ..nerf_model import NerfModel
from ..render.pictures import picture, shaded_field, to_uint8
from .importing import outside_box
from .overlays import (
    BOX_COLOR,
    MODE_DIMMED,
    MODE_OVERLAYS,
    MODES,
    OCCUPANCY_COLOR,
    OUTSIDE_COLOR,
    Layer,
    axes_layer,
    box_layer,
    frusta_layer,
    layer,
    occupancy_points,
    opaque,
)

if TYPE_CHECKING:
    from .camera import OrbitCamera
    from .scene_state import SceneState
    from .settings import RenderSettings


class RenderCancelled(Exception):
    """Raised inside a render when its result is no longer wanted (the view moved)."""


@dataclass
class RenderSource:
    """What is rendered: a trainer's live model (its weight average) or a loaded snapshot's, and the lock that
    guards its weights."""

    nerf: NerfModel
    lock: Any = field(default_factory=threading.RLock)


class ViewRenderer:
    """Renders the current view (viewport frames, overlays, the ground-truth image) and freezes the model for jobs.
    ``source()`` is what to render now: the trainer's live model or a view-only snapshot's (None: nothing)."""

    def __init__(
        self,
        camera: OrbitCamera,
        settings: RenderSettings,
        current: SceneState,
        source: Callable[[], RenderSource | None],
    ) -> None:
        self.camera, self.settings, self.current, self.source = camera, settings, current, source
        self.overlay_providers: dict[str, Callable[[], Layer | None]] = {}  # extra overlay layers by name
        self._layer_cache: dict[str, Layer] = {}
        self._occ_cache: tuple[int, int, np.ndarray] | None = None
        self._replica_lock = threading.Lock()  # guards the render thread's replica of the weights
        self._replica: tuple[Any, Any] | None = None

    def crop_aabb(self, aabb: torch.Tensor, settings: Any = None) -> torch.Tensor:
        s = settings if settings is not None else self.settings
        lo = torch.maximum(aabb[0], torch.tensor(s.crop_min, dtype=aabb.dtype, device=aabb.device))
        hi = torch.minimum(aabb[1], torch.tensor(s.crop_max, dtype=aabb.dtype, device=aabb.device))
        return torch.stack([lo, torch.maximum(hi, lo + 1e-4)])

    def frozen(self) -> NerfModel:
        """A private copy of the current model, inside the crop box, for a background job (raises NgpError
        without one)."""
        src = self.source()
        if src is None:
            raise NgpError("nothing to export: open a scene or snapshot first")
        with src.lock:
            frozen = src.nerf.frozen()
        look = frame_look(frozen.field, self.settings.look)
        return frozen.with_look(look).cropped(self.crop_aabb(frozen.aabb))

    # ------------------------------------------------------------------------------------------ viewport
    def _render_current(
        self,
        render: Callable[..., Any],
        width: int,
        height: int,
        cancel: Callable[[], bool] | None,
        background: tuple[float, float, float] | None,
        timing: dict[str, float] | None,
    ) -> Any:
        """``render(model, grid, march, aabb, cam, background, normals, chunk, progress)`` (``render_outputs`` or
        ``render_frame``) of the current view from the render thread's replica of the weights (refreshed under the
        source's lock, then rendered outside it, so the trainer goes on); None without a model. ``timing['ms']``
        gets the time spent rendering, not waiting for the lock."""
        from ..render.renderer import default_chunk

        src = self.source()
        if src is None:
            return None

        def progress(done: int, total: int) -> None:
            if cancel is not None and cancel():
                raise RenderCancelled

        s = copy.copy(self.settings)
        with self._replica_lock:  # one replica: renders that share it take turns
            with src.lock:  # a consistent copy of the weights, taken quickly
                model, grid = self._render_replica(src)
            look = frame_look(model, s.look)
            if look is not None:
                model = LookedField(model, look)
            t0 = time.perf_counter()
            out = render(
                model,
                grid,
                src.nerf.march,
                self.crop_aabb(src.nerf.aabb, s),
                self.camera.camera(width, height),
                background if background is not None else s.background,
                s.mode == "normals",
                default_chunk(grid.device, interactive=True),
                progress,
            )
            if timing is not None:
                timing["ms"] = (time.perf_counter() - t0) * 1000.0
        return out

    def render_raw(
        self,
        width: int,
        height: int,
        cancel: Callable[[], bool] | None = None,
        background: tuple[float, float, float] | None = None,
        timing: dict[str, float] | None = None,
    ) -> dict[str, np.ndarray] | None:
        """rgb (h, w, 3), opacity and depth (h, w) as float arrays for the current view; None without a model."""
        return self._render_current(render_outputs, width, height, cancel, background, timing)

    def _render_replica(self, src: Any) -> tuple[Any, Any]:
        """Copy ``src``'s weights into a private replica of its model (made once per scene) and take a shallow
        copy of its occupancy grid, whose tensors the trainer replaces rather than mutates. Call under both locks."""
        live = src.nerf.field
        replica = self._replica
        if replica is None or replica[0] is not live:
            clone = copy.deepcopy(live)
            clone.eval()
            replica = (live, clone)
            self._replica = replica
        clone = replica[1]
        with torch.no_grad():
            for dst, source in zip(clone.parameters(), live.parameters()):
                dst.copy_(source)
        clone.set_ops(live.ops) if hasattr(clone, "set_ops") else None
        return clone, copy.copy(src.nerf.grid)

    def render_view(
        self, width: int, height: int, cancel: Callable[[], bool] | None = None, timing: dict[str, float] | None = None
    ) -> np.ndarray:
        """The viewport picture for the current mode as (h, w, 4) uint8 RGBA, opaque, what the viewport uploads (a
        blank background without a model). Colour and normals views come straight from the renderer's uint8
        buffer (``render_frame``): one copy to the host; depth and opacity maps are made from float outputs."""
        s = copy.copy(self.settings)
        if s.ground_truth and self.current.scene is not None:
            return opaque(self.ground_truth_image(width, height))
        mode = s.mode if s.mode in MODES else MODES[0]
        if mode in ("depth", "opacity"):
            out = self.render_raw(width, height, cancel, timing=timing)
            frame = None if out is None else opaque(self.compose(out, self.camera.camera(width, height), s))
        else:
            rgba = self._render_current(render_frame, width, height, cancel, None, timing)
            if rgba is not None and mode in MODE_DIMMED:  # dimmed as in ``compose``
                rgba[..., :3] = (rgba[..., :3].float() * MODE_DIMMED[mode]).to(torch.uint8)
            frame = None if rgba is None else rgba.cpu().numpy()
        if frame is None:
            return opaque(np.tile(to_uint8(np.asarray(s.background, dtype=np.float32) * 0.25), (height, width, 1)))
        return frame

    def compose(self, out: dict[str, np.ndarray], cam: Camera, s: Any) -> np.ndarray:
        """Render outputs -> the picture of mode ``s.mode`` as (h, w, 3) uint8. Overlays are not drawn into it:
        the viewport draws ``overlay_layers`` over it at window resolution (screenshots rasterise them)."""
        mode = s.mode if s.mode in MODES else MODES[0]
        if mode in ("depth", "opacity"):
            return picture(mode, out)  # as ``ngp render`` and ``ngp video`` draw them (render/pictures.py)
        rgb = to_uint8(out["rgb"])
        if mode in MODE_DIMMED:  # dimmed, so the cells or points drawn over it stand out
            return (rgb.astype(np.float32) * MODE_DIMMED[mode]).astype(np.uint8)
        return rgb

    # ------------------------------------------------------------------------------------------ overlays
    def overlay_names(self, s: Any = None) -> list[str]:
        """The overlays to draw: those switched on, those the mode implies, and every registered provider's."""
        s = s if s is not None else self.settings
        names = [n for n in s.overlays]
        for name in MODE_OVERLAYS.get(s.mode, ()) if not s.ground_truth else ():
            if name not in names:
                names.append(name)
        return names + [n for n in self.overlay_providers if n not in names]

    def overlay_layers(self, s: Any = None) -> list[Layer]:
        """Overlay geometry (ngp space) for the current settings; rebuilt only when its inputs change.

        Other parts of the app add layers by registering a provider: ``view.overlay_providers["path"] = fn``,
        where ``fn()`` returns a ``Layer`` (or None to draw nothing), e.g. ``overlays.polyline_layer``.
        """
        s = s if s is not None else self.settings
        out: list[Layer] = []
        for name in self.overlay_names(s):
            lay = self.overlay_providers[name]() if name in self.overlay_providers else self._builtin_layer(name, s)
            if lay is not None:
                out.append(lay)
        return out

    def _builtin_layer(self, name: str, s: Any) -> Layer | None:
        """The app's own layers (cameras, occupancy, crop, axes), cached by what they are made of."""
        if name == "axes":
            return axes_layer(name)
        src, generation = self.source(), self.current.generation
        c2w, intr, sizes = self.current.train_cams
        hl = s.gt_index if 0 <= s.gt_index < len(c2w) else None
        keys = {
            "cameras": (generation, hl, len(c2w)),
            "points": (generation,),
            "occupancy": None if src is None else (generation, int(getattr(src.nerf.grid, "n_updates", 0))),
            "crop": (tuple(s.crop_min), tuple(s.crop_max)),
            "box": (generation,),
        }
        key = keys.get(name)
        if key is None:
            return None
        cached = self._layer_cache.get(name)
        if cached is None or cached.key != key:
            if name == "cameras":
                cached = frusta_layer(name, c2w, intr, sizes, highlight=hl, key=key)
            elif name == "occupancy":
                cached = layer(name, "points", self.occupied_points(), OCCUPANCY_COLOR, key)
            elif name == "points":  # an imported scene's SfM points in their own colours, outside the box in one
                xyz, rgb = self.current.sparse_points
                rgba = np.concatenate([rgb.reshape(-1, 3), np.full((len(rgb), 1), 255, np.uint8)], axis=1)
                rgba[outside_box(xyz, self.scene_box())] = OUTSIDE_COLOR
                cached = layer(name, "points", xyz, rgba, key)
            elif name == "box":
                half = self.scene_box() / 2.0
                cached = box_layer(name, (0.5 - half,) * 3, (0.5 + half,) * 3, color=BOX_COLOR, key=key)
            else:
                cached = box_layer(name, s.crop_min, s.crop_max, key=key)
            self._layer_cache[name] = cached
        return cached

    def scene_box(self) -> float:
        """The open scene's aabb_scale (its box: that side, centred at 0.5)."""
        return float(self.current.meta.get("aabb_scale", 1.0))

    def occupied_points(self) -> np.ndarray:
        src = self.source()
        if src is None:
            return np.zeros((0, 3))
        grid = src.nerf.grid
        key = (self.current.generation, int(getattr(grid, "n_updates", 0)))
        cache = self._occ_cache
        if cache is None or cache[:2] != key:
            # No lock (this runs on the UI thread): the trainer replaces ``occupied`` rather than mutating it.
            occ = grid.occupied[0].detach().cpu().numpy().copy()
            cache = (*key, occupancy_points(occ, grid.resolution))
            self._occ_cache = cache
        return cache[2]

    def ground_truth_image(self, width: int, height: int) -> np.ndarray:
        """The selected training image as the current view's camera sees it (h, w, 3) uint8: each output pixel's ray
        is looked up through the training camera's intrinsics, so the image keeps its aspect ratio and lines up with
        a render from that camera (G snaps the view to it); outside the image, the dimmed background."""
        scene = self.current.scene
        i = self.settings.gt_index % scene.n_frames
        img = scene.image(i).cpu().numpy().astype(np.float32) / 255.0
        bg = np.asarray(self.settings.background, dtype=np.float32)
        if img.shape[-1] == 4:
            img = img[..., :3] * img[..., 3:] + bg * (1.0 - img[..., 3:])
        ih, iw = img.shape[:2]
        intr, sizes = self.current.train_cams[1], self.current.train_cams[2]
        fx, fy, cx, cy = (float(v) for v in intr[i])
        if len(sizes) > i and sizes[i][1] > 0 and abs(float(sizes[i][1]) - ih) > 0.5:  # intrinsics of another size
            k = ih / float(sizes[i][1])
            fx, fy, cx, cy = fx * k, fy * k, cx * k, cy * k
        view = self.camera.camera(width, height)
        xs = np.floor(fx * (np.arange(width) + 0.5 - view.cx) / view.fx + cx).astype(np.int64)
        ys = np.floor(fy * (np.arange(height) + 0.5 - view.cy) / view.fy + cy).astype(np.int64)
        out = np.empty((height, width, 3), dtype=np.float32)
        out[:] = bg * 0.25
        cols, rows = (xs >= 0) & (xs < iw), (ys >= 0) & (ys < ih)
        out[np.ix_(rows, cols)] = img[ys[rows]][:, xs[cols]]
        return to_uint8(out)


def render_outputs(
    model: Any,
    grid: Any,
    march: Any,
    aabb: torch.Tensor,
    cam: Camera,
    background: tuple[float, float, float],
    normals: bool,
    chunk: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Render one camera: rgb (h, w, 3), opacity and depth (h, w) as float numpy arrays (normals as rgb over black
    when ``normals``). ``progress(done, total)`` is called after each pass (it may raise to cancel)."""
    from ..render.renderer import render_image

    field_fn, background = shaded_field(model, "normals" if normals else "rgb", background)
    out = render_image(field_fn, grid, aabb, cam, march, background, chunk=chunk, progress=progress)
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


def render_frame(
    model: Any,
    grid: Any,
    march: Any,
    aabb: torch.Tensor,
    cam: Camera,
    background: tuple[float, float, float],
    normals: bool,
    chunk: int,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Render one camera straight into an opaque uint8 RGBA image (h, w, 4) on the render device (``render_rgba``;
    alpha set to 255 there): the viewport's frame. Parameters as ``render_outputs``."""
    from ..render.renderer import render_rgba

    field_fn, background = shaded_field(model, "normals" if normals else "rgb", background)
    rgba = render_rgba(field_fn, grid, aabb, cam, march, background, chunk=chunk, progress=progress)["rgba"]
    rgba[..., 3] = 255
    return rgba
