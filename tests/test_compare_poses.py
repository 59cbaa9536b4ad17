"""scripts/compare_poses.py (issue 18 item 7): poses from transforms.json, LLFF and COLMAP models, matched by image
name and compared after a similarity alignment, against hand-made answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ngp_app.data.synthetic import ring_poses
from tests.colmap_project import small_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from compare_poses import compare, main  # noqa: E402


def write_transforms(path: Path, poses: np.ndarray, names: list[str]) -> Path:
    frames = [{"file_path": f"images/{n}", "transform_matrix": m.tolist()} for n, m in zip(names, poses)]
    path.write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    return path


def turn(deg: float, axis: int) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def test_a_moved_copy_with_one_camera_turned_10_degrees(tmp_path: Path) -> None:
    ref = ring_poses(12)
    names = [f"view_{i}.png" for i in range(12)]
    world = turn(37.0, 2) @ turn(-20.0, 0)
    moved = np.tile(np.eye(4), (12, 1, 1))
    moved[:, :3, :3] = world @ ref[:, :3, :3]
    moved[:, :3, 3] = 2.5 * ref[:, :3, 3] @ world.T + np.array([1.0, -2.0, 0.5])
    moved[4, :3, :3] = moved[4, :3, :3] @ turn(10.0, 1)  # one camera turned about its own y axis
    a = write_transforms(tmp_path / "a.json", moved, names)
    b = write_transforms(tmp_path / "b.json", ref, names[:11] + ["other.png"])  # 11 names in common
    out = compare(str(a), str(b))
    assert out["matched"] == 11 and out["only_in_a"] == 1 and out["only_in_b"] == 1
    assert out["centre_error_max_pct"] < 1e-6 and out["scale"] == pytest.approx(0.4)
    assert out["rotation_error_max_deg"] == pytest.approx(10.0, abs=1e-3) and out["rotation_error_median_deg"] < 1e-4


def test_a_colmap_model_matches_the_poses_it_was_written_from(tmp_path: Path) -> None:
    pytest.importorskip("pycolmap")
    project = small_project(tmp_path / "project", seed=3)  # ring_poses(12) in a turned, scaled COLMAP world
    truth = write_transforms(tmp_path / "truth.json", ring_poses(12), [f"view_{i}.png" for i in range(12)])
    out = compare(str(project), str(truth))  # the project folder: its sparse/0
    assert out["matched"] == 12 and out["centre_error_max_pct"] < 1e-4 and out["rotation_error_max_deg"] < 1e-3
    assert out["scale"] == pytest.approx(1 / 1.5)


def test_an_llff_folder_is_read(tmp_path: Path) -> None:
    from tests.conftest import FERN as fern

    if not (fern / "poses_bounds.npy").is_file():
        pytest.skip("the shared fern capture is not here")
    out = compare(str(fern), str(fern))
    assert out["matched"] == 20 and out["centre_error_max_pct"] < 1e-6 and out["rotation_error_max_deg"] < 1e-4


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "missing"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("compare_poses: error: ") and "no such file" in err[0]
    a = write_transforms(tmp_path / "a.json", ring_poses(3), ["x.png", "y.png", "z.png"])
    b = write_transforms(tmp_path / "b.json", ring_poses(3), ["p.png", "q.png", "r.png"])
    assert main([str(a), str(b)]) == 2
    assert "only 0 cameras are in both" in capsys.readouterr().err


def test_the_beer_captures_llff_and_colmap_poses_agree(tmp_path: Path) -> None:
    """The beer capture ships its COLMAP model and the LLFF poses made from it: two readers (ours of
    poses_bounds.npy, pycolmap's of sparse/0), one set of poses."""
    pytest.importorskip("pycolmap")
    from tests.conftest import FERN

    beer = FERN.parent / "beer"
    if not (beer / "poses_bounds.npy").is_file():
        pytest.skip("the shared beer capture is not here")
    out = compare(str(beer), str(beer / "sparse" / "0"))
    assert out["matched"] == 71 and out["centre_error_max_pct"] < 1e-3 and out["rotation_error_max_deg"] < 1e-3
