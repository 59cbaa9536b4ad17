"""Rays march to the box edge (issue 18 item 1): the per-ray budget counts samples taken, empty space costs nothing,
so a large box's far walls are reached; the torch reference and the native walk agree there, and a far backdrop is
sampled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.config import load_config
from ngp_app.data import synthetic as syn
from ngp_app.data.cameras import NERF_SCALE, camera_rays
from ngp_app.data.loaders import load_scene
from ngp_app.data.scene import Scene
from ngp_app.native import loader
from ngp_app.render.occupancy import OccupancyGrid, cell_index, mip_from_pos
from ngp_app.render.raymarch import MarchParams, PackedSamples, lattice_t, march_rays, ray_aabb, step_dt
from ngp_app.train.trainer import Trainer

native_ok, why = loader.available(torch.device("cpu"))
OLD_REACH = 1024  # lattice points the walk visited before this issue: max_steps_per_ray, empty space included
FAR = 42.0  # radius of the far backdrop, world units
STEPS = 200  # training steps of the learned-backdrop test


def _marches(o: torch.Tensor, d: torch.Tensor, grid: OccupancyGrid, aabb: torch.Tensor, params: MarchParams):
    """The reference march and, where the extension builds, the native one."""
    out = [march_rays(o, d, grid, aabb, params)]
    if native_ok:
        out.append(get_ops("native").march(o, d, grid, aabb, params))
    return out


def _assert_same(a: PackedSamples, b: PackedSamples) -> None:
    assert torch.equal(a.counts, b.counts)
    torch.testing.assert_close(b.t, a.t, rtol=1e-6, atol=0)
    torch.testing.assert_close(b.positions, a.positions, rtol=1e-6, atol=4e-6)  # ulps of t * d, t up to 28


def _box(aabb_scale: float) -> torch.Tensor:
    half = aabb_scale / 2
    return torch.tensor([[0.5 - half] * 3, [0.5 + half] * 3])


def _far_walls(aabb_scale: float, seed: int) -> OccupancyGrid:
    """A 32^3-cell grid, empty but for the outermost cells of its coarsest cascade (the far walls) and a few
    scattered cells."""
    g = torch.Generator().manual_seed(seed)
    grid = OccupancyGrid(aabb_scale, resolution=32, ops=get_ops("torch"))
    walls = torch.zeros(32, 32, 32, dtype=torch.bool)  # [z, y, x]
    for axis in range(3):
        walls.index_fill_(axis, torch.tensor([0, 31]), True)
    occ = torch.rand(grid.n_cascades, 32, 32, 32, generator=g) < 0.002
    occ[-1] |= walls
    grid.occupied = occ.reshape(grid.n_cascades, -1)
    return grid


def _inside_rays(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays (n, 3) from within one unit of the box centre (cameras inside a large box), in random directions."""
    g = torch.Generator().manual_seed(seed)
    o = 0.5 + (torch.rand(n, 3, generator=g) - 0.5) * 2.0
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    return o, d


@pytest.mark.parametrize("aabb_scale", [16.0, 32.0])
def test_rays_reach_the_far_walls_of_a_large_box(aabb_scale: float) -> None:
    grid, aabb = _far_walls(aabb_scale, 1), _box(aabb_scale)
    o, d = _inside_rays(300, 2)
    params = MarchParams.for_grid(grid)
    marches = _marches(o, d, grid, aabb, params)
    ref = marches[0]
    for other in marches[1:]:
        _assert_same(ref, other)
    # every ray's last sample lies in the wall at its exit, within one step of it
    t_near, t_far = ray_aabb(o, d, aabb)
    assert bool((ref.counts > 0).all())
    last = ref.t[ref.offsets + ref.counts - 1]
    assert bool((t_far - last <= params.dt_max).all())
    # which a walk of OLD_REACH lattice points, empty space included, could not reach on most rays
    old_reach = lattice_t(t_near, torch.full_like(ref.counts, OLD_REACH - 1), params)
    beyond = float((last > old_reach).float().mean())
    assert beyond > (0.9 if aabb_scale == 32 else 0.3), beyond


@pytest.mark.parametrize("aabb_scale", [16.0, 32.0])
def test_the_sample_cap_counts_only_samples_taken(aabb_scale: float) -> None:
    grid, aabb = _far_walls(aabb_scale, 3), _box(aabb_scale)
    o, d = _inside_rays(300, 4)
    full = MarchParams.for_grid(grid)
    cap = 5
    capped = MarchParams(full.dt_min, full.dt_max, full.cone_angle, cap)
    ref = march_rays(o, d, grid, aabb, full)
    assert int((ref.counts > cap).sum()) > 100  # most rays cross more than `cap` samples of wall
    for got in _marches(o, d, grid, aabb, capped):
        assert torch.equal(got.counts, ref.counts.clamp(max=cap))
        first = torch.cat([ref.t[a : a + c] for a, c in zip(ref.offsets.tolist(), got.counts.tolist())])
        torch.testing.assert_close(got.t, first, rtol=1e-6, atol=0)


def test_rays_without_a_finite_exit_take_no_samples() -> None:
    """A zero or NaN direction leaves the box nowhere: no walk (before, 1024 lattice points bounded it)."""
    grid = OccupancyGrid(32.0, resolution=32, ops=get_ops("torch"))  # every cell occupied
    o = torch.tensor([[0.5, 0.5, 0.5], [0.2, 0.3, 0.4], [0.5, 0.5, 0.5]])
    d = torch.tensor([[0.0, 0.0, 0.0], [float("nan")] * 3, [0.0, 0.0, 1.0]])
    for got in _marches(o, d, grid, _box(32.0), MarchParams.for_grid(grid, max_steps=8)):
        assert got.counts.tolist() == [0, 0, 8]


def test_samples_of_one_far_cell_lie_on_the_lattice() -> None:
    """aabb_scale 32, a ray from the centre along +x, one occupied cell of the coarsest cascade at the far face
    (x in [15.5, 16.5]): the samples are the lattice points in that cell, computed here by stepping t."""
    grid = OccupancyGrid(32.0, resolution=32, ops=get_ops("torch"))
    grid.occupied = torch.zeros_like(grid.occupied)
    cell = torch.tensor([[31, 16, 16]])  # (x, y, z) in cascade 5: 1-unit cells, the last one along x
    grid.occupied[grid.n_cascades - 1, cell[0, 0] + 32 * cell[0, 1] + 32 * 32 * cell[0, 2]] = True
    aabb = _box(32.0)
    o = torch.tensor([[0.5, 0.9, 0.9]])
    d = torch.tensor([[1.0, 0.0, 0.0]])
    params = MarchParams.for_grid(grid)
    # the lattice from t0 = 0: t += clamp(t * cone, dt_min, dt_max), in float64
    ts, t, k, first_k = [], 0.0, 0, None
    while t < 16.0:  # the box exit (x = 16.5)
        if t >= 15.0:  # x = 0.5 + t >= 15.5: inside the cell
            ts.append(t)
            first_k = k if first_k is None else first_k
        t += min(max(t * params.cone_angle, params.dt_min), params.dt_max)
        k += 1
    expected = torch.tensor(ts, dtype=torch.float64)
    assert 10 < len(ts) < 30 and first_k is not None and first_k > OLD_REACH  # out of the old walk's reach
    assert min(abs(v - b) for v in ts for b in (15.0, 16.0)) > 1e-4  # no point on a cell face
    for got in _marches(o, d, grid, aabb, params):
        torch.testing.assert_close(got.t.double(), expected, rtol=1e-5, atol=0)
        assert got.counts.tolist() == [len(ts)]


def _surfaces(scene: Scene, radius: float) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per view of a far-backdrop scene: its rays (H*W, 3) in box space and where each first hits a surface (H*W,),
    in box units, from the scene's ray tracer."""
    meta = json.loads((scene.path / f"transforms_{scene.split}.json").read_text())
    views = []
    for i, frame in enumerate(meta["frames"]):
        cam = scene.camera(i)
        o, d = camera_rays(cam)
        world = syn.camera_rays(np.array(frame["transform_matrix"]), cam.width, cam.height, meta["camera_angle_x"], 1)
        _, _, t_world = syn.trace_rays(*world, True, radius)
        views.append((o, d, torch.from_numpy(t_world).float() * NERF_SCALE))
    return views


def _converged_occupancy(grid: OccupancyGrid, views: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
    """Occupy what a converged grid would: in every cascade the cells holding a surface point the views see, and
    their neighbours."""
    r, n_c = grid.resolution, grid.n_cascades
    points = torch.cat([o + t[:, None] * d for o, d, t in views])
    own = mip_from_pos(points, n_c)
    occ = torch.zeros(n_c, r**3, dtype=torch.bool)
    for c in range(n_c):
        inside = points[own <= c]  # the points cascade c covers
        occ[c, cell_index(inside, torch.full((inside.shape[0],), c), r)] = True
    grown = torch.nn.functional.max_pool3d(occ.view(n_c, 1, r, r, r).float(), 3, stride=1, padding=1)
    grid.occupied = grown.view(n_c, -1).to(grid.device) > 0
    grid._coarse = None


def _far_scene(tmp_path: Path, split: str, **kw: int) -> Scene:
    """make-scene's far backdrop: a textured dome 42 world units (13.9 box units) from the object, 12.5+ from the
    cameras, in a box of aabb_scale 32."""
    out = syn.make_scene(tmp_path / "far", n_val=0, progress=False, supersample=1, backdrop_radius=FAR, **kw)
    scene = load_scene(out, split)
    assert scene.aabb_scale == 32
    return scene


def test_a_far_backdrop_is_sampled(tmp_path: Path) -> None:
    """With the grid pruned to the surfaces, every ray that sees the far dome takes samples at the dome, which the
    old walk (1024 lattice points, empty space included) never reached."""
    scene = _far_scene(tmp_path, "test", width=12, height=12, n_train=1, n_test=3)
    views = _surfaces(scene, FAR)
    grid = OccupancyGrid(scene.aabb_scale, resolution=32, ops=get_ops("torch"))
    _converged_occupancy(grid, views)
    params = MarchParams.for_grid(grid)
    for o, d, t_hit in views:
        dome = t_hit > 12.0  # box units; the object is within 2 of the cameras
        assert int(dome.sum()) > 20
        old_reach = lattice_t(torch.zeros(int(dome.sum())), torch.full((int(dome.sum()),), OLD_REACH - 1), params)
        assert bool((old_reach < t_hit[dome] - 2.0).all())
        for s in _marches(o[dome], d[dome], grid, scene.aabb, params):
            at_dome = (s.t - t_hit[dome][s.ray_indices]).abs() <= step_dt(s.t, params)  # within a step of it
            per_ray = torch.zeros(int(dome.sum())).index_add_(0, s.ray_indices, at_dome.float())
            assert bool((per_ray > 0).all())


@pytest.mark.slow
def test_a_far_backdrop_is_learned(tmp_path: Path) -> None:
    """Trained on the far-backdrop scene with the grid held at the surfaces (as a converged grid would be: on CPU
    ours takes far longer to prune a 32-unit box), the held-out views' dome pixels get the dome's colour at the
    dome's depth. The old walk never reached the dome: those pixels could only show the background."""
    train = _far_scene(tmp_path, "train", width=24, height=24, n_train=40, n_test=2)
    config = load_config("small", {"training": {"target_batch_size_cpu": 8192}, "encoding": {"log2_hashmap_size": 14}})
    trainer = Trainer(train, config, seed=0, backend="native" if native_ok else "torch")
    _converged_occupancy(trainer.grid, _surfaces(train, FAR))
    trainer.update_grid = lambda: None  # type: ignore[method-assign]  # hold the grid
    trainer.train(steps=STEPS)
    test = load_scene(train.path, "test")
    for i, (_, _, t_hit) in enumerate(_surfaces(test, FAR)):
        dome = t_hit > 12.0
        out = trainer.eval_nerf.render(test.camera(i), background=(0.0, 0.0, 0.0))
        opacity = out["opacity"].reshape(-1)[dome]
        depth = out["depth"].reshape(-1)[dome] / opacity.clamp(min=1e-6)
        rgb = out["rgb"].reshape(-1, 3)[dome]
        truth = test.image(i).reshape(-1, 3)[dome].float() / 255.0
        assert float(opacity.median()) > 0.95
        assert abs(float((depth / t_hit[dome]).median()) - 1.0) < 0.05
        mse = float(((rgb - truth) ** 2).mean())
        assert mse < float(((truth - truth.mean(0)) ** 2).mean())  # better than the dome's mean colour
        assert mse < 0.2 * float((truth**2).mean())  # far better than the background the old walk showed
