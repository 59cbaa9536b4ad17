"""Python front end of the native kernels: autograd wrappers with the torch reference's signatures.

- ``hash_grid_encode(x, table, geometry)``: like ``encoding.hashgrid.hash_grid_encode``;
- ``march_rays(...)``/``composite(...)``: like ``render.raymarch.march_rays``/``render.composite.composite``;
- ``SparseAdam``/``HybridAdam``: Adam that skips table entries whose gradient is exactly zero;
- occupancy helpers ``cell_positions``, ``decay_max_``, ``pack_bits``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from ..encoding.hashgrid import GridGeometry
from ..render.occupancy import OccupancyGrid
from ..render.raymarch import MarchParams, PackedSamples
from . import loader


def _ops() -> Any:
    loader.ensure_built()
    return torch.ops.ngp


def _geometry_args(geometry: GridGeometry) -> tuple[Any, ...]:
    return (
        list(geometry.scales),
        list(geometry.resolutions),
        geometry.level_sizes(),
        list(geometry.offsets[:-1]),
        [int(h) for h in geometry.hashed],
        (1 << geometry.log2_hashmap_size) - 1,
    )


# When the table already has a ``.grad`` tensor (the trainer zeroes it with ``set_to_none=False``), the backward adds
# the table gradient into it in place and hands autograd no table gradient: that saves allocating, zeroing and adding
# a table-sized tensor every step. Gradient hooks on the table and ``torch.autograd.grad`` with respect to a table that
# has a ``.grad`` then see nothing; set this to False to always go through autograd.
ACCUMULATE_TABLE_GRAD_IN_PLACE = True


class _HashGridEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, table: torch.Tensor, geometry: GridGeometry, lookup: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        args = _geometry_args(geometry)
        ctx.geo_args = args
        x = x.contiguous().float()
        # ``lookup``: the table the kernels read (a float16 copy of ``table`` for half-precision tables).
        read = (table if lookup is None else lookup).contiguous()
        ctx.save_for_backward(x, read)
        ctx.table = table
        return _ops().hash_grid_fwd(x, read, *args)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # type: ignore[override]
        x, read = ctx.saved_tensors
        need_x, need_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        param = ctx.table
        target = param.grad if need_table and ACCUMULATE_TABLE_GRAD_IN_PLACE and param.is_leaf else None
        if target is not None and (target.dtype != torch.float32 or not target.is_contiguous() or target.is_sparse):
            target = None
        gt, gx = _ops().hash_grid_bwd(
            grad_out.contiguous().float(), x, read, *ctx.geo_args, need_table, need_x, target
        )
        return (gx if need_x else None), (gt if need_table and target is None else None), None, None


def hash_grid_encode(
    x: torch.Tensor, table: torch.Tensor, geometry: GridGeometry, lookup: torch.Tensor | None = None
) -> torch.Tensor:
    """x: (n, 3) in [0, 1]; table: (n_rows, F) float32. Returns (n, L*F); differentiable in x and table.

    lookup: optional (n_rows, F) float16 copy of ``table`` that the kernels read instead (half-precision tables);
    the table gradient is still float32.
    """
    return _HashGridEncode.apply(x, table, geometry, lookup)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, sigmas, rgbs, t, dt, offsets, threshold):  # type: ignore[override]
        sigmas, rgbs, t, dt = (v.contiguous().float() for v in (sigmas, rgbs, t, dt))
        offsets = offsets.contiguous().long()
        rgb, opacity, depth, weights, trans = _ops().composite_fwd(sigmas, rgbs, t, dt, offsets, threshold)
        ctx.threshold = threshold
        ctx.save_for_backward(sigmas, rgbs, t, dt, offsets, weights, trans)
        return rgb, opacity, depth, weights, trans

    @staticmethod
    def backward(ctx: Any, g_rgb, g_opacity, g_depth, g_weights, g_trans):  # type: ignore[override]
        sigmas, rgbs, t, dt, offsets, weights, trans = ctx.saved_tensors

        def dense(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(like) if g is None else g.contiguous().float()

        g_sigmas, g_rgbs = _ops().composite_bwd(
            dense(g_rgb, torch.empty(offsets.numel(), 3, device=sigmas.device)),
            dense(g_opacity, offsets.float()),
            dense(g_depth, offsets.float()),
            None if g_weights is None else g_weights.contiguous().float(),
            None if g_trans is None else g_trans.contiguous().float(),
            sigmas, rgbs, t, dt, offsets, weights, trans, ctx.threshold,
        )
        return g_sigmas, g_rgbs, None, None, None, None


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
    rgb, opacity, depth, weights, trans = _Composite.apply(
        sigmas, rgbs, t, dt, offsets, float(transmittance_threshold)
    )
    return {"rgb": rgb, "opacity": opacity, "depth": depth, "weights": weights, "transmittance": trans}


@torch.no_grad()
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
    out = _march(rays_o, rays_d, grid, aabb, params, jitter, max_samples, None, None)
    return PackedSamples(*out[:7])


def _march(rays_o: torch.Tensor, rays_d: torch.Tensor, grid: OccupancyGrid, aabb: torch.Tensor, params: MarchParams,
           jitter: torch.Tensor | None, max_samples: int | None, k_start: torch.Tensor | None,
           max_per_ray: int | None) -> list[torch.Tensor]:
    rays_o = rays_o.contiguous().float()
    rays_d = rays_d.contiguous().float()
    jitter = torch.zeros_like(rays_o[:, 0]) if jitter is None else jitter.contiguous().float()
    occupied = grid.occupied.contiguous().view(torch.uint8).reshape(-1)
    return _ops().march_rays(
        rays_o, rays_d, jitter, occupied, [float(v) for v in aabb.reshape(-1).tolist()],
        params.dt_min, params.dt_max, params.cone_angle, int(params.max_steps), grid.n_cascades, grid.resolution,
        -1 if max_samples is None else int(max_samples),
        None if k_start is None else k_start.contiguous().long(), -1 if max_per_ray is None else int(max_per_ray),
    )


@torch.no_grad()
def march_rays_from(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    params: MarchParams,
    k_start: torch.Tensor,
    max_per_ray: int,
    jitter: torch.Tensor | None = None,
) -> tuple[PackedSamples, torch.Tensor]:
    """Incremental marching for inference: each ray walks on from lattice index ``k_start`` (n_rays,) int64 and
    stops after ``max_per_ray`` samples. Returns the packed samples and where each ray resumes (n_rays,) int64,
    -1 once its walk is over; walking on from there gives exactly the samples of one uninterrupted march."""
    out = _march(rays_o, rays_d, grid, aabb, params, jitter, None, k_start, max_per_ray)
    return PackedSamples(*out[:7]), out[7]


def cell_positions(cascade: int, indices: torch.Tensor, jitter: torch.Tensor, resolution: int) -> torch.Tensor:
    """Native ``OccupancyGrid.cell_centers`` with jitter: indices (n,) -> (n, 3)."""
    return _ops().occupancy_cell_positions(indices.contiguous().long(), jitter.contiguous().float(), cascade, resolution)


def decay_max_(density: torch.Tensor, fresh: torch.Tensor, decay: float) -> torch.Tensor:
    """In place ``density = max(density * decay, fresh)`` (the EMA-max update); returns ``density``."""
    _ops().occupancy_decay_max(density, fresh.contiguous().float(), float(decay))
    return density


def pack_bits(occupied: torch.Tensor) -> torch.Tensor:
    """Native ``OccupancyGrid.packed_bitfield``: (n_cascades, n) bool -> (n_cascades, n // 8) uint8."""
    flat = occupied.contiguous().view(torch.uint8).reshape(-1)
    return _ops().pack_bits(flat).view(occupied.shape[0], -1)


class SparseAdam(torch.optim.Optimizer):
    """Adam for hash tables that leaves entries with an exactly-zero gradient untouched (Müller et al. 2022).

    Bias corrections use the global step count, so with all gradients non-zero it is ``torch.optim.Adam`` (with L2
    ``weight_decay``). Runs the native kernel: one pass over the gradient, touching parameters and moments only where
    it is non-zero. A group with ``"sparse": False`` takes the plain (dense) Adam step with the same kernel.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        sparse: bool = True,
        **_ignored: Any,  # torch.optim.Adam options without meaning here (fused, foreach, ...)
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "sparse": sparse}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.dtype != torch.float32 or not p.is_contiguous():
                    raise TypeError("SparseAdam needs contiguous float32 parameters")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                _ops().adam_step(
                    p, p.grad.contiguous(), state["exp_avg"], state["exp_avg_sq"],
                    float(group["lr"]) / (1.0 - beta1**t), math.sqrt(1.0 - beta2**t),
                    float(beta1), float(beta2), float(group["eps"]), float(group["weight_decay"]), bool(group["sparse"]),
                )
                # the kernel writes through a raw pointer: bump the version counter like an in-place torch op, so
                # caches keyed on it (the half-precision table copy) see the update
                torch.autograd.graph.increment_version(p)
        return loss


class HybridAdam(SparseAdam):
    """``torch.optim.Adam`` drop-in for the trainer: the groups listed in ``sparse_groups`` (default: group 0, the
    hash table) take the sparse step, the others the dense one; all run the native kernel (on CPU it is several
    times faster than torch's Adam on the small MLP tensors)."""

    def __init__(self, params: Iterable[Any], *args: Any, sparse_groups: tuple[int, ...] = (0,), **kwargs: Any) -> None:
        super().__init__(params, *args, **kwargs)
        for i, group in enumerate(self.param_groups):
            group["sparse"] = i in sparse_groups
