"""LLFF scenes (``poses_bounds.npy``): fern's intrinsics, poses checked against the raw file by hand, the held-out
split, the images folder chosen for --downscale, a short training, and strict errors for bad files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.config import load_config
from ngp_app.data.images import resize_image
from ngp_app.data.loaders import held_out_frames, load_scene, resolve_scene
from ngp_app.errors import SceneError
from ngp_app.train.trainer import Trainer
from tests.bad_inputs import IMAGE_SIDE, Inputs, llff_rows, make_inputs, write_llff

TINY = {"training": {"target_batch_size_cpu": 1024}, "encoding": {"log2_hashmap_size": 12}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("valid"))


def opencv_rotations(rows: np.ndarray) -> np.ndarray:
    """The raw file's camera rotations with OpenCV axes (right, down, forward), computed here from the columns
    [down, right, back] of LLFF's convention."""
    m = rows[:, :15].reshape(-1, 3, 5)
    return np.stack([m[:, :, 1], m[:, :, 0], -m[:, :, 2]], axis=2)


def check_poses_match_raw(c2w: torch.Tensor, rows: np.ndarray) -> None:
    """What no normalisation (a rotation, a positive scale, a shift of the world) may change: every camera's rotation
    relative to camera 0, and the other cameras' centres seen from camera 0, up to one common scale."""
    ngp = c2w.double().numpy()
    raw_r = opencv_rotations(rows)
    raw_t = rows[:, :15].reshape(-1, 3, 5)[:, :, 3]
    r = ngp[:, :, :3]
    assert np.allclose(np.einsum("nij,nik->njk", r, r), np.eye(3), atol=1e-5)  # rotations
    assert np.allclose(np.linalg.det(r), 1.0, atol=1e-5)
    for j in range(len(rows)):
        assert np.allclose(r[0].T @ r[j], raw_r[0].T @ raw_r[j], atol=1e-5)
    seen_ngp = (ngp[1:, :, 3] - ngp[0, :, 3]) @ r[0]  # (n - 1, 3): R0^T (c_j - c_0)
    seen_raw = (raw_t[1:] - raw_t[0]) @ raw_r[0]
    scale = float((seen_ngp * seen_raw).sum() / (seen_raw * seen_raw).sum())
    assert scale > 0
    assert np.allclose(seen_ngp, scale * seen_raw, atol=1e-5 * max(1.0, float(np.abs(seen_ngp).max())))


# ------------------------------------------------------------------------------------------------ fern
def test_fern_loads_with_its_intrinsics_and_split(fern_scene: Path) -> None:
    scene = load_scene(fern_scene, "all")
    assert scene.fmt == "llff" and scene.n_frames == 20 and not scene.has_alpha
    assert set(scene.widths.tolist()) == {504} and set(scene.heights.tolist()) == {378}
    fx, fy, cx, cy = scene.intrinsics[0].tolist()
    assert fx == pytest.approx(407.57, abs=0.01) and fy == pytest.approx(407.57, abs=0.01)
    assert (cx, cy) == (252.0, 189.0)
    rows = np.load(fern_scene / "poses_bounds.npy")
    assert fx == pytest.approx(rows[0, 14] * 504 / rows[0, 9], rel=1e-6)  # focal of 4032 wide, for 504
    check_poses_match_raw(scene.c2w, rows)
    # the capture's average up is the scene's up (ngp +y), and every camera sees the box
    up = -scene.c2w[:, :, 1].double().mean(0)
    assert float(up[1] / up.norm()) > 0.99
    from ngp_app.train.scene_checks import fraction_of_rays_hitting_box

    assert fraction_of_rays_hitting_box(scene) == 1.0
    # LLFF's held-out images: every 8th (llffhold 8)
    test = load_scene(fern_scene, "test")
    assert [Path(f).name for f in test.file_names] == ["image000.png", "image008.png", "image016.png"]
    assert held_out_frames(fern_scene) == 3 and load_scene(fern_scene, "train").n_frames == 17
    assert load_scene(fern_scene / "poses_bounds.npy", "test").n_frames == 3  # the file itself names the scene


def test_fern_trains(fern_scene: Path) -> None:
    scene = load_scene(fern_scene, "train", downscale=8)
    assert scene.image(0).shape == (47, 63, 3) and scene.aabb_scale == 8
    # a coarse occupancy grid: fern's box has 4 cascades, whose 128^3 cells cost seconds to set up on a CPU
    config = load_config("small", {**TINY, "density_grid": {"resolution": 16}})
    trainer = Trainer(scene, config, backend="torch", seed=0)
    trainer.train(steps=4)
    assert trainer.step_count == 4 and all(math.isfinite(s.loss) and s.n_samples > 0 for s in trainer.history)


# ------------------------------------------------------------------------------------------------ built scenes
def test_llff_scene_matches_its_transforms_scene(inputs: Inputs, tmp_path: Path) -> None:
    """The valid scene written as LLFF loads as the same cameras (up to the normalisation) and intrinsics."""
    root = write_llff(tmp_path / "llff", inputs)
    llff, ref = load_scene(root, "all"), load_scene(inputs.scene, "all")
    assert llff.n_frames == ref.n_frames == 4 and llff.fmt == "llff"
    assert torch.allclose(llff.intrinsics, ref.intrinsics, atol=1e-4)
    check_poses_match_raw(llff.c2w, llff_rows(inputs.transforms, IMAGE_SIDE))
    check_poses_match_raw(ref.c2w, llff_rows(inputs.transforms, IMAGE_SIDE))
    assert held_out_frames(root) == 1 and load_scene(root, "test").file_names[0].endswith("000.png")


def test_images_folder_follows_downscale(inputs: Inputs, tmp_path: Path) -> None:
    import imageio.v3 as iio

    root = write_llff(tmp_path / "llff", inputs)
    (root / "images_2").mkdir()
    for p in sorted((root / "images").iterdir()):
        half = resize_image(np.asarray(iio.imread(p)), IMAGE_SIDE // 2, IMAGE_SIDE // 2)
        iio.imwrite(root / "images_2" / p.name, half)
    (root / "images" / "dynamic_mask_000.png").write_bytes((root / "images" / "000.png").read_bytes())  # a mask
    full = load_scene(root, "all")
    assert full.image(0).shape[:2] == (IMAGE_SIDE, IMAGE_SIDE) and "/images/" in full.file_names[0]
    half = load_scene(root, "all", downscale=2)  # images_2 as is, not images shrunk
    assert half.image(0).shape[:2] == (10, 10) and "/images_2/" in half.file_names[0]
    assert torch.allclose(half.intrinsics, full.intrinsics / 2, atol=1e-4)
    assert resolve_scene(root, "all", 2).downscale == 1 and resolve_scene(root, "all", 4).downscale == 4
    # without images/, images_2 is the largest: its images shrink by --downscale
    for p in (root / "images").iterdir():
        p.unlink()
    (root / "images").rmdir()
    assert load_scene(root, "all", downscale=2).image(0).shape[:2] == (5, 5)


def test_image_order_is_plain_sorted(inputs: Inputs, tmp_path: Path) -> None:
    """LLFF's rows follow the sorted image names ('img10' before 'img2'), as its loader reads them."""
    root = write_llff(tmp_path / "llff", inputs)
    names = ["img1.png", "img10.png", "img2.png", "img3.png"]
    for old, new in zip(sorted((root / "images").iterdir()), names):
        old.rename(root / "images" / new)
    scene = load_scene(root, "all")
    assert [Path(f).name for f in scene.file_names] == names


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda a: a[:, :15], "expected an array of shape (N, 17)"),
        (lambda a: a[:3], "4 images"),
        (lambda a: np.where(np.arange(17) == 3, np.nan, a), "rows[0].pose: expected a 3x4"),
        (lambda a: a * np.where(np.arange(17) < 3, 5.0, 1.0), "whose 3x3 part is a rotation"),
        (lambda a: np.where(np.arange(17) == 15, -1.0, a), "rows[0].near: expected a finite number > 0, got -1"),
        (lambda a: np.where(np.arange(17) == 16, 1.0, a), "rows[0].far: the far bound (1) must exceed"),
        (lambda a: np.where(np.arange(17) == 14, 0.0, a), "rows[0].focal: expected a finite number > 0"),
        (lambda a: np.where(np.arange(17) == 9, 33.0, a), "image is 20x20, not the 33x20 of poses_bounds.npy"),
        (lambda a: a.astype(str), "expected an array of numbers"),
    ],
)
def test_bad_poses_bounds_are_one_line_errors(inputs: Inputs, tmp_path: Path, mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    root = write_llff(tmp_path / "llff", inputs, mutate(llff_rows(inputs.transforms, IMAGE_SIDE)))
    with pytest.raises(SceneError) as info:
        load_scene(root, "all")
    text = str(info.value)
    assert needle in text and "\n" not in text and "poses_bounds.npy" in text


def test_lying_or_broken_npy_headers(inputs: Inputs, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_llff(tmp_path / "llff", inputs)
    path = root / "poses_bounds.npy"
    with open(path, "wb") as f:  # a header claiming 10^11 rows in front of 4 rows of data: no allocation
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 17)})
        f.write(llff_rows(inputs.transforms, IMAGE_SIDE).tobytes())
    with pytest.raises(SceneError, match="holds 544 bytes of data, its header says"):
        load_scene(root, "all")
    path.write_text("not numpy\n")
    with pytest.raises(SceneError, match="not a NumPy .npy file"):
        load_scene(root, "all")
    path.unlink()
    with pytest.raises(SceneError, match="not a scene"):
        load_scene(root, "all")
    np.save(path, llff_rows(inputs.transforms, IMAGE_SIDE))
    for p in (root / "images").iterdir():
        p.unlink()
    with caplog.at_level(logging.WARNING), pytest.raises(SceneError, match="no images beside it"):
        load_scene(root, "all")


def test_train_and_eval_commands_take_an_llff_scene(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import json

    from ngp_app.cli import main

    root = write_llff(tmp_path / "llff", inputs)
    out = tmp_path / "run"
    config = dict(inputs.config, density_grid=dict(inputs.config["density_grid"], resolution=16))  # aabb_scale 4
    config_path = tmp_path / "coarse.json"
    config_path.write_text(json.dumps(config))
    fast = ["--quiet", "--device", "cpu", "--backend", "torch", "--config", str(config_path)]
    assert main(["train", str(root), "--out", str(out), "--steps", "2", "--eval", *fast]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["test_psnr"])
    assert main(["eval", str(out), "--quiet", "--device", "cpu"]) == 0  # the snapshot's own scene: the LLFF folder
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_images"] == 1 and result["psnr"] == pytest.approx(metrics["test_psnr"], abs=1e-6)


def test_the_app_opens_an_llff_folder(inputs: Inputs, tmp_path: Path) -> None:
    """A dropped LLFF folder (or its poses_bounds.npy) opens as a scene, though its images/ would be import material."""
    from ngp_app.gui.importing import wants_import
    from ngp_app.gui.loading import SceneLoader

    root = write_llff(tmp_path / "llff", inputs)
    assert not wants_import(root) and wants_import(root / "images")
    loader = SceneLoader(None, lambda *a, **k: None, lambda *a, **k: "", lambda scene, config: object(), "cpu")  # type: ignore[arg-type]
    assert loader.classify(root) == "scene" and loader.classify(root / "poses_bounds.npy") == "scene"
    loaded = loader.load(root, start=False)
    assert (
        loaded.scene.fmt == "llff"
        and loaded.message == "scene llff: 3 training frames (1 held out for evaluation), training off"
    )
