"""Occupancy cells seen by no training camera are marked empty for good; the grid is refreshed on instant-ngp's
warm-up schedule."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.native import loader
from ngp_app.render.occupancy import OccupancyGrid
from ngp_app.render.visibility import unseen_cells


def _camera(eye: tuple[float, float, float], forward: tuple[float, float, float]) -> torch.Tensor:
    """c2w (3, 4) looking along +z or -z (columns right, down, forward, position)."""
    f = torch.tensor(forward)
    right = torch.tensor([1.0, 0.0, 0.0]) if f[2] > 0 else torch.tensor([-1.0, 0.0, 0.0])
    down = torch.cross(f, right, dim=0)
    return torch.stack([right, down, f, torch.tensor(eye)], dim=1)


NARROW = torch.tensor([[80.0, 80.0, 10.0, 10.0]])  # 20x20 image, half field of view atan(1/8) = 7.1 degrees
SIZE = torch.tensor([[20, 20]])


def test_narrow_camera_sees_only_its_column() -> None:
    c2w = _camera((0.5, 0.5, -1.5), (0.0, 0.0, 1.0))[None]
    unseen = unseen_cells(1, 8, c2w, NARROW, SIZE)[0].view(8, 8, 8)  # [z, y, x]
    # a corner (x, y, z) is inside when |x - 0.5|, |y - 0.5| < (z + 1.5) / 8
    assert not unseen[0, 3, 3] and not unseen[0, 4, 4] and not unseen[7, 5, 5]  # on the axis
    assert unseen[0, 0, 0] and unseen[0, 0, 4]  # nearest corner 0.375 off the axis at z = 0 (limit 0.1875)
    assert not unseen[7, 2, 2]  # corner (0.375, 0.375, 1): 0.125 < 2.5 / 8
    assert 0.5 < float(unseen.float().mean()) < 0.95


def test_nothing_behind_a_camera_is_seen() -> None:
    c2w = _camera((0.5, 0.5, -1.5), (0.0, 0.0, -1.0))[None]  # looking away from the box
    assert bool(unseen_cells(1, 8, c2w, NARROW, SIZE).all())


def _brute_force(resolution: int, c2w: torch.Tensor, intr: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Cell by cell, corner by corner, camera by camera."""
    out = torch.ones(resolution**3, dtype=torch.bool)
    for x, y, z in itertools.product(range(resolution), repeat=3):
        for dx, dy, dz in itertools.product((0, 1), repeat=3):
            p = torch.tensor([x + dx, y + dy, z + dz], dtype=torch.float32) / resolution
            for k in range(c2w.shape[0]):
                local = c2w[k, :, :3].T @ (p - c2w[k, :, 3])
                if local[2] <= 1e-6:
                    continue
                u = intr[k, 0] * local[0] / local[2] + intr[k, 2]
                v = intr[k, 1] * local[1] / local[2] + intr[k, 3]
                if 0 < u < size[k, 0] and 0 < v < size[k, 1]:
                    out[x + y * resolution + z * resolution**2] = False
    return out


def test_matches_a_brute_force_projection() -> None:
    g = torch.Generator().manual_seed(0)
    cams = []
    for _ in range(3):  # cameras around the box looking at random points near it
        eye = 0.5 + 1.5 * torch.nn.functional.normalize(torch.randn(3, generator=g), dim=0)
        f = torch.nn.functional.normalize(0.5 + 0.4 * (torch.rand(3, generator=g) - 0.5) - eye, dim=0)
        right = torch.nn.functional.normalize(torch.cross(f, torch.tensor([0.0, 1.0, 0.0]), dim=0), dim=0)
        cams.append(torch.stack([right, torch.cross(f, right, dim=0), f, eye], dim=1))
    c2w = torch.stack(cams)
    intr = torch.tensor([[40.0, 40.0, 10.0, 10.0]] * 3)
    size = torch.tensor([[20, 20]] * 3)
    got = unseen_cells(1, 6, c2w, intr, size)[0]
    assert torch.equal(got, _brute_force(6, c2w, intr, size))
    assert 0 < int(got.sum()) < got.numel()


def test_distorted_cameras_are_padded_and_fisheye_sees_everything() -> None:
    c2w = _camera((0.5, 0.5, -1.5), (0.0, 0.0, 1.0))[None]
    plain = unseen_cells(1, 8, c2w, NARROW, SIZE)
    distorted = unseen_cells(1, 8, c2w, NARROW, SIZE, torch.tensor([[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]))
    assert bool((distorted <= plain).all()) and int(distorted.sum()) < int(plain.sum())
    fisheye = unseen_cells(1, 8, c2w, NARROW, SIZE, torch.tensor([[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]))
    assert not bool(fisheye.any())


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_marked_cells_stay_empty_through_updates(backend: str) -> None:
    if backend == "native" and not loader.available(torch.device("cpu"))[0]:
        pytest.skip("native extension unavailable")
    grid = OccupancyGrid(1.0, resolution=8, ops=get_ops(backend))
    c2w = _camera((0.5, 0.5, -1.5), (0.0, 0.0, 1.0))[None]
    unseen = unseen_cells(1, 8, c2w, NARROW, SIZE)
    grid.mark_untrained(unseen)
    assert not bool(grid.occupied[unseen].any()) and bool(grid.occupied[~unseen].all())
    for _ in range(3):  # dense everywhere: every seen cell becomes occupied, no marked one does
        grid.update(lambda x: torch.full((x.shape[0],), 1e4), fraction=1.0, generator=torch.Generator().manual_seed(1))
    assert bool((grid.density[unseen] == -1).all()) and not bool(grid.occupied[unseen].any())
    assert bool(grid.occupied[~unseen].all())


def test_trainer_marks_cells_no_camera_sees_and_keeps_them_after_resume() -> None:
    from ngp_app.bench.train import subset
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import Snapshot
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    scene = subset(load_scene(DEMO, "train", downscale=8), [0])  # one camera sees a cone of the box
    config = load_config("base", {"training": {"target_batch_size_cpu": 2048}, "encoding": {"log2_hashmap_size": 14}})
    trainer = Trainer(scene, config, backend="torch", seed=0)
    unseen = trainer.unseen
    assert unseen is not None and 0.2 < float(unseen.float().mean()) < 0.95
    for _ in range(3):
        trainer.step()
    assert not bool(trainer.grid.occupied[unseen].any()) and bool((trainer.grid.density[unseen] == -1).all())
    # a snapshot from before the marking (no -1 cells) gets them back on resume
    old_grid = OccupancyGrid(scene.aabb_scale, config.density_grid.resolution, ops=get_ops("torch"))
    snap = Snapshot(replace(trainer.nerf, grid=old_grid), config, {}, 3, {})
    resumed = Trainer(scene, config, backend="torch", seed=0)
    resumed.restore(snap)
    assert torch.equal(resumed.grid.density < 0, unseen) and not bool(resumed.grid.occupied[unseen].any())
    off = Trainer(scene, load_config("base", {"density_grid": {"mark_untrained": False}}), backend="torch")
    assert off.unseen is None and bool(off.grid.occupied.all())


def test_grid_update_schedule_follows_instant_ngp() -> None:
    from ngp_app.train.policy import grid_update_due

    due = [step for step in range(600) if grid_update_due(step, 16, 256)]
    # every step until 32, then every step // 16 steps, every 16 from step 256 on (instant-ngp's n_prep_to_skip)
    assert due[:32] == list(range(32)) and due[32:36] == [32, 34, 36, 38]
    assert [s for s in due if s >= 256] == list(range(256, 600, 16))
    assert len([s for s in due if s < 256]) == 76
    assert [step for step in range(100) if grid_update_due(step, 16, 0)] == list(range(0, 100, 16))  # no warm-up


def test_the_warm_up_is_cuda_only_by_default() -> None:
    """On CPU (updates sample 1/16 of the cells) the warm-up's frequent early updates cost 0.8 dB after 600 steps on
    the bundled scene (docs/benchmarks.md), so ``warmup_steps_cpu`` is 0 by default."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    cpu = Trainer(scene, load_config("small"), backend="torch")
    assert cpu.policy.grid_warmup_steps == 0
    due = []
    for step in range(40):
        cpu.step_count = step
        if cpu.policy.grid_update_due(cpu.step_count):
            due.append(step)
    assert due == [0, 16, 32]
    warm = Trainer(scene, load_config("small", {"density_grid": {"warmup_steps_cpu": 64}}), backend="torch")
    assert warm.policy.grid_warmup_steps == 64
    warm.step_count = 5
    assert warm.policy.grid_update_due(warm.step_count)
