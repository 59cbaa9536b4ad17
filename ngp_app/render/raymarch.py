"""Ray marching through the occupancy grid, producing compacted (packed) samples.

Samples lie on a per-ray lattice of ``t`` values anchored at ``t0`` (box entry plus jitter): steps of ``dt_min``
while ``t * cone < dt_min``, then exponential steps ``t *= 1 + cone``, then steps of ``dt_max`` (the closed form is
``lattice_t``). A lattice point becomes a sample when it is inside the box and its cell is occupied at cascade
``max(mip_from_pos, mip_from_dt)``; at most ``max_steps`` lattice points are visited per ray. The native kernels
walk the same lattice with a DDA that jumps over empty cells, so both give the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .occupancy import OccupancyGrid, mip_from_dt, mip_from_pos


@dataclass
class MarchParams:
    """Step rule of the lattice: min/max step, cone angle (0: constant steps) and steps per ray."""

    dt_min: float
    dt_max: float
    cone_angle: float
    max_steps: int = 1024

    @staticmethod
    def for_grid(grid: OccupancyGrid, max_steps: int = 1024) -> MarchParams:
        """instant-ngp's rule: cone angle 1/256 for scenes larger than the unit cube, else constant steps."""
        cone = 1.0 / 256.0 if grid.aabb_scale > 1 else 0.0
        return MarchParams(grid.min_step, grid.max_step(), cone, max_steps)


@dataclass
class PackedSamples:
    """Samples of many rays, stored ray after ray.

    positions: (n, 3); directions: (n, 3); t: (n,); dt: (n,); ray_indices: (n,) int64 sorted;
    offsets: (n_rays,) first sample of each ray; counts: (n_rays,) samples per ray.
    """

    positions: torch.Tensor
    directions: torch.Tensor
    t: torch.Tensor
    dt: torch.Tensor
    ray_indices: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor

    @property
    def n_samples(self) -> int:
        return int(self.t.shape[0])


def ray_aabb(rays_o: torch.Tensor, rays_d: torch.Tensor, aabb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test. rays_o, rays_d: (n, 3); aabb: (2, 3). Returns t_near, t_far (n,); t_near >= 0, and a ray that
    misses the box has t_near > t_far (both +inf where it is parallel to and outside a slab)."""
    inv = 1.0 / rays_d
    t0 = (aabb[0] - rays_o) * inv
    t1 = (aabb[1] - rays_o) * inv
    tmin = torch.minimum(t0, t1).nan_to_num(nan=-math.inf)
    tmax = torch.maximum(t0, t1).nan_to_num(nan=math.inf)
    t_near = tmin.amax(dim=-1).clamp(min=0.0)
    t_far = tmax.amin(dim=-1)
    return t_near, t_far


def lattice_t(t0: torch.Tensor, k: torch.Tensor, params: MarchParams) -> torch.Tensor:
    """t of lattice step ``k`` of rays starting at ``t0``. t0: (n, 1) or (n,), k broadcastable -> broadcast shape."""
    dmin, dmax, c = params.dt_min, params.dt_max, params.cone_angle
    kf = k.to(t0.dtype)
    if c <= 0.0:
        return t0 + kf * dmin
    ta, tb = dmin / c, dmax / c
    ka = torch.ceil(((ta - t0) / dmin).clamp(min=0.0))  # steps of dt_min before the cone takes over
    t_a = t0 + ka * dmin
    growth = math.log1p(c)
    kb = torch.ceil((torch.log(tb / t_a.clamp(min=1e-30)) / growth).clamp(min=0.0))
    t_b = t_a * torch.exp(kb * growth)
    linear = t0 + kf * dmin
    expo = t_a * torch.exp((kf - ka) * growth)
    coarse = t_b + (kf - ka - kb) * dmax
    return torch.where(kf <= ka, linear, torch.where(kf <= ka + kb, expo, coarse))


def lattice_k(t0: torch.Tensor, t: torch.Tensor, params: MarchParams) -> torch.Tensor:
    """A lattice step index at or before the first lattice point with t' >= ``t`` (inverse of ``lattice_t``,
    rounded down so that no lattice point at or after ``t`` is skipped). t0, t: (n,). Returns (n,) int64 >= 0."""
    dmin, dmax, c = params.dt_min, params.dt_max, params.cone_angle
    if c <= 0.0:
        k = (t - t0) / dmin
    else:
        ta, tb = dmin / c, dmax / c
        ka = torch.ceil(((ta - t0) / dmin).clamp(min=0.0))
        t_a = t0 + ka * dmin
        growth = math.log1p(c)
        kb = torch.ceil((torch.log(tb / t_a.clamp(min=1e-30)) / growth).clamp(min=0.0))
        t_b = t_a * torch.exp(kb * growth)
        k_lin = (t - t0) / dmin
        k_exp = ka + torch.log(t.clamp(min=1e-30) / t_a.clamp(min=1e-30)) / growth
        k_coarse = ka + kb + (t - t_b) / dmax
        k = torch.where(t <= t_a, k_lin, torch.where(t <= t_b, k_exp, k_coarse))
    return (torch.floor(k) - 1).clamp(min=0).to(torch.int64)


def occupied_span(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    t_near: torch.Tensor,
    t_far: torch.Tensor,
    grid: OccupancyGrid,
    max_coarse_steps: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conservative [t_start, t_end] of each ray that may contain occupied cells, from the dilated coarse grid.

    Coarse points are spaced by one coarse cell of cascade 0, so every point of a segment lies within one coarse
    cell of its start point, which the 1-cell dilation covers; every cascade at or above the point's own is
    checked, covering samples that look up coarser cascades. Rays without occupied space get t_start > t_end.
    """
    coarse = grid.coarse_occupied()
    n_c, r = coarse.shape[0], coarse.shape[1]
    h = 1.0 / r  # coarse cell size of cascade 0
    length = (t_far - t_near).clamp(min=0.0)
    n_steps = int(min(max_coarse_steps, math.ceil(float(length.max()) / h) + 1)) if length.numel() else 0
    if n_steps <= 0:
        return t_far + 1.0, t_far
    h_ray = (
        torch.maximum(torch.full_like(length, h), length / (max_coarse_steps - 1))
        if n_steps == max_coarse_steps
        else torch.full_like(length, h)
    )
    j = torch.arange(n_steps, device=rays_o.device, dtype=rays_o.dtype)
    tj = t_near[:, None] + j[None, :] * h_ray[:, None]  # (n, m)
    valid = tj <= t_far[:, None]
    pos = rays_o[:, None, :] + tj[..., None] * rays_d[:, None, :]
    flat = pos.reshape(-1, 3)
    mip = mip_from_pos(flat, n_c)
    occ = torch.zeros(flat.shape[0], dtype=torch.bool, device=flat.device)
    for c in range(n_c):
        p = (flat - 0.5) * (0.5**c) + 0.5
        ijk = (p * r).to(torch.int64).clamp(0, r - 1)
        hit = coarse[c][ijk[:, 2], ijk[:, 1], ijk[:, 0]]
        occ |= hit & (mip <= c)
    occ = occ.view_as(tj) & valid
    any_occ = occ.any(dim=1)
    idx = torch.arange(n_steps, device=rays_o.device)
    first = torch.where(occ, idx, n_steps).amin(dim=1)
    last = torch.where(occ, idx, -1).amax(dim=1)
    t_start = t_near + first.to(tj.dtype) * h_ray
    t_end = torch.minimum(t_near + (last + 1).to(tj.dtype) * h_ray, t_far)
    t_start = torch.where(any_occ, t_start, t_far + 1.0)
    return t_start, t_end


def step_dt(t: torch.Tensor, params: MarchParams) -> torch.Tensor:
    """Step size at ``t``: clamp(t * cone, dt_min, dt_max)."""
    if params.cone_angle <= 0.0:
        return torch.full_like(t, params.dt_min)
    return (t * params.cone_angle).clamp(params.dt_min, params.dt_max)


def candidates_at(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    t0: torch.Tensor,
    t_far: torch.Tensor,
    grid: OccupancyGrid,
    params: MarchParams,
    aabb: torch.Tensor,
    k: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lattice points k (n, m) of each ray and which of them are samples. Returns t (n, m), mask (n, m)."""
    t = lattice_t(t0[:, None], k, params)  # (n, m)
    pos = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    inside = (t < t_far[:, None]) & ((pos >= aabb[0]) & (pos <= aabb[1])).all(-1)
    flat = pos.reshape(-1, 3)
    dt = step_dt(t, params).reshape(-1)
    mip = torch.maximum(mip_from_pos(flat, grid.n_cascades), mip_from_dt(dt, grid.resolution, grid.n_cascades))
    occ = grid.is_occupied(flat, mip).view_as(t)
    return t, inside & occ


def march_rays(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    jitter: torch.Tensor | None = None,
    max_samples: int | None = None,
    chunk_steps: int = 256,
) -> PackedSamples:
    """March all rays through the grid (training and reference inference).

    rays_o, rays_d: (n_rays, 3), unit directions; jitter: (n_rays,) in [0, 1) offsets t0 by a fraction of a step.
    max_samples: sample budget; rays past it get no samples (a ray is never cut in the middle).
    """
    n = rays_o.shape[0]
    dev = rays_o.device
    t_near, t_far = ray_aabb(rays_o, rays_d, aabb)
    hit = t_near < t_far
    t0 = t_near + (jitter if jitter is not None else torch.zeros_like(t_near)) * step_dt(t_near, params)
    t0 = torch.where(hit, t0, torch.zeros_like(t0))
    t_far = torch.where(hit, t_far, torch.zeros_like(t_far))
    # Skip the empty space before and after the occupied span of each ray (same samples, fewer candidates).
    t_start, t_end = occupied_span(rays_o, rays_d, t0, t_far, grid)
    hit = hit & (t_start <= t_end)
    k_first = torch.where(hit, lattice_k(t0, t_start, params), torch.zeros_like(t0, dtype=torch.int64))
    t_far = torch.minimum(t_far, t_end)
    ts, ks = [], []
    for j_start in range(0, params.max_steps, chunk_steps):
        if not bool(hit.any()):
            break
        k = k_first[:, None] + torch.arange(j_start, j_start + chunk_steps, device=dev)[None, :]
        t, mask = candidates_at(rays_o, rays_d, t0, t_far, grid, params, aabb, k)
        mask &= (k < params.max_steps) & hit[:, None]
        ts.append(t)
        ks.append(mask)
        hit = hit & (t[:, -1] < t_far) & (k[:, -1] < params.max_steps - 1)
    if not ts:
        empty = torch.zeros(0, device=dev)
        zeros = torch.zeros(n, dtype=torch.int64, device=dev)
        return PackedSamples(empty.view(0, 3), empty.view(0, 3), empty, empty, zeros[:0], zeros, zeros)
    t_all = torch.cat(ts, dim=1)
    mask = torch.cat(ks, dim=1)
    counts = mask.sum(dim=1)
    if max_samples is not None:
        cum = torch.cumsum(counts, 0)
        keep_ray = cum <= max_samples
        mask &= keep_ray[:, None]
        counts = torch.where(keep_ray, counts, torch.zeros_like(counts))
    return pack_candidates(rays_o, rays_d, t_all, mask, params, counts)


def pack_candidates(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    t: torch.Tensor,
    mask: torch.Tensor,
    params: MarchParams,
    counts: torch.Tensor | None = None,
) -> PackedSamples:
    """Compact the lattice points selected by ``mask`` (n_rays, m) into packed samples, ray after ray."""
    if counts is None:
        counts = mask.sum(dim=1)
    ray_idx, _ = torch.nonzero(mask, as_tuple=True)
    t_s = t[mask]
    d_s = rays_d[ray_idx]
    pos = rays_o[ray_idx] + t_s[:, None] * d_s
    offsets = torch.cumsum(counts, 0) - counts
    return PackedSamples(pos, d_s, t_s, step_dt(t_s, params), ray_idx, offsets, counts)
