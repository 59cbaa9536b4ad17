"""The scene box in the app (issue 18 item 2): the share of SfM points outside it, the box that holds them, and
changing it: an import's transforms.json re-converted in another box (poses and points kept), any other scene's
file left alone with the box kept for the session. (The clicks themselves: tests/test_gui_import_app.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ngp_app.data.importer.pipeline import rebox_import
from ngp_app.errors import NgpError
from ngp_app.gui.importing import box_holding, outside_box, points_said
from ngp_app.gui.overlays import MODE_OVERLAYS
from tests.conftest import DEMO, wait_for


def test_points_outside_the_box_by_hand() -> None:
    # box of side 4 centred at 0.5: [-1.5, 2.5] on every axis
    xyz = np.array([[0.5, 0.5, 0.5], [2.4, -1.4, 0.0], [2.6, 0.5, 0.5], [0.5, 0.5, -1.6], [-1.5, 2.5, 2.5]])
    assert outside_box(xyz, 4.0).tolist() == [False, False, True, True, False]
    assert outside_box(xyz, 8.0).tolist() == [False] * 5
    said = points_said(xyz, 4.0)
    assert said.startswith("5 SfM points, 40.0 % outside the box") and "(8 holds 99 %)" in said
    assert points_said(np.zeros((0, 3)), 4.0) == ""


def test_the_box_that_holds_the_points() -> None:
    g = np.random.default_rng(0)
    inner = 0.5 + g.uniform(-2.9, 2.9, (990, 3))  # half-side 2.9: a box of 8 holds them, 4 does not
    stray = 0.5 + g.uniform(-60, 60, (10, 3))  # 1 %: ignored, as ngp import ignores them
    assert box_holding(np.concatenate([inner, stray])) == 8
    assert box_holding(0.5 + g.uniform(-0.4, 0.4, (100, 3))) == 1
    assert box_holding(0.5 + g.uniform(-500, 500, (100, 3))) == 128  # instant-ngp's largest


def _import_like(folder: Path) -> Path:
    """The demo scene as if ngp import had made it (its summary in transforms.json)."""
    shutil.copytree(DEMO, folder)
    data = json.loads((folder / "transforms_train.json").read_text())
    data["aabb_scale"] = 4
    data["ngp_import"] = {"aabb_scale": 4, "registered": len(data["frames"]), "verdict": "good"}
    (folder / "transforms.json").write_text(json.dumps(data))
    for name in ("transforms_train.json", "transforms_val.json", "transforms_test.json"):
        (folder / name).unlink(missing_ok=True)
    return folder


def test_rebox_rewrites_an_import_and_keeps_its_poses(tmp_path: Path) -> None:
    scene = _import_like(tmp_path / "scene")
    before = json.loads((scene / "transforms.json").read_text())
    assert rebox_import(scene, 16) == 4
    after = json.loads((scene / "transforms.json").read_text())
    assert after["aabb_scale"] == 16 and after["ngp_import"]["aabb_scale"] == 16
    assert after["ngp_import"]["aabb_scale_suggested"] == 4
    assert after["frames"] == before["frames"]
    assert rebox_import(scene / "transforms.json", 8) == 16
    assert json.loads((scene / "transforms.json").read_text())["ngp_import"]["aabb_scale_suggested"] == 4
    for bad in (0, 3, 256):
        with pytest.raises(NgpError, match="power of two"):
            rebox_import(scene, bad)
    assert not list(scene.glob("*.tmp*"))  # atomic writes leave nothing behind


def test_rebox_leaves_a_scene_it_did_not_make_alone(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(DEMO, scene)
    data = json.loads((scene / "transforms_train.json").read_text())
    (scene / "transforms.json").write_text(json.dumps(data))
    text = (scene / "transforms.json").read_text()
    with pytest.raises(NgpError, match="not made by ngp import"):
        rebox_import(scene, 8)
    assert (scene / "transforms.json").read_text() == text


def _reload_in(state, box: int) -> None:
    assert state.reload_scene(aabb_scale=box) is not None
    assert wait_for(lambda: state.apply_pending() or state.current.meta.get("aabb_scale") == box, 120), state.status


def test_the_app_reboxes_an_import_in_its_file(state, tmp_path: Path) -> None:
    scene = _import_like(tmp_path / "scene")
    assert state.open_path(scene, start=False)
    assert state.current.meta["aabb_scale"] == 4
    _reload_in(state, 16)
    assert state.trainer.grid.aabb_scale == 16 and state.settings.crop_max[0] == pytest.approx(8.5)
    assert json.loads((scene / "transforms.json").read_text())["aabb_scale"] == 16
    assert "written to transforms.json" in state.status
    state.set_mode("points")  # no ply_file_path: the view says why it shows no points
    assert "no sparse points" in state.status and MODE_OVERLAYS["points"][-1] == "box"


def test_the_app_keeps_another_scenes_box_for_the_session(state, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(DEMO, scene)
    files = {p.name: p.read_bytes() for p in scene.glob("*.json")}
    assert state.open_path(scene, start=False)
    _reload_in(state, 8)
    assert state.trainer.grid.aabb_scale == 8 and "for this session" in state.status
    assert {p.name: p.read_bytes() for p in scene.glob("*.json")} == files  # the user's files untouched
    assert state.reload_scene() is not None  # reloading again (another size, say) keeps the chosen box
    assert wait_for(lambda: state.apply_pending(), 120)
    assert state.current.meta["aabb_scale"] == 8
