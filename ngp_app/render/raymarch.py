"""Ray marching through the occupancy grid, producing compacted (packed) samples.

Samples lie on a per-ray lattice of ``t`` values anchored at ``t0`` (box entry plus jitter): steps of ``dt_min``
while ``t * cone < dt_min``, then exponential steps ``t *= 1 + cone``, then steps of ``dt_max`` (the closed form is
``lattice_t``). A lattice point becomes a sample when it is inside the box and its cell is occupied at cascade
``max(mip_from_pos, mip_from_dt)``. A ray walks to the box exit ``t_far`` or until it has taken ``max_steps``
samples: the budget counts samples only, so empty space costs nothing (instant-ngp's ``NERF_STEPS``). The native
kernels walk the same lattice with a DDA that jumps over empty cells, so both give the same samples.

Incremental walks (``render.slots``, the native ``march_rays(cursor=...)``) go on from a *walk cursor*
(``make_cursor``): the lattice index to resume at and the samples taken so far, so the ``max_steps`` cap holds for
the whole walk and a resumed walk gives exactly the samples of an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .occupancy import OccupancyGrid, mip_from_dt, mip_from_pos

CURSOR_BITS = 16
"""A walk cursor is ``(k << CURSOR_BITS) | taken``: lattice index ``k`` and samples taken (< max_steps <= 2^16)."""

LATTICE_END = 1 << 24
"""Lattice indices stop here whatever the box (k converts to float32 exactly below it); real walks end far sooner."""


@dataclass
class MarchParams:
    """Step rule of the lattice: min/max step, cone angle (0: constant steps), samples per ray (1 .. 2^16) and the
    near distance (rays start no nearer their origin than this; instant-ngp's ``near_distance``)."""

    dt_min: float
    dt_max: float
    cone_angle: float
    max_steps: int = 1024
    near: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_steps <= 1 << CURSOR_BITS:
            raise ValueError(f"max_steps must be in [1, {1 << CURSOR_BITS}], not {self.max_steps}")
        if not 0.0 <= self.near < math.inf:
            raise ValueError(f"near must be finite and >= 0, not {self.near}")

    @staticmethod
    def for_grid(grid: OccupancyGrid, max_steps: int = 1024, near: float = 0.0) -> MarchParams:
        """instant-ngp's rule: cone angle 1/256 for scenes larger than the unit cube, else constant steps."""
        cone = 1.0 / 256.0 if grid.aabb_scale > 1 else 0.0
        return MarchParams(grid.min_step, grid.max_step(), cone, max_steps, near)

    def span(self, aabb: Sequence[float]) -> list[float]:
        """The native kernels' span: the box's 6 values (min xyz, max xyz) and the near distance."""
        return [*(float(v) for v in aabb), float(self.near)]


def make_cursor(k: torch.Tensor, taken: torch.Tensor | int) -> torch.Tensor:
    """Walk cursors of lattice indices k (n,) int64 with ``taken`` samples taken (n,) or a number."""
    return (k << CURSOR_BITS) | taken


def split_cursor(cursor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lattice index and samples taken (n,) of walk cursors (n,) int64 >= 0."""
    return cursor >> CURSOR_BITS, cursor & ((1 << CURSOR_BITS) - 1)


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
    inf = math.inf  # nan_to_num would also turn infinities into the largest float: keep them
    tmin = torch.minimum(t0, t1).nan_to_num(nan=-inf, posinf=inf, neginf=-inf)
    tmax = torch.maximum(t0, t1).nan_to_num(nan=inf, posinf=inf, neginf=-inf)
    t_near = tmin.amax(dim=-1).clamp(min=0.0)
    t_far = tmax.amin(dim=-1)
    return t_near, t_far


def box_span(
    rays_o: torch.Tensor, rays_d: torch.Tensor, aabb: torch.Tensor, near: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``ray_aabb`` with t_near at least ``near``, and which rays walk (n,) bool: they reach the box past ``near``
    and leave it at a finite t (a zero or NaN direction does not)."""
    t_near, t_far = ray_aabb(rays_o, rays_d, aabb)
    if near > 0.0:
        t_near = t_near.clamp(min=near)
    return t_near, t_far, (t_near < t_far) & torch.isfinite(t_far)


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
    max_points: int = 1 << 21,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conservative [t_start, t_end] (n,) of each ray that may contain occupied cells, from the dilated coarse grid.

    Coarse points are spaced by one coarse cell of cascade 0, so every point of a segment lies within one coarse
    cell of its start point, which the 1-cell dilation covers; such a point is at most one cascade finer than the
    start point, so every cascade from one below the point's own is checked. Rays without occupied space get
    t_start > t_end. Rays go ``max_points // points per ray`` at a time.
    """
    h = 1.0 / grid.coarse_occupied().shape[1]  # coarse cell size of cascade 0
    length = (t_far - t_near).clamp(min=0.0)
    n_steps = math.ceil(float(length.max()) / h) + 1 if length.numel() else 0
    if n_steps <= 1:
        return t_far + 1.0, t_far
    rows = max(1, max_points // n_steps)
    spans = [
        _span_rows(rays_o[s : s + rows], rays_d[s : s + rows], t_near[s : s + rows], t_far[s : s + rows], grid, n_steps)
        for s in range(0, rays_o.shape[0], rows)
    ]
    return torch.cat([a for a, _ in spans]), torch.cat([b for _, b in spans])


def _span_rows(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    t_near: torch.Tensor,
    t_far: torch.Tensor,
    grid: OccupancyGrid,
    n_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``occupied_span`` of rays (m, 3) with n_steps coarse points each. Returns t_start, t_end (m,)."""
    coarse = grid.coarse_occupied()
    n_c, r = coarse.shape[0], coarse.shape[1]
    h = 1.0 / r
    j = torch.arange(n_steps, device=rays_o.device, dtype=rays_o.dtype)
    tj = t_near[:, None] + j[None, :] * h  # (m, s)
    valid = tj <= t_far[:, None]
    flat = (rays_o[:, None, :] + tj[..., None] * rays_d[:, None, :]).reshape(-1, 3)
    lowest = mip_from_pos(flat, n_c) - 1
    occ = torch.zeros(flat.shape[0], dtype=torch.bool, device=flat.device)
    for c in range(n_c):
        p = (flat - 0.5) * (0.5**c) + 0.5
        ijk = (p * r).to(torch.int64).clamp(0, r - 1)
        occ |= coarse[c][ijk[:, 2], ijk[:, 1], ijk[:, 0]] & (lowest <= c)
    occ = occ.view_as(tj) & valid
    idx = torch.arange(n_steps, device=rays_o.device)
    first = torch.where(occ, idx, n_steps).amin(dim=1)
    last = torch.where(occ, idx, -1).amax(dim=1)
    t_start = torch.where(occ.any(dim=1), t_near + first.to(tj.dtype) * h, t_far + 1.0)
    return t_start, torch.minimum(t_near + (last + 1).to(tj.dtype) * h, t_far)


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


@dataclass
class Taken:
    """Samples found by ``walk_lattice``, m of them: ray (m,), rank (m,) (the sample's index among the ones its ray
    took in this walk), lattice index k (m,) and t (m,)."""

    ray: torch.Tensor
    rank: torch.Tensor
    k: torch.Tensor
    t: torch.Tensor


def walk_lattice(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    t0: torch.Tensor,
    t_far: torch.Tensor,
    k_start: torch.Tensor,
    budget: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    steps: int,
) -> tuple[Taken, torch.Tensor]:
    """Walk each ray's lattice (anchor t0 (n,)) from index k_start (n,) until it has taken budget (n,) samples or
    passed t_far (n,), ``steps`` points per round for the rays still walking. Returns the samples and counts (n,)."""
    dev = rays_o.device
    counts = torch.zeros_like(budget)
    pending = budget > 0
    found: list[tuple[torch.Tensor, ...]] = []
    j = 0
    while bool(pending.any()):
        idx = torch.nonzero(pending).flatten()
        kk = k_start[idx, None] + torch.arange(j, j + steps, device=dev)[None, :]
        t, mask = candidates_at(rays_o[idx], rays_d[idx], t0[idx], t_far[idx], grid, params, aabb, kk)
        mask &= kk < LATTICE_END
        rank = counts[idx, None] + torch.cumsum(mask.long(), 1) - 1
        take = mask & (rank < budget[idx, None])
        rows, cols = torch.nonzero(take, as_tuple=True)
        found.append((idx[rows], rank[rows, cols], kk[rows, cols], t[rows, cols]))
        counts[idx] += take.sum(1)
        pending[idx] = (counts[idx] < budget[idx]) & (t[:, -1] < t_far[idx]) & (kk[:, -1] < LATTICE_END - 1)
        j += steps
    if not found:
        none = torch.zeros(0, dtype=torch.int64, device=dev)
        return Taken(none, none, none, torch.zeros(0, device=dev)), counts
    return Taken(*(torch.cat(parts) for parts in zip(*found))), counts


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
    """March all rays through the grid (training and reference inference): each to the box exit or to its
    ``max_steps``-th sample.

    rays_o, rays_d: (n_rays, 3), unit directions; jitter: (n_rays,) in [0, 1) offsets t0 by a fraction of a step.
    max_samples: sample budget; rays past it get no samples (a ray is never cut in the middle).
    """
    t_near, t_far, hit = box_span(rays_o, rays_d, aabb, params.near)
    t0 = t_near + (jitter if jitter is not None else torch.zeros_like(t_near)) * step_dt(t_near, params)
    t0 = torch.where(hit, t0, torch.zeros_like(t0))
    t_far = torch.where(hit, t_far, torch.zeros_like(t_far))
    # Skip the empty space before and after the occupied span of each ray (same samples, fewer candidates).
    t_start, t_end = occupied_span(rays_o, rays_d, t0, t_far, grid)
    hit = hit & (t_start <= t_end)
    k_first = torch.where(hit, lattice_k(t0, t_start, params), torch.zeros_like(t0, dtype=torch.int64))
    budget = torch.where(hit, params.max_steps, 0).to(torch.int64)
    found, counts = walk_lattice(
        rays_o, rays_d, t0, torch.minimum(t_far, t_end), k_first, budget, grid, aabb, params, chunk_steps
    )
    if max_samples is not None:
        fits = torch.cumsum(counts, 0) <= max_samples
        counts = torch.where(fits, counts, torch.zeros_like(counts))
        keep = fits[found.ray]
        found = Taken(found.ray[keep], found.rank[keep], found.k[keep], found.t[keep])
    return pack_taken(rays_o, rays_d, found, counts, params)


def pack_taken(
    rays_o: torch.Tensor, rays_d: torch.Tensor, found: Taken, counts: torch.Tensor, params: MarchParams
) -> PackedSamples:
    """Pack samples (``walk_lattice``'s) ray after ray, each ray's in walk order; counts (n_rays,) per ray."""
    offsets = torch.cumsum(counts, 0) - counts
    slot = offsets[found.ray] + found.rank
    t_s = torch.empty_like(found.t).index_copy_(0, slot, found.t)
    ray_idx = torch.empty_like(found.ray).index_copy_(0, slot, found.ray)
    d_s = rays_d[ray_idx]
    pos = rays_o[ray_idx] + t_s[:, None] * d_s
    return PackedSamples(pos, d_s, t_s, step_dt(t_s, params), ray_idx, offsets, counts)
