"""``ngp export cameras``: the training cameras reload as the same cameras (poses, intrinsics, lenses), reproduce the
training PSNR, carry refined poses, and never replace the scene's own file."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.data.cameras import nerf_to_ngp
from ngp_app.data.loaders import load_scene
from ngp_app.errors import NgpError
from ngp_app.export.training_cameras import export_cameras
from ngp_app.snapshot import load_snapshot, read_snapshot_meta

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenes" / "demo"


def ngp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="module")
def exported(tiny_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cams") / "sub" / "transforms.json"
    out.parent.mkdir()
    result = ngp("export", "cameras", str(tiny_snapshot), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(out), "80 cameras, poses as loaded"]
    return out


def test_cameras_reload_as_the_same_cameras(tiny_snapshot: Path, exported: Path) -> None:
    meta = read_snapshot_meta(tiny_snapshot)["scene"]
    data = json.loads(exported.read_text())
    assert not Path(data["frames"][0]["file_path"]).is_absolute()  # relative to the file, found from anywhere
    again = load_scene(exported, "all", downscale=8)  # the snapshot trained at 1/8 size
    assert again.n_frames == len(meta["c2w"])
    assert torch.allclose(again.c2w, torch.tensor(meta["c2w"]), atol=1e-5)
    assert torch.allclose(again.intrinsics, torch.tensor(meta["intrinsics"]), rtol=1e-5)
    assert [list(map(int, s)) for s in zip(again.widths.tolist(), again.heights.tolist())] == meta["sizes"]
    assert (again.scale, list(again.offset), again.aabb_scale) == (meta["scale"], meta["offset"], meta["aabb_scale"])
    # at full size the intrinsics are the images' own (the bundled scene's camera_angle_x at 200 px)
    full = json.loads((DEMO / "transforms_train.json").read_text())
    f = 100.0 / np.tan(0.5 * full["camera_angle_x"])
    assert data["frames"][0]["w"] == 200 and data["frames"][0]["fl_x"] == pytest.approx(f, rel=1e-5)


def test_exported_cameras_reproduce_the_training_psnr(tiny_snapshot: Path, exported: Path) -> None:
    from ngp_app.compute import resolve_ops
    from ngp_app.train.evaluate import evaluate

    snap = load_snapshot(tiny_snapshot, backend=resolve_ops("auto", torch.device("cpu")))
    original = evaluate(snap.nerf, load_scene(DEMO, "train", downscale=8))
    reloaded = evaluate(snap.nerf, load_scene(exported, "all", downscale=8))
    assert reloaded["n_images"] == original["n_images"] == 80
    assert abs(reloaded["psnr"] - original["psnr"]) < 0.05, (reloaded["psnr"], original["psnr"])


def test_refined_poses_and_lenses_are_what_is_written(tiny_snapshot: Path, tmp_path: Path) -> None:
    meta = copy.deepcopy(read_snapshot_meta(tiny_snapshot)["scene"])
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about ngp y... any rotation
    c2w = np.asarray(meta["c2w"][3])
    c2w[:, :3] = turn @ c2w[:, :3]
    c2w[:, 3] += [0.01, -0.02, 0.03]
    meta["c2w"][3] = c2w.tolist()
    meta["extrinsics_refined"] = True
    n = len(meta["c2w"])
    meta["distortion"] = [[0.0] * 7 for _ in range(n)]
    meta["distortion"][1] = [0.01, -0.002, 0.0003, 0.0, 0.0004, -0.0005, 0.0]  # OpenCV
    meta["distortion"][2] = [0.02, 0.003, -0.001, 0.0005, 0.0, 0.0, 1.0]  # fisheye
    out = tmp_path / "cams.json"
    data = export_cameras(meta, out)
    assert data["ngp_export"]["extrinsics_refined"] is True
    frame = data["frames"][3]
    assert np.allclose(
        nerf_to_ngp(np.asarray(frame["transform_matrix"]), meta["scale"], meta["offset"]), c2w, atol=1e-6
    )
    assert data["frames"][2]["camera_model"] == "OPENCV_FISHEYE" and "camera_model" not in data["frames"][0]
    again = load_scene(out, "all", downscale=8)
    assert torch.allclose(again.c2w[3], torch.tensor(c2w, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(again.distortion, torch.tensor(meta["distortion"]), atol=1e-7)


def test_the_scene_own_file_is_never_replaced(tiny_snapshot: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(DEMO, scene)
    meta = copy.deepcopy(read_snapshot_meta(tiny_snapshot)["scene"])
    meta["path"] = str(scene)
    meta["file_names"] = [str(scene / Path(name).relative_to(DEMO)) for name in meta["file_names"]]
    own = scene / "transforms_train.json"
    before = own.read_bytes()
    with pytest.raises(NgpError, match="scene's own camera file"):
        export_cameras(meta, own)
    assert own.read_bytes() == before


def test_older_snapshots_find_their_images_again(tiny_snapshot: Path, tmp_path: Path) -> None:
    meta = copy.deepcopy(read_snapshot_meta(tiny_snapshot)["scene"])
    names = meta.pop("file_names")
    data = export_cameras(meta, tmp_path / "c.json")
    assert [str((tmp_path / f["file_path"]).resolve()) for f in data["frames"]] == names
    meta["c2w"] = meta["c2w"][:-1]  # the scene no longer matches its cameras
    with pytest.raises(NgpError, match="79 cameras"):
        export_cameras(meta, tmp_path / "d.json")


@pytest.mark.parametrize("name, message", [("c.txt", "cameras format '.txt'"), ("taken.json", "is a folder")])
def test_bad_output_is_one_line(tiny_snapshot: Path, tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "taken.json").mkdir()
    result = ngp("export", "cameras", str(tiny_snapshot), "--out", str(tmp_path / name))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngp: error:") and message in lines[0], result.stderr
