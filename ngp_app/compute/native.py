"""The ``native`` backend: adapters that unpack the domain types (grid geometry, occupancy grid, march parameters)
into the plain tensors and scalars of ``native/ops.py`` and pack its results back (``PackedSamples``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

from ..encoding.hashgrid import GridGeometry, HashGridEncoding
from ..native import ops as native_ops
from ..native.ops import GeometryArgs
from ..ops import Ops
from ..render.batch import FixedSamples
from ..render.occupancy import OccupancyGrid
from ..render.raymarch import MarchParams, PackedSamples
from .reference import mlp


@lru_cache(maxsize=64)
def geometry_args(geometry: GridGeometry) -> GeometryArgs:
    """The kernels' view of a grid layout (cached: geometries are immutable)."""
    return GeometryArgs(
        list(geometry.scales),
        list(geometry.resolutions),
        geometry.level_sizes(),
        list(geometry.offsets[:-1]),
        [int(h) for h in geometry.hashed],
        (1 << geometry.log2_hashmap_size) - 1,
    )


def hash_grid_encode(
    x: torch.Tensor, table: torch.Tensor, geometry: GridGeometry, lookup: torch.Tensor | None = None
) -> torch.Tensor:
    """Native ``encoding.hashgrid.hash_grid_encode``: x (n, 3) in [0, 1], table (n_rows, F) -> (n, L*F);
    ``lookup``: an optional float16 copy of the table that the kernels read instead."""
    return native_ops.hash_grid_encode(x, table, geometry_args(geometry), lookup)


def encode(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    lookup = enc.half_table() if enc.precision == "float16" else None
    return hash_grid_encode(x, enc.table, enc.geometry, lookup)


def composite(
    sigmas: torch.Tensor,
    rgbs: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    ray_indices: torch.Tensor,
    offsets: torch.Tensor,
    n_rays: int,
    transmittance_threshold: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Native ``render.composite.composite``: samples must be packed ray after ray (``offsets`` their starts);
    ``ray_indices`` is implied by the offsets and not read."""
    if offsets.numel() != n_rays:
        raise ValueError(f"offsets has {offsets.numel()} entries for {n_rays} rays")
    rgb, opacity, depth, weights, trans = native_ops.composite(sigmas, rgbs, t, dt, offsets, transmittance_threshold)
    return {"rgb": rgb, "opacity": opacity, "depth": depth, "weights": weights, "transmittance": trans}


def _march(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    jitter: torch.Tensor | None,
    max_samples: int | None,
    cursor: torch.Tensor | None,
    max_per_ray: int | None,
) -> list[torch.Tensor]:
    return native_ops.march_rays(
        rays_o,
        rays_d,
        jitter,
        grid.occupied,
        params.span(aabb_values(aabb)),
        params.dt_min,
        params.dt_max,
        params.cone_angle,
        params.max_steps,
        grid.n_cascades,
        grid.resolution,
        max_samples,
        cursor,
        max_per_ray,
    )


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
    """Native ``render.raymarch.march_rays`` (count pass, prefix sum, write pass; DDA over empty cells)."""
    del chunk_steps  # the native walk needs no chunking
    return PackedSamples(*_march(rays_o, rays_d, grid, aabb, params, jitter, max_samples, None, None)[:7])


class NativeFrameOps:
    """The native per-pass ops of whole-frame inference (render.frame.FrameOps) bound to one frame: the grid's
    occupancy bytes and the march numbers are prepared once (the box's corners are read back once per frame)."""

    def __init__(self, grid: OccupancyGrid, aabb: torch.Tensor, params: MarchParams) -> None:
        self.occupied = grid.occupied.contiguous().view(torch.uint8).reshape(-1)
        self.args: native_ops.MarchArgs = (
            params.span(aabb.reshape(-1).tolist()),
            params.dt_min,
            params.dt_max,
            params.cone_angle,
            int(params.max_steps),
            grid.n_cascades,
            grid.resolution,
        )

    def march_first(self, rays_o: torch.Tensor, rays_d: torch.Tensor, k: torch.Tensor) -> None:
        native_ops.march_first(rays_o, rays_d, self.occupied, self.args, k)

    def march_slots(
        self, rays_o: torch.Tensor, rays_d: torch.Tensor, alive: torch.Tensor, k: torch.Tensor, K: int
    ) -> list[torch.Tensor]:
        return native_ops.march_slots(rays_o, rays_d, self.occupied, self.args, alive, k, K)

    composite_slots = staticmethod(native_ops.composite_slots)
    compact_rays = staticmethod(native_ops.compact_rays)
    rgba8 = staticmethod(native_ops.rgba8)


def aabb_values(aabb: Sequence[float] | torch.Tensor) -> list[float]:
    """The box as 6 floats (a tensor costs a host read: the trainer passes Python values)."""
    return aabb.reshape(-1).tolist() if isinstance(aabb, torch.Tensor) else [float(v) for v in aabb]


def march_fixed(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: Sequence[float] | torch.Tensor,
    params: MarchParams,
    jitter: torch.Tensor | None,
    capacity: int,
) -> FixedSamples:
    """Native ``render.batch.march_fixed``."""
    return FixedSamples(
        *native_ops.march_rays_fixed(
            rays_o,
            rays_d,
            jitter,
            grid.occupied,
            params.span(aabb_values(aabb)),
            params.dt_min,
            params.dt_max,
            params.cone_angle,
            params.max_steps,
            grid.n_cascades,
            grid.resolution,
            capacity,
        )
    )


def compact(samples: FixedSamples, sigmas: torch.Tensor, threshold: float, capacity: int) -> FixedSamples:
    """Native ``render.batch.compact``."""
    return FixedSamples(
        *native_ops.compact_samples(
            sigmas,
            samples.positions,
            samples.directions,
            samples.t,
            samples.dt,
            samples.offsets,
            samples.counts,
            samples.valid,
            threshold,
            capacity,
        )
    )


def dense_adam_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """Native ``compute.reference.dense_adam_reference_`` (torch.optim.Adam's update at global step ``step``)."""
    native_ops.adam_step(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        lr / (1.0 - beta1**step),
        math.sqrt(1.0 - beta2**step),
        beta1,
        beta2,
        eps,
        weight_decay,
        sparse=False,
    )


def ops(encode_fn=encode, mlp_fn=mlp, name: str = "native") -> Ops:
    """The native backend; the tcnn backend reuses it with tiny-cuda-nn's encoding and MLPs. The trainer's Adam
    runs the kernels' steps: per-entry counts for the table, the dense step for the rest (on CPU the native dense
    step is far faster than torch's Adam on the small MLP tensors)."""
    return Ops(
        name=name,
        encode=encode_fn,
        mlp=mlp_fn,
        sh=native_ops.sh_encode,
        march=march_rays,
        composite=composite,
        frame=NativeFrameOps,
        march_fixed=march_fixed,
        compact=compact,
        cell_positions=native_ops.cell_positions,
        decay_max=native_ops.decay_max_,
        sparse_adam=native_ops.adam_step_counted,
        dense_adam=dense_adam_,
    )
