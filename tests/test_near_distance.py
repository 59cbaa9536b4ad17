"""Near distance (issue 18 item 6, instant-ngp's ``near_distance``): training and rendering rays start no nearer
their camera than ``training.near_distance``, in the torch reference and the native kernels alike, so a camera inside
the box never samples (and never grows density on) its own lens."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.native import loader
from ngp_app.render import slots
from ngp_app.render.occupancy import OccupancyGrid
from ngp_app.render.raymarch import MarchParams, march_rays, ray_aabb
from ngp_app.render.renderer import render_rgba
from ngp_app.snapshot import load_snapshot
from ngp_app.train.trainer import Trainer
from tests.conftest import DEMO

native_ok, why = loader.available(torch.device("cpu"))
NEAR = 0.3


def _inside(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, OccupancyGrid]:
    """Rays (n, 3) from cameras inside a box of side 8 (every cell occupied) in random directions, and the box."""
    g = torch.Generator().manual_seed(seed)
    o = 0.5 + (torch.rand(n, 3, generator=g) - 0.5) * 3.0
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    grid = OccupancyGrid(8.0, resolution=32, ops=get_ops("torch"))
    return o, d, torch.tensor([[-3.5] * 3, [4.5] * 3]), grid


def _marches(o, d, grid, aabb, params, jitter):
    out = [march_rays(o, d, grid, aabb, params, jitter)]
    if native_ok:
        out.append(get_ops("native").march(o, d, grid, aabb, params, jitter))
    return out


def test_the_march_starts_at_the_near_distance() -> None:
    o, d, aabb, grid = _inside(400, 1)
    jitter = torch.rand(400, generator=torch.Generator().manual_seed(2))
    base = MarchParams.for_grid(grid, max_steps=64)
    near = dataclasses.replace(base, near=NEAR)
    without = march_rays(o, d, grid, aabb, base, jitter)
    first = lambda s: s.t[s.offsets]  # noqa: E731
    assert bool((first(without) < NEAR).all())  # from inside the box, every ray starts at its camera
    got = _marches(o, d, grid, aabb, near, jitter)
    for s in got:
        assert bool((s.counts == 64).all())
        assert float(s.t.min()) >= NEAR
        # the first sample is the near point plus the ray's jitter of one step (the lattice starts there)
        expected = NEAR + jitter * torch.clamp(torch.tensor(NEAR) * near.cone_angle, near.dt_min, near.dt_max)
        torch.testing.assert_close(first(s), expected, rtol=1e-6, atol=1e-7)
    if len(got) == 2:
        torch.testing.assert_close(got[1].t, got[0].t, rtol=1e-6, atol=0)


def test_rays_entering_the_box_past_the_near_distance_are_unchanged() -> None:
    """Cameras outside the box: the near distance lies before the box entry and changes nothing."""
    g = torch.Generator().manual_seed(3)
    d = torch.nn.functional.normalize(torch.randn(200, 3, generator=g), dim=-1)
    o = 0.5 - 3.0 * d + 0.2 * torch.randn(200, 3, generator=g)
    grid = OccupancyGrid(1.0, resolution=32, ops=get_ops("torch"))
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    base = MarchParams.for_grid(grid)
    assert float(ray_aabb(o, d, aabb)[0].min()) > NEAR
    near = dataclasses.replace(base, near=NEAR)
    for a, b in zip(_marches(o, d, grid, aabb, base, None), _marches(o, d, grid, aabb, near, None)):
        assert torch.equal(a.counts, b.counts) and torch.equal(a.t, b.t)


def test_frame_passes_start_at_the_near_distance() -> None:
    """Whole-frame inference (march_first + march_slots, reference and native) walks the samples of one full march
    from the near distance."""
    o, d, aabb, grid = _inside(300, 4)
    params = dataclasses.replace(MarchParams.for_grid(grid, max_steps=40), near=NEAR)
    full = march_rays(o, d, grid, aabb, params)
    impls = [slots.TorchFrameOps(grid, aabb, params)]
    if native_ok:
        impls.append(get_ops("native").frame(grid, aabb, params))
    for ops in impls:
        k = torch.empty(300, dtype=torch.int64)
        ops.march_first(o, d, k)
        alive = torch.arange(300, dtype=torch.int32)
        _, _, t, _, counts = ops.march_slots(o, d, alive, k, 40)
        assert torch.equal(counts.long(), full.counts)
        torch.testing.assert_close(t.reshape(300, 40)[:, 0], full.t[full.offsets], rtol=1e-6, atol=0)
        assert float(t.reshape(300, 40)[:, 0].min()) >= NEAR


@pytest.mark.parametrize("backend", ["torch"] + (["native"] if native_ok else []))
def test_training_never_samples_within_the_near_distance(backend: str) -> None:
    """The demo scene in a box of 16 (its cameras inside): with ``training.near_distance`` no training sample lies
    nearer its camera; with 0 many do (the untrained grid is occupied everywhere)."""
    scene = load_scene(DEMO, "train", downscale=16)
    scene.aabb_scale = 16.0
    nearest = {}
    for near in (0.0, NEAR):
        config = load_config("small", {"training": {"target_batch_size_cpu": 2048, "near_distance": near}})
        trainer = Trainer(scene, config, backend=backend, seed=0)
        assert trainer.march.near == near
        seen: list[float] = []
        march_fixed = trainer.ops.march_fixed

        def recording(*args, _march=march_fixed, _seen=seen, **kwargs):
            out = _march(*args, **kwargs)
            real = out.dt > 0  # padding slots have dt 0
            _seen.append(float(out.t[real].min()) if bool(real.any()) else float("inf"))
            return out

        trainer.ops = dataclasses.replace(trainer.ops, march_fixed=recording)
        trainer.train(steps=6)
        assert len(seen) >= 6
        nearest[near] = min(seen)
    assert nearest[0.0] < 0.05
    assert nearest[NEAR] >= NEAR


def _opaque(x: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A field dense everywhere: every ray that samples anything is opaque."""
    return torch.full_like(x[:, 0], 1e4), torch.full_like(x, 0.5)


def test_near_distance_from_the_command_line_is_kept_and_rendered(tmp_path: Path) -> None:
    """``ngp train --near-distance`` goes into the snapshot's config and its model's march; a render starts rays
    there: a near distance past the whole box leaves the picture empty, a small one does not."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ngp_app", "train", str(DEMO), "--out", str(out), "--steps", "3"]
    cmd += ["--downscale", "16", "--config", "small", "--quiet", "--near-distance"]
    done = subprocess.run(cmd + ["0.25"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    snap = load_snapshot(out / "snapshot.npz")
    assert snap.config.training.near_distance == 0.25
    assert snap.nerf.march.near == 0.25
    cam = load_scene(DEMO, "test", downscale=16).camera(0)
    grid = OccupancyGrid(1.0, resolution=32, ops=get_ops("torch"))  # every cell occupied
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    seen = render_rgba(_opaque, grid, aabb, cam, snap.nerf.march)["rgba"]
    assert float((seen[..., 3] == 255).float().mean()) > 0.2  # the test camera looks at the box
    empty = render_rgba(_opaque, grid, aabb, cam, dataclasses.replace(snap.nerf.march, near=50.0))["rgba"]
    assert int(empty[..., 3].max()) == 0
    bad = subprocess.run(cmd + ["-1", "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--near-distance" in bad.stderr
