"""Per-image masks (nerfstudio's ``mask_path``, instant-ngp's ``dynamic_mask_*``): masked pixels change nothing in
training, are never drawn as rays, count in no evaluation number, shrink with their images, and bad masks are
one-line errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from ngp_app.config import load_config
from ngp_app.data.images import resize_image
from ngp_app.data.loaders import load_scene
from ngp_app.data.scene import KeptPixels, Scene
from ngp_app.errors import SceneError
from ngp_app.train import evaluate as evaluate_module
from ngp_app.train.trainer import Trainer
from tests.conftest import DEMO

SIDE = 24
N_FRAMES = 6
# tiny model, coarse grid: a few steps in well under a second each
CONFIG = {
    "training": {"target_batch_size_cpu": 1024},
    "encoding": {"log2_hashmap_size": 12},
    "density_grid": {"resolution": 16},
}


def keep_mask(i: int) -> np.ndarray:
    """(SIDE, SIDE) bool: what frame ``i`` keeps (a rectangle that moves with i is masked out)."""
    keep = np.ones((SIDE, SIDE), bool)
    keep[4 + i : 14 + i, 6:18] = False
    return keep


def write_scene(root: Path, noisy: bool = False, masks: bool = True, seed: int = 0) -> Path:
    """A transforms.json scene of the demo's first frames (RGB on white), each with a ``mask_path``; ``noisy``
    replaces the masked pixels by random colours."""
    src = json.loads((DEMO / "transforms_train.json").read_text())
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    frames = []
    for i, frame in enumerate(src["frames"][:N_FRAMES]):
        rgba = resize_image(np.asarray(iio.imread(DEMO / (frame["file_path"] + ".png"))), SIDE, SIDE)
        a = rgba[..., 3:].astype(np.float32) / 255.0
        rgb = (rgba[..., :3] * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
        if noisy:
            rgb[~keep_mask(i)] = rng.integers(0, 256, size=(int((~keep_mask(i)).sum()), 3), dtype=np.uint8)
        iio.imwrite(root / "images" / f"{i:03d}.png", rgb)
        iio.imwrite(root / "masks" / f"{i:03d}.png", keep_mask(i).astype(np.uint8) * 255)
        entry = {"file_path": f"images/{i:03d}.png", "transform_matrix": frame["transform_matrix"]}
        if masks:
            entry["mask_path"] = f"masks/{i:03d}.png"
        frames.append(entry)
    data = {"camera_angle_x": src["camera_angle_x"], "w": SIDE, "h": SIDE, "aabb_scale": 1, "frames": frames}
    (root / "transforms.json").write_text(json.dumps(data))
    return root


def trained(root: Path, steps: int = 6) -> list[torch.Tensor]:
    """The parameters (and losses) after ``steps`` steps on ``root``'s training split, seed 0."""
    trainer = Trainer(load_scene(root, "train"), load_config("small", CONFIG), backend="torch", seed=0)
    for _ in range(steps):
        trainer.step()
    losses = torch.tensor([s.loss for s in trainer.history])
    return [p.detach().clone() for p in trainer.model.parameters()] + [losses]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_masked_pixels_change_nothing(tmp_path: Path) -> None:
    """Random colours in the masked pixels: the very same training (parameters and losses, bit for bit); without
    the masks the same noise changes it."""
    clean = trained(write_scene(tmp_path / "clean"))
    noisy = trained(write_scene(tmp_path / "noisy", noisy=True))
    assert same(clean, noisy)
    clean_unmasked = trained(write_scene(tmp_path / "clean-unmasked", masks=False))
    noisy_unmasked = trained(write_scene(tmp_path / "noisy-unmasked", noisy=True, masks=False))
    assert not same(clean_unmasked, noisy_unmasked)
    assert not same(clean, clean_unmasked)  # the masks did change what trains


def test_rays_are_drawn_only_from_kept_pixels(tmp_path: Path) -> None:
    root = write_scene(tmp_path / "s")
    for i in range(N_FRAMES):  # kept pixels green, masked ones red
        img = np.zeros((SIDE, SIDE, 3), np.uint8)
        img[keep_mask(i)] = (0, 255, 0)
        img[~keep_mask(i)] = (255, 0, 0)
        iio.imwrite(root / "images" / f"{i:03d}.png", img)
    scene = load_scene(root, "all")
    assert scene.info["n_masked"] == N_FRAMES
    assert scene.kept is not None and scene.kept.counts.tolist() == [int(keep_mask(i).sum()) for i in range(6)]
    for i in range(N_FRAMES):
        assert torch.equal(scene.mask(i), torch.from_numpy(keep_mask(i)))
    _, _, target, images = scene.sample_rays_with_images(20000, torch.Generator().manual_seed(0))
    assert torch.equal(target, torch.tensor([[0.0, 1.0, 0.0]]).expand_as(target))
    assert set(images.tolist()) == set(range(N_FRAMES))
    # every kept pixel can be drawn: the ray directions of frame 0 take as many values as it has kept pixels
    rays_o, rays_d, _, images = scene.sample_rays_with_images(200000, torch.Generator().manual_seed(1))
    assert len(torch.unique(rays_d[images == 0], dim=0)) == int(keep_mask(0).sum())


def test_dynamic_masks_and_mask_path_combine(tmp_path: Path) -> None:
    """instant-ngp's dynamic_mask_<name>.png: non-zero is a moving pixel, left out; with a mask_path both apply."""
    root = write_scene(tmp_path / "s")
    dynamic = np.zeros((SIDE, SIDE, 3), np.uint8)
    dynamic[0:2, :, 2] = 7  # any non-zero colour channel marks a pixel
    iio.imwrite(root / "images" / "dynamic_mask_001.png", dynamic)
    scene = load_scene(root, "all")
    expected = keep_mask(1).copy()
    expected[0:2] = False
    assert torch.equal(scene.mask(1), torch.from_numpy(expected)) and torch.equal(
        scene.mask(0), torch.from_numpy(keep_mask(0))
    )
    data = json.loads((root / "transforms.json").read_text())
    for frame in data["frames"]:
        del frame["mask_path"]
    (root / "transforms.json").write_text(json.dumps(data))
    scene = load_scene(root, "all")
    assert scene.mask(0) is not None and bool(scene.mask(0).all())  # a frame without masks keeps every pixel
    assert int(scene.mask(1).sum()) == SIDE * SIDE - 2 * SIDE and scene.info["n_masked"] == 1
    shutil.rmtree(root / "masks")
    (root / "images" / "dynamic_mask_001.png").unlink()
    assert load_scene(root, "all").kept is None  # no masks: every pixel, no index


def test_masks_shrink_with_their_images(tmp_path: Path) -> None:
    """A shrunk pixel is kept only when every full-size pixel under it is."""
    root = write_scene(tmp_path / "s")
    keep = np.ones((SIDE, SIDE), np.uint8) * 255
    keep[5, 7] = 0  # one masked pixel: its 2x2 block goes at --downscale 2
    iio.imwrite(root / "masks" / "000.png", np.stack([keep] * 3, -1))  # an RGB mask
    scene = load_scene(root, "all", downscale=2)
    mask = scene.mask(0)
    assert mask.shape == (SIDE // 2, SIDE // 2) and int((~mask).sum()) == 1 and not bool(mask[2, 3])
    full = torch.from_numpy(keep_mask(1)).view(SIDE // 2, 2, SIDE // 2, 2).all(3).all(1)
    assert torch.equal(scene.mask(1), full)


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda root: iio.imwrite(root / "masks" / "001.png", np.zeros((10, 12), np.uint8)), "mask is 12x10 but"),
        (lambda root: (root / "masks" / "001.png").unlink(), "mask_path 'masks/001.png': no such file"),
        (lambda root: (root / "masks" / "001.png").write_text("no"), "cannot read image"),
        (
            lambda root: iio.imwrite(root / "masks" / "001.png", np.zeros((SIDE, SIDE), np.uint8)),
            "its mask (001.png) leaves no pixel of the 24x24 image to train on or score",
        ),
    ],
)
def test_bad_masks_are_one_line_errors(tmp_path: Path, change, needle: str) -> None:  # type: ignore[no-untyped-def]
    root = write_scene(tmp_path / "s")
    change(root)
    with pytest.raises(SceneError) as info:
        load_scene(root, "all")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_evaluation_scores_only_kept_pixels() -> None:
    """Renders off by 0.1 where the mask keeps and by 0.3 where it does not: 20 dB, as if the rest were not there."""
    grey = 128 / 255.0
    keep = np.zeros((16, 16), bool)
    keep[:, :8] = True
    scene = Scene(
        Path("two"),
        "test",
        torch.full((2 * 256, 3), 128, dtype=torch.uint8),
        torch.tensor([0, 256]),
        torch.tensor([16, 16]),
        torch.tensor([16, 16]),
        torch.eye(4)[:3].expand(2, 3, 4).clone(),
        torch.tensor([[16.0, 16.0, 8.0, 8.0]] * 2),
        torch.zeros(2, 7),
        ["a.png", "b.png"],
        kept=KeptPixels.of_masks([keep, np.ones((16, 16), bool)]),
    )

    def fake_render(*_: Any, **__: Any) -> dict[str, torch.Tensor]:
        rgb = torch.full((16, 16, 3), grey - 0.3)
        rgb[:, :8] = grey + 0.1
        return {"rgb": rgb}

    class Field:
        def eval(self) -> None:
            pass

    res = evaluate_module.evaluate(SimpleNamespace(field=Field(), render=fake_render), scene)  # type: ignore[arg-type]
    first, second = res["images"]
    assert first["psnr"] == pytest.approx(20.0, abs=1e-4)  # only the kept half
    assert second["psnr"] == pytest.approx(-10 * math.log10((0.01 + 0.09) / 2), abs=1e-4)  # all of it
    from ngp_app.train.metrics import ssim

    a, b = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0)), torch.rand(32, 32, 3)
    assert ssim(a, b, mask=torch.ones(32, 32, dtype=torch.bool)) == pytest.approx(ssim(a, b), abs=1e-6)
    b[:, 16:] = a[:, 16:]  # the same right half: windows centred on columns >= 21 see only it
    right = torch.zeros(32, 32, dtype=torch.bool)
    right[:, 21:] = True
    assert ssim(a, b, mask=right) == pytest.approx(1.0, abs=1e-5) and ssim(a, b) < 0.9
    assert res["psnr_pooled"] == pytest.approx(-10 * math.log10((128 * 0.01 + 128 * 0.01 + 128 * 0.09) / 384), abs=1e-4)
