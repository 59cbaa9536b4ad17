"""Fake (meta) kernels of the ``ngp::`` ops: the shapes, dtypes and devices of what each op returns, without running
it, so FakeTensorMode, ``torch.compile`` and ``torch.library.opcheck``'s fake-tensor and AOT checks can trace them.

Each mirrors the output allocation of its op in ``kernels/bindings.cpp``; an op that mutates its arguments and returns
``()`` returns None; the samples of ``march_rays`` are data-dependent (a dynamic size). Registered once per process by
:func:`register`, which the loader calls right after the extension loads.
"""

from __future__ import annotations

import torch

_registered = False


def register() -> None:
    """Register the fake kernels once per process; nothing while no ``ngp::`` op is loaded (a stand-in library, as
    the loader's tests build, defines none)."""
    global _registered
    if _registered or not hasattr(torch.ops.ngp, "hash_grid_fwd"):
        return
    _registered = True

    @torch.library.register_fake("ngp::hash_grid_fwd")
    def _hash_grid_fwd(x, table, scales, res, sizes, offsets, hashed, hash_mask):
        return x.new_empty((x.shape[0], len(scales) * table.shape[1]))

    @torch.library.register_fake("ngp::hash_grid_bwd")
    def _hash_grid_bwd(grad_out, x, table, scales, res, sizes, offsets, hashed, hash_mask, need_table, need_x,
                       accumulate=None):  # fmt: skip
        # with ``accumulate`` the table gradient goes into it (mutated) and the first output is undefined (None)
        gt = table.new_empty(table.shape, dtype=torch.float32) if need_table and accumulate is None else None
        return gt, (x.new_empty(x.shape) if need_x else None)

    @torch.library.register_fake("ngp::adam_step")
    def _adam_step(param, grad, m, v, step_size, bc2_sqrt, beta1, beta2, eps, weight_decay, skip_zero_grad):
        return None

    @torch.library.register_fake("ngp::adam_step_counted")
    def _adam_step_counted(param, grad, m, v, counts, corrections, lr, beta1, beta2, eps, weight_decay):
        return None

    @torch.library.register_fake("ngp::composite_fwd")
    def _composite_fwd(sigmas, rgbs, t, dt, offsets, threshold):
        n, n_rays = sigmas.numel(), offsets.numel()
        return (
            sigmas.new_empty((n_rays, 3)),
            sigmas.new_empty((n_rays,)),
            sigmas.new_empty((n_rays,)),
            sigmas.new_empty((n,)),
            sigmas.new_empty((n,)),
        )

    @torch.library.register_fake("ngp::composite_bwd")
    def _composite_bwd(g_rgb, g_opacity, g_depth, g_weights, g_trans, sigmas, rgbs, t, dt, offsets, weights, trans,
                       threshold):  # fmt: skip
        return torch.empty_like(sigmas), torch.empty_like(rgbs)

    @torch.library.register_fake("ngp::march_rays")
    def _march_rays(rays_o, rays_d, jitter, occupied, aabb, dt_min, dt_max, cone, max_steps, n_cascades, resolution,
                    max_samples, cursor=None, max_per_ray=-1):  # fmt: skip
        n_rays = rays_o.shape[0]
        total = torch.library.get_ctx().new_dynamic_size()  # the samples the walk finds: data-dependent
        samples = _samples(rays_o, total)
        per_ray = [rays_o.new_empty((n_rays,), dtype=torch.int64) for _ in range(3)]  # offsets, counts, resume
        return samples + per_ray

    @torch.library.register_fake("ngp::march_rays_fixed")
    def _march_rays_fixed(rays_o, rays_d, jitter, occupied, aabb, dt_min, dt_max, cone, max_steps, n_cascades,
                          resolution, capacity):  # fmt: skip
        return _fixed_buffers(rays_o, capacity, rays_o.shape[0])

    @torch.library.register_fake("ngp::compact_samples")
    def _compact_samples(sigmas, positions, dirs, t, dt, offsets, counts, valid, threshold, capacity):
        return _fixed_buffers(sigmas, capacity, offsets.numel() - 1)

    @torch.library.register_fake("ngp::occupancy_cell_positions")
    def _occupancy_cell_positions(indices, jitter, cascade, resolution):
        return jitter.new_empty((indices.numel(), 3))

    @torch.library.register_fake("ngp::occupancy_decay_max")
    def _occupancy_decay_max(density, fresh, decay):
        return None

    @torch.library.register_fake("ngp::sh_encode_fwd")
    def _sh_encode_fwd(dirs, degree):
        return dirs.new_empty((dirs.shape[0], degree * degree))

    @torch.library.register_fake("ngp::sh_encode_bwd")
    def _sh_encode_bwd(grad_out, dirs, degree):
        return torch.empty_like(dirs)

    @torch.library.register_fake("ngp::march_first")
    def _march_first(rays_o, rays_d, occupied, aabb, dt_min, dt_max, cone, max_steps, n_cascades, resolution, k):
        return None

    @torch.library.register_fake("ngp::march_slots")
    def _march_slots(rays_o, rays_d, occupied, aabb, dt_min, dt_max, cone, max_steps, n_cascades, resolution, alive,
                     k, K):  # fmt: skip
        n_alive = alive.numel()
        counts = rays_o.new_empty((n_alive,), dtype=torch.int32)
        return (*_samples(rays_o, n_alive * K)[:4], counts)

    @torch.library.register_fake("ngp::composite_slots")
    def _composite_slots(sigmas, rgbs, t, dt, counts, alive, K, threshold, trans, rgb, depth, k):
        return None

    @torch.library.register_fake("ngp::compact_rays")
    def _compact_rays(alive, k, out, counter):
        return None

    @torch.library.register_fake("ngp::rgba8")
    def _rgba8(rgb, trans, background, out):
        return None


def _samples(like: torch.Tensor, n: int | torch.SymInt) -> list[torch.Tensor]:
    """Packed sample buffers of ``n`` samples: positions, directions (n, 3), t, dt (n,) float32, ray indices (n,)."""
    f = [like.new_empty((n, 3)), like.new_empty((n, 3)), like.new_empty((n,)), like.new_empty((n,))]
    return f + [like.new_empty((n,), dtype=torch.int64)]


def _fixed_buffers(like: torch.Tensor, capacity: int, n_rays: int | torch.SymInt) -> list[torch.Tensor]:
    """``march_rays_fixed``'s layout: the buffers of ``capacity`` samples, offsets and counts (n_rays + 1,) int64,
    valid (n_rays,) float32, total and requested (0-dim int64)."""
    per_ray = [like.new_empty((n_rays + 1,), dtype=torch.int64) for _ in range(2)]
    totals = [like.new_empty((), dtype=torch.int64) for _ in range(2)]
    return _samples(like, capacity) + per_ray + [like.new_empty((n_rays,))] + totals
