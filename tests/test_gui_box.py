"""The scene box in the real app, by X events (issue 18 item 2): a scene ``ngp import`` made, with SfM points, some far
outside its box; mode 7 draws the box and the scene line says the share outside; choosing a larger box and clicking
*Reload in this box* re-converts the import (transforms.json gets the box, poses kept) and trains it. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_box.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gui_support import choose, click_item, empty_app, require_app, xdnd_drop

pytestmark = pytest.mark.gui

require_app()

from ngp_app.data.importer.points import write_points_ply  # noqa: E402
from tests.conftest import DEMO  # noqa: E402


@pytest.fixture(scope="module")
def app():
    yield from empty_app(4)


def imported_scene(folder: Path) -> Path:
    """The demo scene as ``ngp import`` would leave it: one transforms.json with its summary, aabb_scale 2, and
    1,000 sparse points, a fifth of them far out (a room's walls)."""
    shutil.copytree(DEMO, folder)
    data = json.loads((folder / "transforms_train.json").read_text())
    for name in ("transforms_train.json", "transforms_val.json", "transforms_test.json"):
        (folder / name).unlink(missing_ok=True)
    g = np.random.default_rng(0)
    near = g.uniform(-1.0, 1.0, (800, 3))  # transforms.json units: x 0.33 -> well inside a box of 2
    far = g.uniform(-1.0, 1.0, (200, 3)) * 8.0 + np.sign(g.uniform(-1, 1, (200, 3))) * 12.0  # 4-7 ngp units out
    write_points_ply(
        folder / "sparse_points.ply", np.concatenate([near, far]).astype(np.float32), np.full((1000, 3), 200, np.uint8)
    )
    data.update(
        aabb_scale=2,
        ply_file_path="sparse_points.ply",
        ngp_import={"aabb_scale": 2, "registered": len(data["frames"]), "verdict": "good"},
    )
    (folder / "transforms.json").write_text(json.dumps(data))
    return folder


def test_the_box_is_drawn_and_a_click_reconverts_the_import(app, tmp_path: Path) -> None:
    import dearpygui.dearpygui as dpg

    scene = imported_scene(tmp_path / "room")
    st = app.state
    xdnd_drop(app, scene)
    assert app.pump(120, until=lambda: st.current.meta.get("aabb_scale") == 2 and st.trainer is not None), st.status
    shown = lambda: dpg.get_value("scene_info").replace("\n", " ")  # noqa: E731
    assert app.pump(5, until=lambda: "1,000 SfM points, 20.0 % outside the box (16 holds 99 %)" in shown()), shown()
    assert dpg.get_value("box_size") == "2"
    before = json.loads((scene / "transforms.json").read_text())
    choose(app, "box_size", "16")
    assert dpg.get_value("box_size") == "16"
    click_item(app, "scene_rebox")
    assert app.pump(120, until=lambda: st.current.meta.get("aabb_scale") == 16), (st.status, shown())
    assert "aabb_scale 16 written to transforms.json" in st.status
    assert app.pump(5, until=lambda: "0.0 % outside the box" in shown() and "aabb_scale 16" in shown()), shown()
    after = json.loads((scene / "transforms.json").read_text())
    assert after["aabb_scale"] == 16 and after["ngp_import"]["aabb_scale_suggested"] == 2
    assert after["frames"] == before["frames"]
    assert st.trainer.grid.aabb_scale == 16
    # mode 7 shows the points, the cameras and the box
    app.viewport.window.dispatch_event("on_key_press", __import__("pyglet").window.key._7, 0)
    app.tick()
    assert st.settings.mode == "points" and {"points", "box"} <= set(st.view.overlay_names())
