"""Per-image training loss (which frames fit worst) and leaving frames out of training without restarting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ngp_app.train.image_stats import ImageStats


def test_image_stats_average_each_images_recent_rays() -> None:
    stats = ImageStats(3, decay=0.5)
    images = torch.tensor([0, 0, 1, 1, 1, 0])
    sq_err = torch.tensor([0.3, 0.9, 0.03, 0.06, 0.09, 0.6])  # summed over rgb: per channel / 3
    stats.update(images, sq_err)
    rows = stats.snapshot()
    assert rows[0].mse == pytest.approx(0.6 / 3) and rows[1].mse == pytest.approx(0.06 / 3)
    assert rows[0].psnr == pytest.approx(-10 * math.log10(0.2)) and rows[0].rays == 3
    assert math.isnan(rows[2].mse) and rows[2].rays == 0  # never sampled
    # the next step counts twice as much as the previous one (decay 0.5); rays left out (weight 0) do not count
    stats.update(torch.tensor([0, 1]), torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]))
    rows = stats.snapshot()
    assert rows[0].mse == pytest.approx((0.5 * 1.8 / 3) / (0.5 * 3 + 1))
    assert rows[1].mse == pytest.approx(0.06 / 3) and rows[1].rays == pytest.approx(1.5)
    stats.reset([0])
    assert math.isnan(stats.snapshot()[0].mse) and not math.isnan(stats.snapshot()[1].mse)


def _small_trainer(scene):
    from ngp_app.config import load_config
    from ngp_app.train.trainer import Trainer

    config = load_config("small", {"training": {"target_batch_size_cpu": 4096}, "encoding": {"log2_hashmap_size": 14}})
    return Trainer(scene, config, seed=0)


def test_a_corrupted_frame_has_the_worst_training_loss(demo_scene: Path) -> None:
    from ngp_app.data.loaders import load_scene

    scene = load_scene(demo_scene, "train", downscale=8)
    bad = 5
    img = scene.image(bad)  # a view of the pixel buffer: that frame becomes opaque noise
    gen = torch.Generator().manual_seed(0)
    img[...] = torch.randint(0, 256, img.shape, generator=gen, dtype=torch.uint8)
    img[..., 3:] = 255
    trainer = _small_trainer(scene)
    trainer.train(steps=40)
    rows = trainer.image_stats.snapshot()
    assert all(r.rays > 0 for r in rows)
    worst = max(rows, key=lambda r: r.mse)
    others = sorted(r.mse for r in rows if r.index != bad)
    assert worst.index == bad and worst.mse > 3 * others[len(others) // 2]


def test_excluded_frames_are_not_sampled_and_survive_a_snapshot(demo_scene: Path, tmp_path: Path) -> None:
    from ngp_app.data.loaders import load_scene
    from ngp_app.errors import NgpError
    from ngp_app.snapshot import load_snapshot, save_snapshot

    scene = load_scene(demo_scene, "train", downscale=16)
    n = scene.n_frames
    assert scene.set_excluded([3, 1, 3]) == (1, 3)
    _, _, _, images = scene.sample_rays_with_images(4096, torch.Generator().manual_seed(1))
    seen = set(images.tolist())
    assert 1 not in seen and 3 not in seen and len(seen) == n - 2
    with pytest.raises(ValueError, match="at least one frame"):
        scene.set_excluded(range(n))
    with pytest.raises(ValueError, match="must be in"):
        scene.set_excluded([n])
    assert scene.excluded == (1, 3)  # a refused change leaves the previous one
    trainer = _small_trainer(scene)
    trainer.train(steps=3)
    rows = trainer.image_stats.snapshot()
    assert rows[1].rays == 0 and rows[3].rays == 0 and rows[0].rays > 0
    snap = save_snapshot(tmp_path / "snap", trainer.nerf, trainer.config, trainer.scene_metadata(), trainer.step_count)
    loaded = load_snapshot(snap)
    assert loaded.scene["excluded"] == [1, 3]
    fresh = _small_trainer(load_scene(demo_scene, "train", downscale=16))
    fresh.restore(loaded)
    assert fresh.scene.excluded == (1, 3)
    scene.set_excluded([])  # everything back in
    assert len(set(scene.sample_rays_with_images(4096, torch.Generator().manual_seed(1))[3].tolist())) == n
    # a snapshot whose excluded list does not fit its cameras is refused with one line
    from ngp_app.schema import validate
    from ngp_app.schema.snapshot import SceneMeta

    meta = dict(trainer.scene_metadata(), excluded=[n + 4])
    with pytest.raises(NgpError, match=r"excluded: expected distinct frame indices below"):
        validate(SceneMeta, meta, "snap")
