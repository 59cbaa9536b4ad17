"""Fixed-capacity training batches (render/batch.py): marching into fixed buffers, live-sample compaction, and the
training render on live samples; the native kernels against the PyTorch reference."""

from __future__ import annotations

import math

import pytest
import torch
from native_support import DEVICES
from native_support import device as _device
from native_support import march_rays_case as _rays
from native_support import occupancy_case as _grid

from ngp_app.compute import get_ops
from ngp_app.native import loader
from ngp_app.render.batch import FixedSamples, compact, march_fixed
from ngp_app.render.composite import composite
from ngp_app.render.raymarch import MarchParams, march_rays


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    torch.testing.assert_close(a.cpu(), b.cpu(), rtol=rtol, atol=atol)


NATIVE = loader.available(torch.device("cpu"))[0]
needs_native = pytest.mark.skipif(not NATIVE, reason="native extension unavailable")
BACKENDS = ["torch", pytest.param("native", marks=needs_native)]


def _tiny_marched() -> FixedSamples:
    """4 rays with 4, 0, 3, 2 samples (dt 1) in 12 slots; per-sample optical thickness in ``_TINY_TAU``."""
    counts = torch.tensor([4, 0, 3, 2])
    total = int(counts.sum())
    ri = torch.cat([torch.repeat_interleave(torch.arange(4), counts), torch.full((12 - total,), 4)])
    t = torch.cat([torch.arange(total, dtype=torch.float32), torch.zeros(12 - total)])
    pos = torch.stack([t, t + 0.25, t + 0.5], -1)
    dt = (ri < 4).float()
    offsets = torch.tensor([0, 4, 4, 7, total])
    return FixedSamples(
        pos,
        pos * 0 + 1,
        t,
        dt,
        ri,
        offsets,
        torch.tensor([4, 0, 3, 2, 12 - total]),
        torch.ones(4),
        torch.tensor(total),
        torch.tensor(total),
    )


# transmittance before each sample: ray 0: 1, e^-1, e^-3 (>= 0.01), e^-13; ray 2: 1, e^-.5, e^-1; ray 3: 1, e^-20
_TINY_TAU = torch.tensor([1.0, 2.0, 10.0, 1.0, 0.5, 0.5, 0.5, 20.0, 1.0, 7.0, 7.0, 7.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_compaction_of_a_hand_checked_case(backend: str) -> None:
    ops = get_ops(backend)
    marched = _tiny_marched()
    # live: ray 0 its first 3 samples, ray 2 all 3, ray 3 its first one: 7 samples; 6 slots hold rays 0-2 only
    kept = ops.compact(marched, _TINY_TAU, 0.01, 6)
    assert kept.t.tolist() == [0, 1, 2, 4, 5, 6]
    assert kept.ray_indices.tolist() == [0, 0, 0, 2, 2, 2]
    assert kept.offsets.tolist() == [0, 3, 3, 6, 6] and kept.counts.tolist() == [3, 0, 3, 0, 0]
    assert kept.valid.tolist() == [1, 1, 1, 0]  # ray 3 did not fit: it leaves the loss, it is not cut
    assert int(kept.total) == 6 and int(kept.requested) == 7
    assert torch.equal(kept.positions, marched.positions[[0, 1, 2, 4, 5, 6]])
    kept = ops.compact(marched, _TINY_TAU, 0.01, 8)  # room for ray 3's live sample, one slot of padding
    assert kept.t.tolist() == [0, 1, 2, 4, 5, 6, 7, 0] and kept.ray_indices.tolist() == [0, 0, 0, 2, 2, 2, 3, 4]
    assert kept.counts.tolist() == [3, 0, 3, 1, 1] and kept.dt.tolist() == [1] * 7 + [0]
    assert kept.valid.tolist() == [1, 1, 1, 1] and int(kept.total) == 7
    kept = ops.compact(marched, _TINY_TAU, 0.0, 12)  # no threshold: every sample is live
    assert torch.equal(kept.t, marched.t) and torch.equal(kept.ray_indices, marched.ray_indices)


def _scene(dev: torch.device, aabb_scale: float = 1.0, n: int = 500, fill: str = "random"):
    g = _gen(3)
    grid = _grid(g, aabb_scale, fill).to(dev)
    lo, hi = 0.5 - aabb_scale / 2, 0.5 + aabb_scale / 2
    params = MarchParams.for_grid(grid, max_steps=384)
    o, d = (v.to(dev) for v in _rays(g, n, aabb_scale))
    jitter = torch.rand(n, generator=g).to(dev)
    return grid, (lo, lo, lo, hi, hi, hi), params, o, d, jitter


def _sigmas(s: FixedSamples) -> torch.Tensor:
    return 30.0 * (torch.sin(7.0 * s.positions).prod(-1) + 1.0)


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("aabb_scale", [1.0, 4.0])
def test_march_fixed_and_compact_native_match_the_reference(dev: str, aabb_scale: float) -> None:
    if not NATIVE:
        pytest.skip("native extension unavailable")
    device = _device(dev)
    grid, aabb, params, o, d, jitter = _scene(device, aabb_scale)
    full = march_rays(o, d, grid, torch.tensor(aabb, device=device).view(2, 3), params, jitter=jitter)
    native = get_ops("native")
    for capacity in (full.n_samples + 100, full.n_samples // 2, 0):
        ref = march_fixed(o, d, grid, aabb, params, jitter, capacity)
        nat = native.march_fixed(o, d, grid, aabb, params, jitter, capacity)
        assert ref.capacity == nat.capacity == capacity
        assert int(ref.requested) == full.n_samples
        fits = float(ref.valid.sum())
        assert (fits == o.shape[0]) == (capacity > full.n_samples)
        if dev == "cpu":  # the same samples (test_native's march test)
            for k in ("ray_indices", "offsets", "counts", "valid", "total", "requested"):
                assert torch.equal(getattr(nat, k), getattr(ref, k)), k
            for k in ("t", "dt", "positions", "directions"):
                _close(getattr(nat, k), getattr(ref, k))
        for thr, keep in ((1e-4, max(capacity // 3, 1)), (0.5, capacity)):
            sig = _sigmas(ref)
            kr, kn = compact(ref, sig, thr, keep), native.compact(ref, sig, thr, keep)
            for k in ("ray_indices", "offsets", "counts", "valid", "total", "requested"):
                assert torch.equal(getattr(kn, k), getattr(kr, k)), k
            for k in ("t", "dt", "positions", "directions"):
                assert torch.equal(getattr(kn, k), getattr(kr, k)), k


@pytest.mark.parametrize("backend", BACKENDS)
def test_compaction_keeps_exactly_the_samples_compositing_weighs(backend: str) -> None:
    ops = get_ops(backend)
    grid, aabb, params, o, d, jitter = _scene(torch.device("cpu"))
    marched = ops.march_fixed(o, d, grid, aabb, params, jitter, 1 << 20)
    sig = _sigmas(marched)
    n = o.shape[0]
    ref = composite(
        sig, torch.zeros(marched.capacity, 3), marched.t, marched.dt, marched.ray_indices, marched.offsets, n + 1, 1e-4
    )
    live = (ref["transmittance"] >= 1e-4) & (marched.ray_indices < n)
    assert 0 < int(live.sum()) < int(marched.total)  # the case has both live and dead samples
    kept = ops.compact(marched, sig, 1e-4, 1 << 20)
    k = int(kept.total)
    assert k == int(live.sum()) and float(kept.valid.sum()) == n
    assert torch.equal(kept.t[:k], marched.t[live]) and torch.equal(kept.ray_indices[:k], marched.ray_indices[live])
    assert bool((kept.ray_indices[k:] == n).all()) and bool((kept.dt[k:] == 0).all())


def _field():
    from ngp_app.config import load_config
    from ngp_app.model.field import NGPField

    torch.manual_seed(0)
    field = NGPField(
        load_config("small", {"encoding": {"log2_hashmap_size": 12}}),
        torch.tensor([[0.0] * 3, [1.0] * 3]),
        get_ops("torch"),
    )
    with torch.no_grad():  # densities high enough that most rays terminate early
        field.encoding.table.uniform_(-1.0, 1.0)
        out = field.density_net[-1].weight
        out[0] = out[0].abs() * 6.0
    return field


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_on_live_samples_gives_the_loss_and_gradients_of_all_samples(backend: str) -> None:
    from ngp_app.render.renderer import render_rays_train

    ops = get_ops(backend)
    field = _field()
    field.set_ops(ops)
    grid, aabb, params, o, d, jitter = _scene(torch.device("cpu"), n=300)
    bg = torch.rand(300, 3, generator=_gen(1))
    target = torch.rand(300, 3, generator=_gen(2))
    out = render_rays_train(field, grid, aabb, o, d, params, bg, 1 << 20, 1 << 20, jitter, 1e-4)
    assert float(out["valid"].sum()) == 300 and int(out["kept"].total) < int(out["marched"].total) // 2
    ((out["rgb"] - target) ** 2).sum().backward()
    grads = [p.grad.clone() for p in field.parameters()]
    field.zero_grad()
    full = march_rays(o, d, grid, torch.tensor(aabb).view(2, 3), params, jitter=jitter)
    sigma, rgbs = field(full.positions, full.directions)
    ref = composite(sigma, rgbs, full.t, full.dt, full.ray_indices, full.offsets, 300, 1e-4)
    rgb = ref["rgb"] + (1 - ref["opacity"])[:, None] * bg
    _close(out["rgb"], rgb.detach(), rtol=1e-5, atol=1e-6)
    ((rgb - target) ** 2).sum().backward()
    for got, p in zip(grads, field.parameters()):
        _close(got, p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rays_that_do_not_fit_are_left_out_not_cut(backend: str) -> None:
    from ngp_app.render.renderer import render_rays_train

    field = _field()
    field.set_ops(get_ops(backend))
    grid, aabb, params, o, d, jitter = _scene(torch.device("cpu"), n=200)
    out = render_rays_train(field, grid, aabb, o, d, params, torch.ones(3), 1 << 20, 64, jitter, 1e-4)
    kept, valid = out["kept"], out["valid"]
    assert 0 < float(valid.sum()) < 200 and int(kept.total) <= 64
    dropped = valid == 0
    assert bool((kept.counts[:200][dropped] == 0).all())  # dropped rays have no samples at all
    assert torch.allclose(out["rgb"][dropped], torch.ones(1, 3))  # nothing composited: the background
    assert math.isfinite(float(out["rgb"].detach().sum()))
