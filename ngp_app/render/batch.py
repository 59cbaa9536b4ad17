"""Fixed-capacity training batches, pure-PyTorch reference: marching into sample buffers whose capacity is known on
the host, and compacting the live samples (those compositing weighs) into a second one, so a training step needs no
sample count from the device.

Layout (:class:`FixedSamples`): ``capacity`` sample slots packed ray after ray. Ray ``r < n_rays`` owns slots
``[offsets[r], offsets[r] + counts[r])``; a sentinel ray ``n_rays`` owns the padding ``[total, capacity)``, whose
slots have ray index ``n_rays``, ``t = dt = 0`` and position 0 (compositing gives them no weight and, with their
densities zeroed, no gradient). Per-ray arrays have ``n_rays + 1`` entries, the sentinel's last. Rays are taken in
order while their samples fit; a ray that does not fit gets no samples and ``valid`` 0: it is left out of the loss,
never cut in the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .composite import exclusive_segment_cumsum
from .occupancy import OccupancyGrid
from .raymarch import MarchParams, PackedSamples, march_rays


@dataclass
class FixedSamples(PackedSamples):
    """Samples in fixed-capacity buffers (module docstring). Besides :class:`PackedSamples`' fields (of capacity
    length, and ``offsets``, ``counts`` of n_rays + 1): valid (n_rays,) float, 1 where all of the ray's samples are
    in the buffer; total () int64, samples in the buffer; requested () int64, samples of all rays, fitting or not."""

    valid: torch.Tensor
    total: torch.Tensor
    requested: torch.Tensor

    @property
    def n_rays(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def capacity(self) -> int:
        return int(self.t.shape[0])


def fit_counts(counts: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which rays fit in ``capacity`` slots taken in order: counts (n,) int64 -> fits (n,) bool, their counts
    (0 where they do not fit), offsets (n,) (exclusive prefix sum of those)."""
    fits = torch.cumsum(counts, 0) <= capacity
    kept = torch.where(fits, counts, torch.zeros_like(counts))
    return fits, kept, torch.cumsum(kept, 0) - kept


def _fill(
    dest: torch.Tensor,
    capacity: int,
    n_rays: int,
    positions: torch.Tensor,
    directions: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    ray_indices: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Scatter samples to slots ``dest`` (n,) of fresh buffers; ``dest == capacity`` discards a sample."""
    dev = t.device

    def put(src: torch.Tensor, fill: float | int, dtype: torch.dtype) -> torch.Tensor:
        buf = torch.full((capacity + 1, *src.shape[1:]), fill, dtype=dtype, device=dev)
        return buf.index_copy_(0, dest, src.to(dtype))[:capacity]

    return (
        put(positions, 0.0, torch.float32),
        put(directions, 0.0, torch.float32),
        put(t, 0.0, torch.float32),
        put(dt, 0.0, torch.float32),
        put(ray_indices, n_rays, torch.int64),
    )


def _with_sentinel(
    offsets: torch.Tensor, counts: torch.Tensor, total: torch.Tensor, capacity: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([offsets, total.view(1)]), torch.cat([counts, (capacity - total).view(1)])


@torch.no_grad()
def march_fixed(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: Sequence[float] | torch.Tensor,
    params: MarchParams,
    jitter: torch.Tensor | None,
    capacity: int,
) -> FixedSamples:
    """March rays (n, 3) into buffers of ``capacity`` samples (reference: marches everything, then keeps the rays
    that fit). aabb: 6 floats (min xyz, max xyz) or a (2, 3) tensor; jitter: (n,) in [0, 1) or None."""
    n = rays_o.shape[0]
    box = torch.as_tensor(aabb, dtype=torch.float32, device=rays_o.device).reshape(2, 3)
    s = march_rays(rays_o, rays_d, grid, box, params, jitter=jitter)
    fits, counts, offsets = fit_counts(s.counts, capacity)
    # fitting rays come first, so their samples keep their places; the others' go to the discard slot
    dest = torch.where(fits[s.ray_indices], torch.arange(s.n_samples, device=rays_o.device), capacity)
    buffers = _fill(dest, capacity, n, s.positions, s.directions, s.t, s.dt, s.ray_indices)
    total = counts.sum()
    offsets, counts = _with_sentinel(offsets, counts, total, capacity)
    return FixedSamples(*buffers, offsets, counts, fits.float(), total, s.counts.sum())


@torch.no_grad()
def compact(samples: FixedSamples, sigmas: torch.Tensor, threshold: float, capacity: int) -> FixedSamples:
    """The live samples of ``samples`` (transmittance before them >= ``threshold``, computed from ``sigmas``
    (capacity,) as compositing does: a prefix of each ray) in buffers of ``capacity`` slots; rays whose live samples
    do not fit get none and ``valid`` 0. ``requested``: live samples of all rays of the input buffer."""
    n = samples.n_rays
    ri = samples.ray_indices
    tau = torch.where(ri < n, sigmas * samples.dt, torch.zeros_like(sigmas))
    trans = torch.exp(-exclusive_segment_cumsum(tau, ri, samples.offsets))
    live = (trans >= threshold) & (ri < n)
    n_live = torch.zeros(n + 1, dtype=torch.int64, device=ri.device).index_add_(0, ri, live.long())[:n]
    fits, counts, offsets = fit_counts(n_live, capacity)
    rank = torch.arange(samples.capacity, device=ri.device) - samples.offsets[ri]
    keep = live & torch.cat([fits, fits.new_zeros(1)])[ri]
    dest = torch.where(keep, torch.cat([offsets, offsets.new_zeros(1)])[ri] + rank, capacity)
    buffers = _fill(dest, capacity, n, samples.positions, samples.directions, samples.t, samples.dt, ri)
    total = counts.sum()
    offsets, counts = _with_sentinel(offsets, counts, total, capacity)
    return FixedSamples(*buffers, offsets, counts, samples.valid * fits.float(), total, n_live.sum())
