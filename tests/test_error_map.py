"""Error-map pixel sampling (issue 18 item 5): the sampler draws cells with the probability its docstring gives
(checked against hand-computed values), keeps pixels in their cell and images uniform among the included frames,
folds recorded errors in as stated, and, trained on images that are half noise, learns where the error is."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.train.error_map import ErrorMap
from ngp_app.train.policy import error_map_on
from ngp_app.train.trainer import Trainer

DEMO = Path(__file__).resolve().parents[1] / "scenes" / "demo"


@pytest.fixture(scope="module")
def scene():
    return load_scene(DEMO, "train", downscale=2)  # 80 frames of 100x100


def test_cells_are_drawn_with_the_stated_probability(scene) -> None:
    emap = ErrorMap(scene.n_frames, resolution=2)
    emap.err[:] = 0.0
    emap.err[:, 0] = 3.0  # top-left cell
    emap.err[:, 3] = 1.0  # bottom-right
    emap.cdf = emap._build_cdf()
    # p = 1/2 * 1/4 + 1/2 * err / 4
    expected = torch.tensor([0.125 + 0.375, 0.125, 0.125, 0.125 + 0.125])
    g = torch.Generator().manual_seed(0)
    img, px, py = emap.sample(scene, 200_000, g)
    cell = (py // 50) * 2 + px // 50  # the demo at 1/2: 100x100, cells of 50x50
    freq = torch.bincount(cell, minlength=4).double() / 200_000
    torch.testing.assert_close(freq, expected.double(), atol=0.005, rtol=0)
    # pixels spread uniformly inside a cell: the top-left cell's pixels cover its 50x50 evenly
    inside = (px < 50) & (py < 50)
    hist = torch.bincount((py[inside] // 10) * 5 + px[inside] // 10, minlength=25).double()
    assert float(hist.min() / hist.max()) > 0.85
    # images stay uniform
    per_image = torch.bincount(img, minlength=scene.n_frames).double()
    assert float(per_image.min()) > 0.8 * 200_000 / scene.n_frames


def test_excluded_frames_are_never_drawn(scene) -> None:
    emap = ErrorMap(scene.n_frames)
    scene.set_excluded([0, 5, 7])
    try:
        img, px, py = emap.sample(scene, 20_000, torch.Generator().manual_seed(1))
    finally:
        scene.set_excluded([])
    assert not bool(torch.isin(img, torch.tensor([0, 5, 7])).any())
    assert bool((px >= 0).all() & (px < 100).all() & (py >= 0).all() & (py < 100).all())


def test_recorded_errors_fold_in_as_stated(scene) -> None:
    emap = ErrorMap(scene.n_frames, resolution=2, smoothing=0.5)
    img = torch.tensor([3, 3, 3, 4])
    px, py = torch.tensor([10, 20, 70, 99]), torch.tensor([10, 40, 10, 99])
    sq = torch.tensor([0.2, 0.4, 0.9, 0.5])
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0])  # the last ray was left out of the loss
    emap.record(scene, img, px, py, sq, weight)
    emap.refresh()
    # image 3: cell 0 saw 0.2 and 0.4 (a first mean, 0.3, taken as it is), cell 1 saw 0.9; cells never seen
    # (a zero-weight ray does not count) hold the largest error seen
    assert emap.err[3].tolist() == pytest.approx([0.3, 0.9, 0.9, 0.9])
    assert emap.err[4].tolist() == pytest.approx([0.9] * 4)
    emap.refresh()  # nothing recorded since: nothing moves
    assert emap.err[3].tolist() == pytest.approx([0.3, 0.9, 0.9, 0.9])
    emap.record(scene, img[:1], px[:1], py[:1], torch.tensor([0.7]), torch.tensor([1.0]))
    emap.refresh()  # a cell seen before moves halfway to its new mean
    assert emap.err[3].tolist() == pytest.approx([0.5, 0.9, 0.9, 0.9])


def test_training_finds_the_pixels_it_cannot_fit(scene) -> None:
    """Every training image's left half replaced by fresh noise (no model can fit it) and its right half by one grey
    (any model fits it at once): the map's left cells end with several times the error of the right ones, and the
    sampler sends most rays there."""
    g = torch.Generator().manual_seed(2)
    noisy = load_scene(DEMO, "train", downscale=2)
    for i in range(noisy.n_frames):
        img = noisy.image(i).clone()
        img[:, :50, :3] = torch.randint(0, 256, (100, 50, 3), generator=g, dtype=torch.uint8)
        img[:, :50, 3] = 255
        img[:, 50:] = torch.tensor([128, 128, 128, 255], dtype=torch.uint8)
        start = int(noisy.image_offsets[i])
        noisy.pixels[start : start + 100 * 100] = img.reshape(-1, 4)
    config = load_config(
        "small", {"training": {"target_batch_size_cpu": 4096, "error_map": True, "error_map_resolution": 4}}
    )
    trainer = Trainer(noisy, config, backend="torch", seed=0)
    assert trainer.error_map is not None
    trainer.train(steps=65)
    err = trainer.error_map.err.reshape(-1, 4, 4)
    left, right = float(err[:, :, :2].mean()), float(err[:, :, 2:].mean())
    assert left > 5.0 * right, (left, right)
    _, px, _ = trainer.error_map.sample(noisy, 20_000, torch.Generator().manual_seed(3))
    assert float((px < 50).float().mean()) > 0.65


def test_auto_is_off_and_masks_turn_it_off() -> None:
    auto = load_config("base")
    assert not error_map_on(auto, has_alpha=False, has_masks=False)
    on = load_config("base", {"training": {"error_map": True}})
    assert error_map_on(on, has_alpha=True, has_masks=False)
    assert not error_map_on(on, has_alpha=False, has_masks=True)
