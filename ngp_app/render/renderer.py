"""Rendering rays and images with a field and its occupancy grid (training and inference paths)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..compute.ops import Ops
from ..compute.select import as_ops
from ..data.cameras import Camera, camera_rays
from .composite import composite, exclusive_segment_cumsum
from .occupancy import OccupancyGrid
from .raymarch import (
    MarchParams,
    PackedSamples,
    candidates_at,
    lattice_k,
    occupied_span,
    pack_candidates,
    ray_aabb,
)

FieldFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def field_ops(field: object, ops: Ops | None = None) -> Ops:
    """``ops`` when given, else the field's own (``field.ops``), else the reference."""
    return ops if ops is not None else as_ops(getattr(field, "ops", None))


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
    recomputed from the rays, so the loss reaches the rays too. ``ops``: default ``field_ops(field)``."""
    ops = field_ops(field, ops)
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
    sigma, rgbs = field(positions, directions)
    # padding slots (dt 0) get no weight; zeroing their densities also keeps an infinite one from making NaNs
    sigma = torch.where(ri < n, sigma, torch.zeros_like(sigma))
    out: dict[str, Any] = ops.composite(
        sigma, rgbs, kept.t, kept.dt, ri, kept.offsets, n + 1, transmittance_threshold
    )
    for key in ("rgb", "opacity", "depth"):
        out[key] = out[key][:n]
    out["rgb"] = out["rgb"] + (1.0 - out["opacity"])[:, None] * background
    out["valid"] = kept.valid
    out["marched"] = marched
    out["kept"] = kept
    return out


def _composite_rounds(
    field: FieldFn,
    samples: PackedSamples,
    trans: torch.Tensor,
    rgb: torch.Tensor,
    depth: torch.Tensor,
    transmittance_threshold: float,
    first_round: int,
) -> None:
    """Composite packed samples into running per-ray ``trans`` (n,), ``rgb`` (n, 3), ``depth`` (n,) in place,
    evaluating the field in rounds of growing size and skipping rays that already terminated."""
    n = trans.shape[0]
    dev = trans.device
    rank = torch.arange(samples.n_samples, device=dev) - samples.offsets[samples.ray_indices]
    lo, size = 0, first_round
    max_rank = int(samples.counts.max()) if samples.n_samples > 0 else 0
    while lo < max_rank:
        alive = trans >= transmittance_threshold
        sel = (rank >= lo) & (rank < lo + size) & alive[samples.ray_indices]
        idx = torch.nonzero(sel).flatten()
        lo, size = lo + size, size * 2
        if idx.numel() == 0:
            continue
        rid = samples.ray_indices[idx]
        sigma, col = field(samples.positions[idx], samples.directions[idx])
        tau = sigma * samples.dt[idx]
        counts = torch.bincount(rid, minlength=n)
        offsets = torch.cumsum(counts, 0) - counts
        t_before = trans[rid] * torch.exp(-exclusive_segment_cumsum(tau, rid, offsets))
        w = t_before * (1.0 - torch.exp(-tau))
        w = torch.where(t_before >= transmittance_threshold, w, torch.zeros_like(w))
        rgb.index_add_(0, rid, w[:, None] * col)
        depth.index_add_(0, rid, w * samples.t[idx])
        trans.mul_(torch.exp(-torch.zeros(n, device=dev).index_add_(0, rid, tau)))


def _composite_pass(field: FieldFn, samples: PackedSamples, active: torch.Tensor, trans: torch.Tensor,
                    rgb: torch.Tensor, depth: torch.Tensor, transmittance_threshold: float, first_round: int) -> torch.Tensor:
    """Composite one marching pass of the ``active`` rays (samples indexed among them) into the running ``trans``,
    ``rgb`` and ``depth`` of all rays, in place; returns the active rays' transmittance after the pass."""
    sub_trans = trans[active]
    sub_rgb = torch.zeros(active.numel(), 3, device=trans.device)
    sub_depth = torch.zeros(active.numel(), device=trans.device)
    _composite_rounds(field, samples, sub_trans, sub_rgb, sub_depth, transmittance_threshold, first_round)
    trans[active] = sub_trans
    rgb.index_add_(0, active, sub_rgb)
    depth.index_add_(0, active, sub_depth)
    return sub_trans


@torch.no_grad()
def render_rays_infer(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor,
    transmittance_threshold: float = 1e-4,
    first_round: int = 8,
    steps_per_pass: int = 128,
    ops: Ops | None = None,
) -> dict[str, torch.Tensor]:
    """Render rays without gradients. Rays are marched ``steps_per_pass`` lattice steps at a time; each pass's
    samples are evaluated in rounds of growing size, and rays whose transmittance fell below the threshold
    (early termination) or that left the box are dropped from later passes. With native kernels the alive rays
    march a few *samples* at a time instead (the DDA skips empty space inside the kernel), ``first_round`` in the
    first pass and twice as many in each next one, up to ``steps_per_pass``. Returns rgb (n, 3), opacity, depth.
    ``ops``: default ``field_ops(field)``."""
    n = rays_o.shape[0]
    dev = rays_o.device
    trans = torch.ones(n, device=dev)
    rgb = torch.zeros(n, 3, device=dev)
    depth = torch.zeros(n, device=dev)
    ops = field_ops(field, ops)
    if ops.march_from is not None:  # incremental marching of the alive rays only
        active = torch.arange(n, device=dev)
        k = torch.zeros(n, dtype=torch.int64, device=dev)
        per_ray = max(1, first_round)
        while active.numel() > 0:
            samples, k_next = ops.march_from(rays_o[active], rays_d[active], grid, aabb, params, k, per_ray)
            # one round: every ray has at most per_ray samples in this pass
            sub_trans = _composite_pass(field, samples, active, trans, rgb, depth, transmittance_threshold, per_ray)
            keep = (sub_trans >= transmittance_threshold) & (k_next >= 0)
            active, k = active[keep], k_next[keep]
            per_ray = min(2 * per_ray, max(steps_per_pass, 1))
        return {"rgb": rgb + trans[:, None] * background, "opacity": 1.0 - trans, "depth": depth}
    t_near, t_far = ray_aabb(rays_o, rays_d, aabb)
    t_start, t_end = occupied_span(rays_o, rays_d, t_near, t_far, grid)
    active = torch.nonzero((t_near < t_far) & (t_start <= t_end)).flatten()
    k_first = lattice_k(t_near, t_start, params)
    t_far = torch.minimum(t_far, t_end)
    for j_start in range(0, params.max_steps, steps_per_pass):
        if active.numel() == 0:
            break
        o, d, tf = rays_o[active], rays_d[active], t_far[active]
        k = k_first[active, None] + torch.arange(j_start, j_start + steps_per_pass, device=dev)[None, :]
        t, mask = candidates_at(o, d, t_near[active], tf, grid, params, aabb, k)
        mask &= k < params.max_steps
        samples = pack_candidates(o, d, t, mask, params)
        sub_trans = _composite_pass(field, samples, active, trans, rgb, depth, transmittance_threshold, first_round)
        keep = (sub_trans >= transmittance_threshold) & (t[:, -1] < tf) & (k[:, -1] < params.max_steps - 1)
        active = active[keep]
    opacity = 1.0 - trans
    return {"rgb": rgb + trans[:, None] * background, "opacity": opacity, "depth": depth}


def default_chunk(device: torch.device, interactive: bool = False) -> int:
    """Rays rendered per call: large on a GPU (a 1920x1080 frame in a few calls, each pass's samples still fit in
    memory), small on a CPU, and smaller still for interactive renders that must be cancellable quickly."""
    if device.type == "cuda":
        return 1 << 18
    return 1 << 12 if interactive else 1 << 14


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
) -> dict[str, torch.Tensor]:
    """Render a full camera image. Returns rgb (H, W, 3), opacity (H, W), depth (H, W) on the grid's device.
    ``ops`` defaults to the field's own (``field_ops``); ``chunk`` rays per call (default: ``default_chunk``)."""
    ops = field_ops(field, ops)
    dev = grid.device
    chunk = chunk or default_chunk(dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    rays_o, rays_d = camera_rays(camera, device=dev)
    h, w = camera.height, camera.width
    outs: dict[str, list[torch.Tensor]] = {"rgb": [], "opacity": [], "depth": []}
    total = rays_o.shape[0]
    for s in range(0, total, chunk):
        out = render_rays_infer(field, grid, aabb, rays_o[s : s + chunk], rays_d[s : s + chunk], params, bg,
                                ops=ops)
        for key in outs:
            outs[key].append(out[key])
        if progress is not None:
            progress(min(s + chunk, total), total)
    return {
        "rgb": torch.cat(outs["rgb"]).view(h, w, 3),
        "opacity": torch.cat(outs["opacity"]).view(h, w),
        "depth": torch.cat(outs["depth"]).view(h, w),
    }
