"""The used-by story of issue 17, end to end and by X events only: launch with no scene, drop the bundled scene
folder from another process (XDND), orbit by dragging while it trains, stop training with T, wait until the still
view is sharp to at least half the viewport's resolution, then save a snapshot and render a short path video by
clicking the panel's buttons. The files and the screenshots are checked for what they show. Its own file: the app's
DearPyGui context can exist once per process. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_used_by.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gui_support import (
    ROOT,
    click_item,
    drag,
    require_app,
    screen,
    type_into,
    viewport_point,
    xdnd_drop,
    xdotool,
)

pytestmark = pytest.mark.gui

require_app(tools=("xdotool",))


def key_in_viewport(app, name: str) -> None:
    """Focus the viewport (as a window manager does on a click) and press a key there."""
    xdotool("windowfocus", "--sync", app.viewport.window._window, "key", name)
    app.pump(0.3)


def test_drop_orbit_stop_sharpen_then_save_a_snapshot_and_a_path_video(tmp_path: Path) -> None:
    import imageio.v3 as iio

    from ngp_app.gui.app import App
    from ngp_app.snapshot import load_snapshot

    scene = shutil.copytree(ROOT / "scenes" / "demo", tmp_path / "demo")  # exports go into <scene>/ngp-exports
    app = App(None, config="small", device="cpu", backend="torch", size=(480, 270), remember_windows=False)
    try:
        st, w = app.state, app.worker
        app.pump(1.0)
        assert st.current.scene is None
        empty = screen(app, "used_by_0_empty")

        xdnd_drop(app, scene)  # as a file manager drops a folder
        assert app.pump(180, until=lambda: st.current.scene is not None and st.runner.running and st.step >= 100), (
            st.status
        )
        assert Path(st.current.meta["path"]) == scene

        version, eye = st.camera.version, st.camera.camera(16, 9).c2w[:3, 3].clone()
        drag(*viewport_point(app, 0.35, 0.5), *viewport_point(app, 0.65, 0.55))  # orbit while it trains
        assert app.pump(10, until=lambda: st.camera.version != version)
        moved = float((st.camera.camera(16, 9).c2w[:3, 3] - eye).norm())
        assert moved > 0.05 and st.runner.running, moved

        key_in_viewport(app, "t")  # stop training
        assert app.pump(20, until=lambda: not st.runner.running)
        step = st.step

        def sharp() -> bool:
            frame = w.current()
            return frame is not None and frame.image.shape[1] >= 240 and w._last_key == w.view_key()

        assert app.pump(300, until=sharp), (w.latest and w.latest.image.shape, w.phase)
        app.pump(0.5)
        shot = screen(app, "used_by_1_sharp")
        h, wd = shot.shape[:2]
        middle = shot[h // 4 : 3 * h // 4, wd // 4 : 3 * wd // 4]
        assert middle.std() > 15.0  # the object, not a flat background
        assert np.abs(shot - empty).mean() > 5.0  # and not the empty viewport

        click_item(app, "snap_path:Save snapshot")
        snap_file = scene / "ngp-exports" / "snapshot.npz"
        assert app.pump(180, until=lambda: snap_file.is_file() and not st.jobs.active()), st.status
        snap = load_snapshot(snap_file)
        assert snap.step == step

        key_in_viewport(app, "k")  # a camera path of two keys, the view orbited between them
        drag(*viewport_point(app, 0.3, 0.5), *viewport_point(app, 0.7, 0.5))
        app.pump(0.5)
        key_in_viewport(app, "k")
        assert len(st.paths.keyframes) == 2, st.status
        type_into(app, "video_w", "64")
        type_into(app, "video_h", "48")
        v = st.paths.path_editor.video
        assert (v.width, v.height) == (64, 48), (v.width, v.height)
        click_item(app, "video_render")
        assert app.pump(20, until=lambda: any(j.label == "video" for j in st.jobs.visible())), (
            st.status,
            [j.label for j in st.jobs.visible()],
        )
        video = scene / "ngp-exports" / "video.mp4"
        assert app.pump(300, until=lambda: video.is_file() and not st.jobs.active()), (
            st.status,
            [j.describe() for j in st.jobs.visible()],
        )
        frames = iio.imread(video)
        assert len(frames) >= 10 and frames.shape[1:3] == (48, 64), frames.shape
        assert frames[0].std() > 10.0 and frames[-1].std() > 10.0  # the object in the first and the last frame
        assert np.abs(frames[0].astype(float) - frames[-1].astype(float)).mean() > 3.0  # the camera moved
        assert not st.status_is_error, st.status
    finally:
        app.close()
