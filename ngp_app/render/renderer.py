"""Rendering rays and images with a field and its occupancy grid (training and inference paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch

from ..data.cameras import Camera, camera_rays
from ..ops import Ops
from .frame import FrameOps, FrameState, FrameStats, march_frame, max_rays_per_call
from .occupancy import OccupancyGrid
from .raymarch import MarchParams

FieldFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def field_ops(field: object, grid: OccupancyGrid, ops: Ops | None = None) -> Ops:
    """``ops`` when given, else the field's own (``field.ops``), else the occupancy grid's (a bare function)."""
    if ops is not None:
        return ops
    own = getattr(field, "ops", None)
    return own if own is not None else grid.ops


def render_rays_train(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: Sequence[float] | torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor,
    march_capacity: int,
    keep_capacity: int,
    jitter: torch.Tensor | None = None,
    transmittance_threshold: float = 1e-4,
    ops: Ops | None = None,
    frames: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Differentiable render of a batch of rays on their live samples, with no host synchronisation (native ops):
    march into ``march_capacity`` sample slots, evaluate densities there without gradients, keep the samples whose
    transmittance is >= the threshold (the only ones compositing weighs, so loss and gradients are those of all
    samples) in ``keep_capacity`` slots, and run the field with gradients on those only (render/batch.py).

    aabb: 6 floats (min xyz, max xyz; no host read) or a (2, 3) tensor; background: (n_rays, 3) or (3,).
    Returns rgb (n_rays, 3) composited over the background, opacity, depth (n_rays,), valid (n_rays,) float (0 for
    rays whose samples did not fit: leave them out of the loss), and the ``marched`` and ``kept`` FixedSamples
    (their ``total``/``requested`` are the step's counters, on the device).
    When the rays require grad (pose refinement), samples are placed along the detached rays and their positions
    recomputed from the rays, so the loss reaches the rays too. ``ops``: default ``field_ops(field, grid)``.
    ``frames``: each ray's training image (n_rays,) int64, handed to the field per sample (per-image appearance)."""
    ops = field_ops(field, grid, ops)
    n = rays_o.shape[0]
    marched = ops.march_fixed(rays_o.detach(), rays_d.detach(), grid, aabb, params, jitter, march_capacity)
    with torch.no_grad():
        sigmas = field.density(marched.positions)  # type: ignore[attr-defined]
    kept = ops.compact(marched, sigmas, transmittance_threshold, keep_capacity)
    positions, directions, ri = kept.positions, kept.directions, kept.ray_indices
    if rays_o.requires_grad or rays_d.requires_grad:  # refined poses: sample points move with the rays
        pad = rays_o.new_zeros(1, 3)  # the padding's sentinel ray
        o, d = torch.cat([rays_o, pad]), torch.cat([rays_d, pad])
        positions = o[ri] + kept.t[:, None] * d[ri]
        directions = d[ri]
    if frames is None:
        sigma, rgbs = field(positions, directions)
    else:  # the padding's sentinel ray takes frame 0 (its samples get no weight)
        sigma, rgbs = field(positions, directions, torch.cat([frames, frames.new_zeros(1)])[ri])  # type: ignore[call-arg]
    # padding slots (dt 0) get no weight; zeroing their densities also keeps an infinite one from making NaNs
    sigma = torch.where(ri < n, sigma, torch.zeros_like(sigma))
    out: dict[str, Any] = ops.composite(sigma, rgbs, kept.t, kept.dt, ri, kept.offsets, n + 1, transmittance_threshold)
    for key in ("rgb", "opacity", "depth"):
        out[key] = out[key][:n]
    out["rgb"] = out["rgb"] + (1.0 - out["opacity"])[:, None] * background
    out["valid"] = kept.valid
    out["marched"] = marched
    out["kept"] = kept
    return out


def default_chunk(device: torch.device, interactive: bool = False) -> int:
    """Rays rendered per call. A whole frame where memory allows (``max_rays_per_call``); the app's CPU renders
    take at most 2^15 rays per call so that a cancelled frame stops quickly (the progress callback also runs after
    every pass)."""
    chunk = max_rays_per_call(torch.device(device))
    return min(chunk, 1 << 15) if interactive and torch.device(device).type == "cpu" else chunk


def _render_ray_calls(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor | tuple[float, float, float],
    chunk: int | None,
    progress: Callable[[int, int], None] | None,
    ops: Ops | None,
    stats: FrameStats | None,
    write: Callable[[int, int, torch.Tensor, FrameState, FrameOps], None],
) -> None:
    """Render rays (n, 3) (unit directions, on the grid's device) in calls of ``chunk`` and hand each call's state
    to ``write(start, end, background, state, frame_ops)``."""
    dev = grid.device
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    total = rays_o.shape[0]
    chunk = chunk or max_rays_per_call(dev)
    frame = field_ops(field, grid, ops).frame(grid, aabb, params)
    for s in range(0, total, chunk):
        e = min(s + chunk, total)
        on_pass = None if progress is None else (lambda done, s=s: progress(s + done, total))
        state = march_frame(field, frame, rays_o[s:e], rays_d[s:e], on_pass=on_pass, stats=stats)
        write(s, e, bg, state, frame)
        if progress is not None:
            progress(e, total)


@torch.no_grad()
def render_image(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    camera: Camera,
    params: MarchParams,
    background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    ops: Ops | None = None,
    *,
    stats: FrameStats | None = None,
) -> dict[str, torch.Tensor]:
    """Render a full camera image. Returns rgb (H, W, 3) over the background, opacity (H, W), depth (H, W) (float,
    on the grid's device). ``ops`` defaults to the field's own (``field_ops``); ``chunk``: rays per call
    (default: the whole frame when memory allows); ``progress(done, total)`` after every pass (it may raise to
    cancel). The field computes in its own precision (float16 MLPs on CUDA by default)."""
    h, w = camera.height, camera.width
    rays_o, rays_d = camera_rays(camera, device=grid.device)
    out = render_rays(field, grid, aabb, rays_o, rays_d, params, background, chunk, ops, progress=progress, stats=stats)
    return {"rgb": out["rgb"].view(h, w, 3), "opacity": out["opacity"].view(h, w), "depth": out["depth"].view(h, w)}


@torch.no_grad()
def render_rgba(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    camera: Camera,
    params: MarchParams,
    background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    ops: Ops | None = None,
    *,
    floats: bool = False,
    stats: FrameStats | None = None,
) -> dict[str, torch.Tensor]:
    """Render a camera straight into a uint8 image: rgba (H, W, 4), colour over the background and alpha =
    opacity, ready for a viewport upload or a PNG. With ``floats`` also opacity and depth (H, W) float.
    Parameters as ``render_image``."""
    h, w = camera.height, camera.width
    dev = grid.device
    rgba = torch.empty(h * w, 4, dtype=torch.uint8, device=dev)
    extra = {"opacity": torch.empty(h * w, device=dev), "depth": torch.empty(h * w, device=dev)} if floats else {}

    def write(s: int, e: int, bg: torch.Tensor, state: FrameState, frame: FrameOps) -> None:
        frame.rgba8(state.rgb, state.trans, bg, rgba[s:e])
        if floats:
            torch.sub(1.0, state.trans, out=extra["opacity"][s:e])
            extra["depth"][s:e] = state.depth

    rays_o, rays_d = camera_rays(camera, device=dev)
    _render_ray_calls(field, grid, aabb, rays_o, rays_d, params, background, chunk, progress, ops, stats, write)
    return {"rgba": rgba.view(h, w, 4), **{k: v.view(h, w) for k, v in extra.items()}}


@torch.no_grad()
def render_rays(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor | tuple[float, float, float] = (0.0, 0.0, 0.0),
    chunk: int | None = None,
    ops: Ops | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    stats: FrameStats | None = None,
) -> dict[str, torch.Tensor]:
    """Render any rays (n, 3) (unit directions) as a frame is rendered: rgb (n, 3) over the background, opacity
    (n,) and accumulated depth (n,) (distance along the ray; ``depth / opacity`` is the expected depth).
    Parameters as ``render_image``."""
    n, dev = rays_o.shape[0], grid.device
    out = {
        "rgb": torch.empty(n, 3, device=dev),
        "opacity": torch.empty(n, device=dev),
        "depth": torch.empty(n, device=dev),
    }

    def write(s: int, e: int, bg: torch.Tensor, state: FrameState, frame: FrameOps) -> None:
        torch.addcmul(state.rgb, state.trans[:, None], bg, out=out["rgb"][s:e])
        torch.sub(1.0, state.trans, out=out["opacity"][s:e])
        out["depth"][s:e] = state.depth

    rays_o, rays_d = rays_o.to(dev).float(), rays_d.to(dev).float()
    _render_ray_calls(field, grid, aabb, rays_o, rays_d, params, background, chunk, progress, ops, stats, write)
    return out
