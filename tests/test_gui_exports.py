"""The app's point cloud and camera exports, used as a person does: drop a snapshot on the viewport, open the
*Point cloud & cameras* section, type the paths and counts, click the buttons (X events under Xvfb). Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_exports.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gui_support import choose, click, click_item, empty_app, panel_point, require_app, type_into, xdnd_drop

pytestmark = pytest.mark.gui

require_app()

from ngp_app.gui.widgets import VIDEO_PATHS  # noqa: E402


@pytest.fixture(scope="module")
def app():
    yield from empty_app(8)


def ply_points(path: Path) -> np.ndarray:
    """The points of our binary PLY (x y z nx ny nz r g b per vertex), read by hand."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    n = int(next(ln for ln in data[:end].decode().splitlines() if ln.startswith("element vertex")).split()[-1])
    vertex = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    return np.frombuffer(data[end : end + n * vertex.itemsize], dtype=vertex)["p"]


def test_point_cloud_and_cameras_exported_by_clicks(app, tiny_snapshot: Path, tmp_path: Path) -> None:
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import read_snapshot_meta

    st = app.state
    xdnd_drop(app, tiny_snapshot)
    assert app.pump(60, until=lambda: st.current.snapshot_path is not None and st.loader.loading is None), st.status
    click_item(app, "cloud_header")
    app.pump(0.3)

    type_into(app, "cloud_out", str(tmp_path / "cloud.txt"))  # a wrong format: one line, nothing written
    click_item(app, "cloud_export")
    assert app.pump(10, until=lambda: st.status_is_error and ".txt" in st.status), st.status
    import dearpygui.dearpygui as dpg

    assert app.pump(5, until=lambda: dpg.is_item_shown("error_modal"))  # the app says it and keeps running
    app.pump(0.3)
    click(*panel_point("error_ok"))
    assert app.pump(5, until=lambda: not dpg.is_item_shown("error_modal"))

    type_into(app, "cloud_out", str(tmp_path / "cloud.ply"))
    type_into(app, "cloud_points", "1500")
    click_item(app, "cloud_export")
    assert app.pump(240, until=lambda: "saved point cloud" in st.status or "cloud.ply" in st.status), st.status
    assert not st.status_is_error, st.status
    points = ply_points(tmp_path / "cloud.ply")
    assert 0 < len(points) <= 1500 and f"{len(points)} points" in st.status
    # in the scene's transforms.json coordinates: inside the box (side 1/0.33 around the origin)
    assert np.abs(points).max() <= 0.5 / 0.33 + 1e-3

    type_into(app, "cameras_out", str(tmp_path / "cams" / "transforms.json"))
    click_item(app, "cameras_out:Export cameras (transforms.json)")
    assert app.pump(10, until=lambda: "cameras (poses as loaded) to" in st.status), st.status
    again = load_scene(tmp_path / "cams" / "transforms.json", "all", downscale=8)
    meta = read_snapshot_meta(tiny_snapshot)["scene"]
    assert again.n_frames == len(meta["c2w"])
    assert torch.allclose(again.c2w, torch.tensor(meta["c2w"]), atol=1e-5)


def test_a_sharp_video_by_clicks(app, tiny_snapshot: Path, tmp_path: Path) -> None:
    """The video section's *samples per pixel* reaches the render: 2 samples give other frames than 1."""
    import imageio.v2 as iio2

    st = app.state
    if st.current.snapshot_path is None:
        xdnd_drop(app, tiny_snapshot)
        assert app.pump(60, until=lambda: st.current.snapshot_path is not None and st.loader.loading is None)
    choose(app, "video_path", next(k for k, v in VIDEO_PATHS.items() if v == "orbit"))
    type_into(app, "video_frames", "2")
    type_into(app, "video_w", "32")
    type_into(app, "video_h", "24")
    frames = {}
    for spp in (1, 2):
        out = tmp_path / f"spp{spp}.gif"
        type_into(app, "video_spp", str(spp))
        type_into(app, "video_out", str(out))
        click_item(app, "video_render")
        assert app.pump(120, until=lambda out=out: out.is_file() and "saved video" in st.status), st.status
        frames[spp] = np.stack(list(iio2.mimread(out)))
    assert st.paths.path_editor.video.spp == 2
    assert frames[1].shape == frames[2].shape and frames[1].shape[0] == 2
    assert not np.array_equal(frames[1], frames[2])
