"""Hash-grid kernel paths beyond the basic parity tests: zero output gradients (skipped by the backward kernels),
buffers not aligned for vector loads/atomics (scalar fallback on CUDA), feature counts without a vector path."""

from __future__ import annotations

import pytest
import torch
from native_support import DEVICES, require_native
from native_support import device as _device

from ngp_app.encoding.hashgrid import GridGeometry, hash_grid_encode

require_native()

from ngp_app.compute import native as native_adapters  # noqa: E402


def _geometry(n_features: int) -> GridGeometry:  # dense and hashed levels
    return GridGeometry.create(
        n_levels=6, n_features=n_features, log2_hashmap_size=12, base_resolution=4, per_level_scale=2.0
    )


def _misaligned(t: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of ``t`` whose data starts one element past an aligned address (no vector accesses)."""
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)[1:]
    flat.copy_(t.reshape(-1))
    return flat.view(t.shape)


def _case(dev: torch.device, n_features: int, seed: int, n: int = 2000):
    """Geometry, points (n, 3), table and output gradient on ``dev``."""
    g = torch.Generator().manual_seed(seed)
    geo = _geometry(n_features)
    x = torch.rand(n, 3, generator=g)
    table = torch.rand(geo.n_rows, n_features, generator=g) * 2 - 1
    gout = torch.randn(n, geo.n_output_dims, generator=g)
    return geo, x.to(dev), table.to(dev), gout.to(dev)


def _grads(
    x: torch.Tensor,
    table: torch.Tensor,
    geo: GridGeometry,
    gout: torch.Tensor,
    native: bool,
    lookup: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ts = x.clone().requires_grad_(), table.clone().requires_grad_()
    out = native_adapters.hash_grid_encode(xs, ts, geo, lookup) if native else hash_grid_encode(xs, ts, geo)
    out.backward(gout)
    assert xs.grad is not None and ts.grad is not None
    return out.detach(), ts.grad, xs.grad


@pytest.mark.parametrize("dev", DEVICES)
def test_zero_output_gradients_add_nothing(dev: str) -> None:
    # Points whose output gradient is zero (all levels, or some levels) contribute nothing: the table rows only they
    # touch keep an exactly-zero gradient (so the sparse Adam leaves them alone) and their x gradient is zero.
    geo, x, table, gout = _case(_device(dev), 4, seed=0, n=3000)
    gout[:1000] = 0.0  # dead samples
    gout.view(3000, geo.n_levels, 4)[1000:2000, ::2] = 0.0  # every other level of these
    _, gt_ref, gx_ref = _grads(x, table, geo, gout, native=False)
    _, gt_nat, gx_nat = _grads(x, table, geo, gout, native=True)
    torch.testing.assert_close(gt_nat.cpu(), gt_ref.cpu(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx_nat.cpu(), gx_ref.cpu(), rtol=1e-3, atol=1e-3 * float(gx_ref.abs().max()))
    assert not gx_nat[:1000].any()
    # rows touched only by the dead points: zero gradient, exactly
    _, gt_live, _ = _grads(x[1000:], table, geo, torch.ones_like(gout[1000:]), native=False)
    _, gt_all, _ = _grads(x, table, geo, torch.ones_like(gout), native=False)
    only_dead = (gt_live == 0) & (gt_all != 0)
    assert bool(only_dead.any())
    assert bool((gt_nat[only_dead] == 0).all())


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("n_features", [2, 4])
@pytest.mark.parametrize("half", [False, True])
def test_misaligned_buffers_take_the_scalar_path(dev: str, n_features: int, half: bool) -> None:
    geo, x, table, gout = _case(_device(dev), n_features, seed=n_features)
    lookup = table.half() if half else None
    ref = _grads(x, table, geo, gout, native=True, lookup=lookup)
    odd = _grads(
        x,
        _misaligned(table),
        geo,
        _misaligned(gout),
        native=True,
        lookup=_misaligned(lookup) if lookup is not None else None,
    )
    for a, b in zip(odd, ref):
        torch.testing.assert_close(a.cpu(), b.cpu(), rtol=1e-5, atol=1e-6)
    # the in-place accumulation target misaligned too
    xs, ts = x.clone().requires_grad_(), _misaligned(table).requires_grad_()
    ts.grad = _misaligned(torch.zeros_like(table))
    native_adapters.hash_grid_encode(xs, ts, geo, lookup).backward(gout)
    torch.testing.assert_close(ts.grad.cpu(), ref[1].cpu(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("n_features", [1, 8])
def test_feature_counts_without_a_vector_path(dev: str, n_features: int) -> None:
    geo, x, table, gout = _case(_device(dev), n_features, seed=n_features)
    out_ref, gt_ref, gx_ref = _grads(x, table, geo, gout, native=False)
    out_nat, gt_nat, gx_nat = _grads(x, table, geo, gout, native=True)
    torch.testing.assert_close(out_nat.cpu(), out_ref.cpu(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gt_nat.cpu(), gt_ref.cpu(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx_nat.cpu(), gx_ref.cpu(), rtol=1e-3, atol=1e-3 * float(gx_ref.abs().max()))
