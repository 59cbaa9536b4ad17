"""Python front end of the native kernels: autograd wrappers over plain tensors and scalars.

Nothing here knows the domain types (grid geometry, occupancy grid, march parameters, packed samples): the
adapters in ``compute/native.py`` unpack those and call these.

- ``hash_grid_encode(x, table, geo_args, lookup)``: differentiable lookups (``geo_args``: ``GeometryArgs``);
- ``sh_encode(dirs, degree)``: spherical harmonics of unit directions, differentiable (one fused kernel per pass);
- ``composite(...)``: differentiable compositing of packed samples given their per-ray offsets;
- ``march_rays(...)``: marching through an occupancy bitfield (count pass, prefix sum, write pass);
- ``march_rays_fixed(...)``/``compact_samples(...)``: marching into fixed-capacity buffers and live-sample compaction
  (no host read; layout in ``render/batch.py``);
- ``adam_step``/``adam_step_counted``: in-place Adam steps (dense or skipping zero gradients; per-entry step counts),
  which ``train.optim.TableAdam`` runs;
- occupancy helpers ``cell_positions``, ``decay_max_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from . import loader


def _ops() -> Any:
    loader.ensure_built()
    return torch.ops.ngp


class GeometryArgs(NamedTuple):
    """A hash grid's layout as the kernels take it: per-level scale, resolution, table rows, first row, hashed
    flag (all of length L), and the hash mask (2^log2_hashmap_size - 1)."""

    scales: list[float]
    resolutions: list[int]
    sizes: list[int]
    offsets: list[int]
    hashed: list[int]
    hash_mask: int


# When the table already has a ``.grad`` tensor (the trainer zeroes it with ``set_to_none=False``), the backward adds
# the table gradient into it in place and hands autograd no table gradient: that saves allocating, zeroing and adding
# a table-sized tensor every step. Gradient hooks on the table and ``torch.autograd.grad`` with respect to a table that
# has a ``.grad`` then see nothing; set this to False to always go through autograd.
ACCUMULATE_TABLE_GRAD_IN_PLACE = True


class _HashGridEncode(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, table: torch.Tensor, args: GeometryArgs, lookup: torch.Tensor | None
    ) -> torch.Tensor:  # type: ignore[override]
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
        gt, gx = _ops().hash_grid_bwd(grad_out.contiguous().float(), x, read, *ctx.geo_args, need_table, need_x, target)
        return (gx if need_x else None), (gt if need_table and target is None else None), None, None


def hash_grid_encode(
    x: torch.Tensor, table: torch.Tensor, args: GeometryArgs, lookup: torch.Tensor | None = None
) -> torch.Tensor:
    """x: (n, 3) in [0, 1]; table: (n_rows, F) float32. Returns (n, L*F); differentiable in x and table.

    lookup: optional (n_rows, F) float16 copy of ``table`` that the kernels read instead (half-precision tables);
    the table gradient is still float32.
    """
    return _HashGridEncode.apply(x, table, args, lookup)


class _ShEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, dirs: torch.Tensor, degree: int) -> torch.Tensor:  # type: ignore[override]
        dirs = dirs.contiguous().float()
        ctx.degree = degree
        ctx.save_for_backward(dirs)
        return _ops().sh_encode_fwd(dirs, degree)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None
        (dirs,) = ctx.saved_tensors
        return _ops().sh_encode_bwd(grad_out.contiguous().float(), dirs, ctx.degree), None


def sh_encode(dirs: torch.Tensor, degree: int = 4) -> torch.Tensor:
    """dirs: (n, 3) unit vectors. Returns (n, degree**2) float32, the real SH basis of ``encoding.sh.sh_encode``;
    differentiable in ``dirs`` (pose refinement trains through the directions)."""
    if not 1 <= degree <= 4:
        raise ValueError(f"SH degree must be in 1..4, got {degree}")
    return _ShEncode.apply(dirs, int(degree))


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
            sigmas,
            rgbs,
            t,
            dt,
            offsets,
            weights,
            trans,
            ctx.threshold,
        )
        return g_sigmas, g_rgbs, None, None, None, None


def composite(
    sigmas: torch.Tensor,
    rgbs: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    offsets: torch.Tensor,
    threshold: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composite samples packed ray after ray (``offsets`` (n_rays,) their starts): sigmas (n,), rgbs (n, 3),
    t, dt (n,). Returns rgb (n_rays, 3), opacity, depth (n_rays,), weights and transmittance (n,);
    differentiable in sigmas and rgbs."""
    return _Composite.apply(sigmas, rgbs, t, dt, offsets, float(threshold))


@torch.no_grad()
def march_rays(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    jitter: torch.Tensor | None,
    occupied: torch.Tensor,
    span: Sequence[float],
    dt_min: float,
    dt_max: float,
    cone_angle: float,
    max_steps: int,
    n_cascades: int,
    resolution: int,
    max_samples: int | None = None,
    cursor: torch.Tensor | None = None,
    max_per_ray: int | None = None,
) -> list[torch.Tensor]:
    """March rays (n_rays, 3) through an occupancy field ``occupied`` (n_cascades * resolution^3,) bool/uint8
    over ``span`` (7 floats: the box's min xyz, max xyz, then the near distance where rays start at the earliest);
    jitter (n_rays,) in [0, 1) or None; each ray takes at most ``max_steps`` samples in all. Returns [positions
    (n, 3), directions (n, 3), t, dt (n,), ray_indices (n,), offsets, counts, resume (n_rays,)]: samples packed ray
    after ray, rays past ``max_samples`` getting none; with ``cursor`` (n_rays,) int64
    (``render.raymarch.make_cursor``; 0: the start) each ray walks on from there for at most ``max_per_ray``
    samples and resume is the cursor to go on from (-1: done).
    """
    rays_o = rays_o.contiguous().float()
    rays_d = rays_d.contiguous().float()
    jitter = torch.zeros_like(rays_o[:, 0]) if jitter is None else jitter.contiguous().float()
    occupied = occupied.contiguous().view(torch.uint8).reshape(-1)
    return _ops().march_rays(
        rays_o,
        rays_d,
        jitter,
        occupied,
        [float(v) for v in span],
        float(dt_min),
        float(dt_max),
        float(cone_angle),
        int(max_steps),
        int(n_cascades),
        int(resolution),
        -1 if max_samples is None else int(max_samples),
        None if cursor is None else cursor.contiguous().long(),
        -1 if max_per_ray is None else int(max_per_ray),
    )


@torch.no_grad()
def march_rays_fixed(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    jitter: torch.Tensor | None,
    occupied: torch.Tensor,
    span: Sequence[float],
    dt_min: float,
    dt_max: float,
    cone_angle: float,
    max_steps: int,
    n_cascades: int,
    resolution: int,
    capacity: int,
) -> list[torch.Tensor]:
    """``march_rays`` into buffers of ``capacity`` samples, with no host read. Returns [positions (C, 3), directions
    (C, 3), t, dt (C,), ray_indices (C,), offsets, counts (n_rays + 1,), valid (n_rays,) float, total, requested
    (0-dim int64)]: rays are taken in order while their samples fit; the sentinel ray n_rays owns the padding."""
    rays_o = rays_o.contiguous().float()
    jitter = torch.zeros_like(rays_o[:, 0]) if jitter is None else jitter.contiguous().float()
    return _ops().march_rays_fixed(
        rays_o,
        rays_d.contiguous().float(),
        jitter,
        occupied.contiguous().view(torch.uint8).reshape(-1),
        [float(v) for v in span],
        float(dt_min),
        float(dt_max),
        float(cone_angle),
        int(max_steps),
        int(n_cascades),
        int(resolution),
        int(capacity),
    )


@torch.no_grad()
def compact_samples(
    sigmas: torch.Tensor,
    positions: torch.Tensor,
    directions: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    offsets: torch.Tensor,
    counts: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
    capacity: int,
) -> list[torch.Tensor]:
    """The samples of fixed buffers (``march_rays_fixed``'s layout) whose transmittance before them is >=
    ``threshold`` (from ``sigmas`` (n,)), packed into buffers of ``capacity``; same fields as ``march_rays_fixed``,
    ``requested`` being the live samples of all rays."""
    return _ops().compact_samples(
        sigmas.contiguous().float(),
        positions.contiguous(),
        directions.contiguous(),
        t.contiguous(),
        dt.contiguous(),
        offsets.contiguous(),
        counts.contiguous(),
        valid.contiguous().float(),
        float(threshold),
        int(capacity),
    )


def cell_positions(cascade: int, indices: torch.Tensor, jitter: torch.Tensor, resolution: int) -> torch.Tensor:
    """Jittered points of occupancy-grid cells: indices (n,) int64, jitter (n, 3) in [0, 1) -> scene points (n, 3)."""
    return _ops().occupancy_cell_positions(
        indices.contiguous().long(), jitter.contiguous().float(), cascade, resolution
    )


def decay_max_(density: torch.Tensor, fresh: torch.Tensor, decay: float) -> torch.Tensor:
    """In place ``density = max(density * decay, fresh)`` (the EMA-max update) except where ``density < 0`` (cells
    marked untrained keep their mark); returns ``density``."""
    _ops().occupancy_decay_max(density, fresh.contiguous().float(), float(decay))
    return density


def adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step_size: float,
    bc2_sqrt: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    sparse: bool,
) -> None:
    """In-place Adam step with global-step corrections (step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t));
    ``sparse`` leaves entries with an exactly-zero gradient untouched. All tensors contiguous float32, one shape."""
    _ops().adam_step(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        float(step_size),
        float(bc2_sqrt),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        bool(sparse),
    )
    _bump(param)


def adam_step_counted(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    counts: torch.Tensor,
    corrections: torch.Tensor,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """In-place sparse Adam step with per-entry step counts: counts (int32, like ``param``) bump where the gradient is
    non-zero; corrections (max_count + 1, 2) float32 hold 1 / (1 - beta1^c) and sqrt(1 - beta2^c) per count c
    (``train.optim.bias_corrections``)."""
    _ops().adam_step_counted(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        counts,
        corrections,
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
    )
    _bump(param)


def _bump(param: torch.Tensor) -> None:
    # the kernels write through a raw pointer: bump the version counter like an in-place torch op, so caches keyed
    # on it (the half-precision table copy) see the update
    torch.autograd.graph.increment_version(param)


# ---- whole-frame inference over sample slots (kernels/include/ngp/slots.h; reference: render/slots.py)
# Plain tensors and numbers: ``march_args`` is (the span: the box's 6 floats and the near distance, dt_min, dt_max,
# cone, max_steps, n_cascades, resolution) and ``occupied`` the grid's flat uint8 occupancy, both prepared once per
# frame by the caller.
MarchArgs = tuple[list[float], float, float, float, int, int, int]


def march_first(
    rays_o: torch.Tensor, rays_d: torch.Tensor, occupied: torch.Tensor, march_args: MarchArgs, k: torch.Tensor
) -> None:
    """k (n_rays,) int64 <- the walk cursor of each ray's first sample (none taken), -1 when it has none."""
    _ops().march_first(rays_o, rays_d, occupied, *march_args, k)


def march_slots(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    occupied: torch.Tensor,
    march_args: MarchArgs,
    alive: torch.Tensor,
    k: torch.Tensor,
    K: int,
) -> list[torch.Tensor]:
    """The next (up to) K samples of each alive ray (alive: (n,) int32 ray indices), in K slots per ray; advances
    the walk cursors k in place. Returns positions, directions (n*K, 3), t, dt (n*K,) and counts (n,) int32."""
    return list(_ops().march_slots(rays_o, rays_d, occupied, *march_args, alive, k, int(K)))


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
    """Composite one pass's slots into the per-ray trans, rgb, depth (in place); k = -1 for rays that turned opaque."""
    _ops().composite_slots(sigmas, rgbs, t, dt, counts, alive, int(K), float(threshold), trans, rgb, depth, k)


def compact_rays(alive: torch.Tensor, k: torch.Tensor, out: torch.Tensor, counter: torch.Tensor) -> None:
    """out[:counter] <- the rays of ``alive`` with k >= 0; counter: (1,) int32 written on the device."""
    _ops().compact_rays(alive, k, out, counter)


def rgba8(rgb: torch.Tensor, trans: torch.Tensor, background: torch.Tensor, out: torch.Tensor) -> None:
    """out (n, 4) uint8 <- rgb (n, 3) + trans * background, alpha 1 - trans."""
    _ops().rgba8(rgb, trans, background, out)
