"""Rendering rays and images with a field and its occupancy grid (training and inference paths)."""

from __future__ import annotations

from typing import Callable

import torch

from ..data.cameras import Camera, camera_rays
from .composite import composite, exclusive_segment_cumsum
from .occupancy import OccupancyGrid
from .raymarch import MarchParams, PackedSamples, march_rays

FieldFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def render_ops(backend: str) -> tuple[Callable[..., PackedSamples], Callable[..., dict[str, torch.Tensor]]]:
    """The (march_rays, composite) pair of a backend; both have the signatures of the torch reference."""
    if backend == "native":
        from ..native import ops as native_ops

        return native_ops.march_rays, native_ops.composite
    return march_rays, composite


def render_rays_train(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor,
    max_samples: int,
    jitter: torch.Tensor | None = None,
    transmittance_threshold: float = 1e-4,
    backend: str = "torch",
) -> dict[str, torch.Tensor]:
    """Differentiable render of a batch of rays. background: (n_rays, 3) or (3,). Returns rgb (n_rays, 3) composited
    over the background, opacity, depth (n_rays,), counts (n_rays,) samples per ray, n_samples (python int)."""
    march_fn, composite_fn = render_ops(backend)
    samples = march_fn(rays_o, rays_d, grid, aabb, params, jitter=jitter, max_samples=max_samples)
    n_rays = rays_o.shape[0]
    sigmas, rgbs = field(samples.positions, samples.directions)
    out = composite_fn(
        sigmas, rgbs, samples.t, samples.dt, samples.ray_indices, samples.offsets, n_rays, transmittance_threshold
    )
    out["rgb"] = out["rgb"] + (1.0 - out["opacity"])[:, None] * background
    out["counts"] = samples.counts
    out["n_samples"] = samples.n_samples  # type: ignore[assignment]
    return out


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
) -> dict[str, torch.Tensor]:
    """Render rays without gradients, evaluating samples in rounds of growing size and dropping rays whose
    transmittance fell below the threshold (early termination). Returns rgb (n, 3), opacity, depth (n,)."""
    n = rays_o.shape[0]
    dev = rays_o.device
    samples = march_rays(rays_o, rays_d, grid, aabb, params)
    rank = torch.arange(samples.n_samples, device=dev) - samples.offsets[samples.ray_indices]
    trans = torch.ones(n, device=dev)
    rgb = torch.zeros(n, 3, device=dev)
    depth = torch.zeros(n, device=dev)
    lo, size = 0, first_round
    max_rank = int(samples.counts.max()) if n > 0 and samples.n_samples > 0 else 0
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
        rgb.index_add_(0, rid, w[:, None] * col)
        depth.index_add_(0, rid, w * samples.t[idx])
        trans = trans * torch.exp(-torch.zeros(n, device=dev).index_add_(0, rid, tau))
    opacity = 1.0 - trans
    return {"rgb": rgb + trans[:, None] * background, "opacity": opacity, "depth": depth}


@torch.no_grad()
def render_image(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    camera: Camera,
    params: MarchParams,
    background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
    chunk: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Render a full camera image. Returns rgb (H, W, 3), opacity (H, W), depth (H, W) on the grid's device."""
    dev = grid.device
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    rays_o, rays_d = camera_rays(camera, device=dev)
    h, w = camera.height, camera.width
    outs: dict[str, list[torch.Tensor]] = {"rgb": [], "opacity": [], "depth": []}
    total = rays_o.shape[0]
    for s in range(0, total, chunk):
        out = render_rays_infer(field, grid, aabb, rays_o[s : s + chunk], rays_d[s : s + chunk], params, bg)
        for key in outs:
            outs[key].append(out[key])
        if progress is not None:
            progress(min(s + chunk, total), total)
    return {
        "rgb": torch.cat(outs["rgb"]).view(h, w, 3),
        "opacity": torch.cat(outs["opacity"]).view(h, w),
        "depth": torch.cat(outs["depth"]).view(h, w),
    }
