"""Whole-frame inference over sample slots: each native op against its torch reference (render/slots.py), the
passes against one full march with packed compositing, images against the reference renderer, host reads per
frame, and the uint8 output."""

from __future__ import annotations

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.native import loader
from ngp_app.render import slots as reference
from ngp_app.render.composite import composite
from ngp_app.render.frame import FrameStats, PassSchedule, march_frame
from ngp_app.render.raymarch import MarchParams, march_rays
from ngp_app.render.renderer import render_image, render_rgba
from ngp_app.render.slots import TorchFrameOps
from tests.support.rendering import render_rays_infer, render_rays_reference
from tests.test_native import _grid, _rays

native_ok, why = loader.available(torch.device("cpu"))
needs_native = pytest.mark.skipif(not native_ok, reason=f"native extension unavailable: {why}")
DEVICES = [pytest.param("cpu")] + [pytest.param("cuda", marks=pytest.mark.cuda)]


def _device(name: str) -> torch.device:
    if name == "cuda" and not (torch.cuda.is_available() and loader.available(torch.device("cuda"))[0]):
        pytest.skip("needs a CUDA device and a CUDA build of the native extension")
    if not native_ok:
        pytest.skip(f"native extension unavailable: {why}")
    return torch.device(name)


def _scene(seed: int, scale: float, device: torch.device, n: int = 300, max_steps: int = 512):
    g = torch.Generator().manual_seed(seed)
    grid = _grid(g, scale, "random").to(device)
    lo, hi = 0.5 - scale / 2, 0.5 + scale / 2
    aabb = torch.tensor([[lo] * 3, [hi] * 3], device=device)
    o, d = _rays(g, n, scale)
    return grid, aabb, MarchParams.for_grid(grid, max_steps=max_steps), o.to(device), d.to(device)


def _field(x: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth and partly opaque: some rays terminate early, some pass through."""
    sigma = 40.0 * (torch.sin(9.0 * x).prod(-1) + 1.0)
    return sigma, torch.sigmoid(3.0 * x + dirs)


# --------------------------------------------------------------------------------------------------- marching
def _passes(ops, o, d, schedule):
    """Run first + slot marching to the end without compositing; per ray the list of its sample t's, and the pass
    outputs."""
    n = o.shape[0]
    k = torch.empty(n, dtype=torch.int64, device=o.device)
    ops.march_first(o, d, k)
    per_ray: list[list[float]] = [[] for _ in range(n)]
    outputs = [k.clone()]
    step = 0
    while True:
        alive = torch.nonzero(k >= 0).flatten().to(torch.int32)
        if alive.numel() == 0:
            return per_ray, outputs
        K = schedule[step % len(schedule)]
        pos, dirs, t, dt, counts = ops.march_slots(o, d, alive, k, K)
        outputs += [pos, dirs, t, dt, counts, k.clone()]
        for j, r in enumerate(alive.tolist()):
            per_ray[r] += t[j * K : j * K + int(counts[j])].tolist()
        assert bool((counts <= K).all())
        # a ray stops short of K samples only when its walk is over
        assert bool((k[alive.long()][counts < K] == -1).all())
        step += 1


@pytest.mark.parametrize(("scale", "max_steps"), [(1.0, 512), (4.0, 512), (32.0, 24)])
def test_slot_passes_walk_the_samples_of_one_full_march(scale: float, max_steps: int) -> None:
    """Passes of any size give the samples of one full march, its max_steps cap holding over all passes."""
    grid, aabb, params, o, d = _scene(1, scale, torch.device("cpu"), max_steps=max_steps)
    full = march_rays(o, d, grid, aabb, params)
    impls = [TorchFrameOps(grid, aabb, params)] + ([get_ops("native").frame(grid, aabb, params)] if native_ok else [])
    for ops in impls:
        per_ray, _ = _passes(ops, o, d, [1, 3, 7, 2])
        for r in range(o.shape[0]):
            a, c = int(full.offsets[r]), int(full.counts[r])
            torch.testing.assert_close(torch.tensor(per_ray[r]), full.t[a : a + c], rtol=1e-6, atol=0)
    assert int(full.counts.max()) > 10 and int((full.counts == 0).sum()) > 10  # long walks and misses
    assert max_steps == 512 or int((full.counts == max_steps).sum()) > 20  # rays that take all their samples


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize(("scale", "max_steps"), [(1.0, 512), (4.0, 512), (32.0, 24)])
def test_native_slot_march_matches_reference(dev: str, scale: float, max_steps: int) -> None:
    device = _device(dev)
    grid, aabb, params, o, d = _scene(2, scale, torch.device("cpu"), max_steps=max_steps)
    ref_rays, ref = _passes(TorchFrameOps(grid, aabb, params), o, d, [2, 5, 1])
    nat_rays, nat = _passes(
        get_ops("native").frame(grid.to(device), aabb.to(device), params), o.to(device), d.to(device), [2, 5, 1]
    )
    same = [
        len(a) == len(b) and torch.allclose(torch.tensor(a), torch.tensor(b), rtol=1e-6, atol=0)
        for a, b in zip(ref_rays, nat_rays)
    ]
    if device.type == "cuda":  # expf/logf ulps may move a lattice point across a cell border on a few rays
        assert sum(same) >= 0.99 * len(same)
        return
    assert all(same) and len(ref) == len(nat)
    for a, b in zip(ref, nat):  # k, then per pass: positions, directions, t, dt, counts, k
        if a.dtype.is_floating_point:
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(b.long(), a.long())


# --------------------------------------------------------------------------------------------------- compositing
@pytest.mark.parametrize("dev", DEVICES)
def test_native_composite_slots_matches_reference(dev: str) -> None:
    device = _device(dev)
    g = torch.Generator().manual_seed(3)
    n_rays, n, K = 300, 200, 6
    alive = torch.randperm(n_rays, generator=g)[:n].to(torch.int32)
    counts = torch.randint(0, K + 1, (n,), generator=g).to(torch.int32)
    sigmas = torch.rand(n * K, generator=g) * torch.rand(n * K, generator=g).pow(4) * 400.0  # some opaque
    rgbs = torch.rand(n * K, 3, generator=g)
    t = torch.rand(n * K, generator=g)
    dt = torch.rand(n * K, generator=g) * 0.05
    state = [
        torch.rand(n_rays, generator=g) * 0.9 + 0.1,
        torch.rand(n_rays, 3, generator=g),
        torch.rand(n_rays, generator=g),
        torch.randint(0, 50, (n_rays,), generator=g),
    ]
    ref = [s.clone() for s in state]
    reference.composite_slots(sigmas, rgbs, t, dt, counts, alive, K, 1e-2, *ref)
    nat = [s.clone().to(device) for s in state]
    from ngp_app.native import ops

    ops.composite_slots(*(v.to(device) for v in (sigmas, rgbs, t, dt, counts, alive)), K, 1e-2, *nat)
    for a, b in zip(ref, nat):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-6)
    finished = ref[3][alive.long()] == -1
    assert 0 < int(finished.sum()) < n  # some rays turned opaque, some did not


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_slot_compositing_equals_packed_compositing(scale: float) -> None:
    """Passes of any size give the colour, opacity and depth of compositing each ray's full sample list."""
    grid, aabb, params, o, d = _scene(4, scale, torch.device("cpu"))
    full = march_rays(o, d, grid, aabb, params)
    sig, col = _field(full.positions, full.directions)
    packed = composite(sig, col, full.t, full.dt, full.ray_indices, full.offsets, o.shape[0], 1e-4)
    impls = [TorchFrameOps(grid, aabb, params)] + ([get_ops("native").frame(grid, aabb, params)] if native_ok else [])
    for ops in impls:
        for schedule in (PassSchedule(k_max=1), PassSchedule(k_min=3, k_max=3), PassSchedule()):
            state = march_frame(_field, ops, o, d, 1e-4, schedule)
            torch.testing.assert_close(state.rgb, packed["rgb"], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(1.0 - state.trans, packed["opacity"], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(state.depth, packed["depth"], rtol=1e-4, atol=1e-5)
    assert float(packed["opacity"].max()) > 0.999 and float(packed["opacity"].min()) < 1e-3


# --------------------------------------------------------------------------------------------------- compaction
@pytest.mark.parametrize("dev", DEVICES)
def test_compaction_keeps_exactly_the_alive_rays(dev: str) -> None:
    device = _device(dev)
    from ngp_app.native import ops

    g = torch.Generator().manual_seed(5)
    n_rays = 5000
    alive = torch.randperm(n_rays, generator=g)[:4000].to(torch.int32)
    k = torch.randint(-1, 3, (n_rays,), generator=g)  # about a quarter finished
    expected = alive[k[alive.long()] >= 0]
    out = torch.full((n_rays,), -7, dtype=torch.int32)
    counter = torch.zeros(1, dtype=torch.int32)
    reference.compact_rays(alive, k, out, counter)
    assert int(counter) == expected.numel() and torch.equal(out[: expected.numel()], expected)
    out_n = torch.full((n_rays,), -7, dtype=torch.int32, device=device)
    counter_n = torch.full((1,), 99, dtype=torch.int32, device=device)
    ops.compact_rays(alive.to(device), k.to(device), out_n, counter_n)
    m = int(counter_n)
    assert m == expected.numel()
    got = out_n[:m].cpu()
    if device.type == "cpu":
        assert torch.equal(got, expected)  # in order
    else:  # warps land in any order
        assert torch.equal(torch.sort(got).values, torch.sort(expected).values)
    assert bool((out_n[m:].cpu() == -7).all())
    ops.compact_rays(alive[:0].to(device), k.to(device), out_n, counter_n)
    assert int(counter_n) == 0


# --------------------------------------------------------------------------------------------------- output
@pytest.mark.parametrize("dev", DEVICES)
def test_native_rgba8_matches_reference(dev: str) -> None:
    device = _device(dev)
    from ngp_app.native import ops

    g = torch.Generator().manual_seed(6)
    rgb = torch.rand(1000, 3, generator=g) * 1.4 - 0.2  # out of range too
    trans = torch.rand(1000, generator=g)
    trans[:10] = torch.tensor([0.0, 1.0, 1e-5, 0.5, 0.998, 0.002, 1.0, 0.0, 0.25, 0.75])
    bg = torch.tensor([0.2, 1.0, 0.0])
    ref = torch.empty(1000, 4, dtype=torch.uint8)
    reference.rgba8(rgb, trans, bg, ref)
    nat = torch.empty(1000, 4, dtype=torch.uint8, device=device)
    ops.rgba8(rgb.to(device), trans.to(device), bg.to(device), nat)
    assert torch.equal(nat.cpu(), ref)
    expect = ((rgb + trans[:, None] * bg).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    assert torch.equal(ref[:, :3], expect)


# --------------------------------------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def trained_small():
    """The small config trained a few dozen steps on the bundled scene: structured density, a carved grid."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    torch.set_num_threads(2)
    scene = load_scene(DEMO, "train", downscale=8)
    trainer = Trainer(scene, load_config("small", {"training": {"target_batch_size_cpu": 4096}}), seed=2)
    trainer.train(steps=40)
    trainer.model.eval()
    return trainer, scene


def _camera(scene, width: int = 48, height: int = 40):
    return scene.camera(0).scaled(width, height)


@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=needs_native)])
def test_images_match_the_reference_renderer(trained_small, backend: str) -> None:
    trainer, scene = trained_small
    from ngp_app.data.cameras import camera_rays

    cam = _camera(scene)
    bg = torch.tensor([0.3, 0.6, 0.9])
    o, d = camera_rays(cam)
    ref = render_rays_reference(trainer.model, trainer.grid, trainer.aabb, o, d, trainer.march, bg)
    stats = FrameStats()
    out = render_image(
        trainer.model,
        trainer.grid,
        trainer.aabb,
        cam,
        trainer.march,
        tuple(bg.tolist()),
        ops=get_ops(backend),
        stats=stats,
    )
    for key in ("rgb", "opacity", "depth"):
        torch.testing.assert_close(out[key].reshape(ref[key].shape), ref[key], rtol=1e-4, atol=2e-5)
    assert 0.05 < float(ref["opacity"].mean()) < 0.95  # the object covers part of the view
    assert stats.passes >= 2 and stats.reads == stats.passes + 1


@needs_native
def test_rgba_output_and_chunks(trained_small) -> None:
    trainer, scene = trained_small
    cam = _camera(scene, 40, 30)
    args = (trainer.model, trainer.grid, trainer.aabb, cam, trainer.march, (1.0, 1.0, 1.0))
    whole = render_image(*args)
    calls: list[tuple[int, int]] = []
    chunked = render_image(*args, chunk=257, progress=lambda done, total: calls.append((done, total)))
    for key in whole:
        torch.testing.assert_close(chunked[key], whole[key], rtol=1e-5, atol=1e-6)
    assert calls[-1] == (1200, 1200) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    assert len(calls) > 1200 // 257 + 1  # after every pass, not only every chunk
    rgba = render_rgba(*args, floats=True)
    assert rgba["rgba"].shape == (30, 40, 4) and rgba["rgba"].dtype == torch.uint8
    expect = (torch.cat([whole["rgb"], whole["opacity"][..., None]], -1).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    assert int((rgba["rgba"].int() - expect.int()).abs().max()) <= 1
    torch.testing.assert_close(rgba["depth"], whole["depth"])


SYNC_OPS = (
    "aten::item",
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::is_nonzero",
    "aten::masked_select",
    "aten::unique",
    "aten::_unique2",
    "aten::bincount",
    "aten::repeat_interleave",
    "aten::equal",
)


@needs_native
def test_host_reads_per_frame_are_bounded_by_the_passes(trained_small) -> None:
    """A frame reads the alive count once per pass (and once before the first); nothing else reads tensors."""
    trainer, scene = trained_small
    cam = _camera(scene, 64, 48)
    args = (trainer.model, trainer.grid, trainer.aabb, cam, trainer.march)
    render_image(*args)  # warm-up
    stats = FrameStats()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        render_image(*args, stats=stats)
    reads = sum(e.count for e in prof.key_averages() if e.key in ("aten::_local_scalar_dense",))
    others = {
        e.key: e.count
        for e in prof.key_averages()
        if e.key in SYNC_OPS and e.key not in ("aten::item", "aten::_local_scalar_dense")
    }
    assert stats.passes >= 2
    assert reads <= stats.passes + 1, (reads, stats.passes)
    assert not others, others


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_frame_syncs_and_half_precision(trained_small) -> None:
    device = _device("cuda")
    trainer, scene = trained_small
    import copy

    model = copy.deepcopy(trainer.model).to(device)
    grid = copy.deepcopy(trainer.grid).to(device)
    cam = _camera(scene, 320, 240)
    args = (model, grid, model.aabb, cam, trainer.march)
    assert model.mlp_precision == "auto"  # float16 MLPs on CUDA
    half = render_image(*args)
    model.mlp_precision = "float32"
    full = render_image(*args)
    model.mlp_precision = "auto"
    mse = float(((half["rgb"] - full["rgb"]) ** 2).mean())
    assert mse < 1e-4, mse  # fp16 field within 40 dB of fp32
    cpu = render_image(trainer.model, trainer.grid, trainer.aabb, cam, trainer.march)
    torch.testing.assert_close(full["rgb"].cpu(), cpu["rgb"], rtol=1e-3, atol=1e-3)
    stats = FrameStats()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            render_rgba(*args, stats=stats)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) <= stats.reads + 2, (len(syncs), stats.as_dict())  # + the box corners, once


def test_render_rays_infer_backends_agree() -> None:
    grid, aabb, params, o, d = _scene(7, 1.0, torch.device("cpu"))
    bg = torch.tensor([0.1, 0.2, 0.3])
    ref = render_rays_reference(_field, grid, aabb, o, d, params, bg)
    for backend in ["torch"] + (["native"] if native_ok else []):
        out = render_rays_infer(_field, grid, aabb, o, d, params, bg, ops=get_ops(backend))
        for key in ref:
            torch.testing.assert_close(out[key], ref[key], rtol=1e-4, atol=1e-5)
