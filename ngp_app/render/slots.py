"""PyTorch reference of the per-pass ops of whole-frame inference over fixed-stride sample slots (the oracle of
``kernels/include/ngp/slots.h``).

A frame keeps per-ray state (transmittance ``trans``, colour ``rgb`` and ``depth`` accumulated without the
background, and ``k``: the walk cursor the ray resumes from (``raymarch.make_cursor``: lattice index and samples
taken, so a ray's ``max_steps`` cap holds over all passes), -1 once the ray is finished). Each pass gives
the j-th alive ray the K slots [j*K, j*K+K) of a sample buffer, evaluates the field on all of them, composites each
ray's samples into its state and compacts the list of rays still alive. The ops, in pass order:

- ``march_first``: k <- the cursor of each ray's first sample (-1: none);
- ``march_slots``: the next (up to) K samples of each alive ray, k advanced past them (-1 once the walk is over:
  the box exit is passed or ``max_steps`` samples are taken);
- ``composite_slots``: front-to-back compositing into the state; a ray whose transmittance fell below the
  threshold is finished. The state's ``trans`` is the transmittance after the last composited sample, so
  ``1 - trans`` equals the packed compositing's opacity (sum of weights) and the passes give its colour and depth;
- ``compact_rays``: out[:counter] <- the alive rays with k >= 0 (counter on the device);
- ``rgba8``: the frame's uint8 RGBA.

Samples are the lattice points of ``raymarch.march_rays`` (no jitter).
"""

from __future__ import annotations

import torch

from .occupancy import OccupancyGrid
from .raymarch import (
    LATTICE_END,
    MarchParams,
    box_span,
    lattice_k,
    lattice_t,
    make_cursor,
    occupied_span,
    split_cursor,
    step_dt,
    walk_lattice,
)


def _walk(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    cursor: torch.Tensor,
    K: int,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Walk rays (n, 3) on from their cursors (n,) (-1: finished) to their next K samples.

    Returns t (n, K) (0 past a ray's count), the samples' lattice indices (n, K) (-1 past the count), counts (n,)
    and the cursors to resume from (n,): one past the K-th sample, or -1 once the walk is over (the box exit is
    reached or the ray has taken max_steps samples).
    """
    n, dev = rays_o.shape[0], rays_o.device
    t_near, t_far, hit = box_span(rays_o, rays_d, aabb, params.near)
    t0 = torch.where(hit, t_near, torch.zeros_like(t_near))
    t_far = torch.where(hit, t_far, torch.zeros_like(t_far))
    k_begin, taken = split_cursor(cursor.clamp(min=0))
    left = params.max_steps - taken  # samples the ray may still take
    budget = torch.where(hit & (cursor >= 0), left.clamp(max=K), 0)
    found, counts = walk_lattice(rays_o, rays_d, t0, t_far, k_begin, budget, grid, aabb, params, max(2 * K, 64))
    ts = torch.zeros(n, K, device=dev)
    ks = torch.full((n, K), -1, dtype=torch.int64, device=dev)
    ts[found.ray, found.rank] = found.t
    ks[found.ray, found.rank] = found.k
    after = ks[:, K - 1] + 1
    goes_on = (counts == K) & (left > K) & (after < LATTICE_END) & (lattice_t(t0, after, params) < t_far)
    resume = torch.where(goes_on, make_cursor(after, taken + K), -1)
    return ts, ks, counts, resume


def march_first(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    k: torch.Tensor,
) -> None:
    """k (n,) int64 <- the cursor of each ray's first sample (none taken), -1 when it has none. rays_o, rays_d:
    (n, 3)."""
    t_near, t_far, hit = box_span(rays_o, rays_d, aabb, params.near)
    t0 = torch.where(hit, t_near, torch.zeros_like(t_near))
    t_far = torch.where(hit, t_far, torch.zeros_like(t_far))
    t_start, t_end = occupied_span(rays_o, rays_d, t0, t_far, grid)  # skip the empty space before the first cell
    hit &= t_start <= t_end
    cursor = torch.where(hit, make_cursor(lattice_k(t0, t_start, params), 0), torch.full_like(k, -1))
    _, ks, counts, _ = _walk(rays_o, rays_d, cursor, 1, grid, aabb, params)
    k.copy_(torch.where(counts > 0, make_cursor(ks[:, 0], 0), torch.full_like(k, -1)))


def march_slots(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    alive: torch.Tensor,
    k: torch.Tensor,
    K: int,
) -> list[torch.Tensor]:
    """The next (up to) K samples of each alive ray in its K slots; k advances in place.

    rays_o, rays_d: (n_rays, 3); alive: (n,) int32; k: (n_rays,) int64 walk cursors. Returns positions,
    directions (n*K, 3), t, dt (n*K,) and counts (n,) int32; empty slots hold t = dt = 0 at the ray's origin.
    """
    a = alive.long()
    o, d = rays_o[a], rays_d[a]
    ts, _, counts, resume = _walk(o, d, k[a], K, grid, aabb, params)
    k[a] = resume
    valid = torch.arange(K, device=o.device)[None, :] < counts[:, None]
    dt = torch.where(valid, step_dt(ts, params), torch.zeros_like(ts))
    positions = o[:, None, :] + ts[..., None] * d[:, None, :]
    directions = d[:, None, :].expand(-1, K, -1)
    return [
        positions.reshape(-1, 3),
        directions.reshape(-1, 3).contiguous(),
        ts.reshape(-1),
        dt.reshape(-1),
        counts.to(torch.int32),
    ]


def composite_slots(
    sigmas: torch.Tensor,
    rgbs: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    counts: torch.Tensor,
    alive: torch.Tensor,
    K: int,
    threshold: float,
    trans: torch.Tensor,
    rgb: torch.Tensor,
    depth: torch.Tensor,
    k: torch.Tensor,
) -> None:
    """Composite one pass's slots into the frame state in place: sigmas, t, dt (n*K,), rgbs (n*K, 3), counts (n,),
    alive (n,); trans, depth, k (n_rays,), rgb (n_rays, 3). A sample counts while the transmittance before it is
    >= threshold; rays left below the threshold get k = -1."""
    n = alive.numel()
    a = alive.long()
    valid = torch.arange(K, device=sigmas.device)[None, :] < counts[:, None].long()
    tau = torch.where(valid, sigmas.view(n, K) * dt.view(n, K), torch.zeros(n, K, device=sigmas.device))
    t0 = trans[a]
    optical = torch.cumsum(tau.double(), 1)
    before = torch.cat([torch.zeros(n, 1, dtype=optical.dtype, device=optical.device), optical[:, :-1]], 1)
    t_before = t0[:, None] * torch.exp(-before.float())
    live = valid & (t_before >= threshold)
    w = torch.where(live, t_before * (1.0 - torch.exp(-tau)), torch.zeros_like(tau))
    rgb[a] += (w[..., None] * rgbs.view(n, K, 3)).sum(1)
    depth[a] += (w * t.view(n, K)).sum(1)
    live_optical = torch.where(live, tau.double(), torch.zeros_like(optical)).sum(1)
    t_after = t0 * torch.exp(-live_optical.float())
    trans[a] = t_after
    k[a] = torch.where(t_after >= threshold, k[a], torch.full_like(k[a], -1))


def compact_rays(alive: torch.Tensor, k: torch.Tensor, out: torch.Tensor, counter: torch.Tensor) -> None:
    """out[:counter] <- the entries of alive (n,) int32 whose k >= 0, in order; counter (1,) int32."""
    kept = alive[k[alive.long()] >= 0]
    out[: kept.numel()] = kept
    counter.fill_(kept.numel())


def rgba8(rgb: torch.Tensor, trans: torch.Tensor, background: torch.Tensor, out: torch.Tensor) -> None:
    """out (n, 4) uint8 <- colour rgb (n, 3) + trans (n,) * background (3,) and alpha 1 - trans, rounded."""
    colour = rgb + trans[:, None] * background
    values = torch.cat([colour, (1.0 - trans)[:, None]], 1)
    out.copy_((values.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).view_as(out))


class TorchFrameOps:
    """The reference ops bound to one frame's grid, box and step rule (``Ops.frame`` of the torch backend)."""

    def __init__(self, grid: OccupancyGrid, aabb: torch.Tensor, params: MarchParams) -> None:
        self.grid, self.aabb, self.params = grid, aabb, params

    def march_first(self, rays_o: torch.Tensor, rays_d: torch.Tensor, k: torch.Tensor) -> None:
        march_first(rays_o, rays_d, self.grid, self.aabb, self.params, k)

    def march_slots(
        self, rays_o: torch.Tensor, rays_d: torch.Tensor, alive: torch.Tensor, k: torch.Tensor, K: int
    ) -> list[torch.Tensor]:
        return march_slots(rays_o, rays_d, self.grid, self.aabb, self.params, alive, k, K)

    composite_slots = staticmethod(composite_slots)
    compact_rays = staticmethod(compact_rays)
    rgba8 = staticmethod(rgba8)
