"""The real app (pyglet viewport + DearPyGui panel) driven with synthetic input. Needs a display:

xvfb-run -a python -m pytest -m gui
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from gui_support import (
    ARTIFACTS,
    ROOT,
    choose,
    click,
    click_item,
    drag,
    require_app,
    screen,
    scroll_to,
    send,
    settle,
    type_into,
    viewport_point,
    xdotool,
)

pytestmark = pytest.mark.gui

require_app()
pyglet = pytest.importorskip("pyglet")

from pyglet.window import key, mouse  # noqa: E402

from ngp_app.data import synthetic  # noqa: E402

DEMO = ROOT / "scenes" / "demo"


@pytest.fixture(scope="module")
def app():
    from ngp_app.gui.app import App

    a = App(DEMO, config="small", device="cpu", backend="torch", downscale=8, size=(480, 270), remember_windows=False)
    a.state.settings.resolution_scale = 0.1  # keep CPU renders (and full refinement) cheap
    assert a.state.loader.loading == "demo"  # the scene loads in the background while the windows run
    assert a.pump(60, until=lambda: a.state.loader.loading is None and a.state.trainer is not None), a.state.status
    yield a
    a.close()


def test_training_runs_while_frames_are_drawn(app):
    assert app.state.runner.running
    s0, f0 = app.state.step, app.frames
    assert app.pump(60, until=lambda: app.state.step >= s0 + 3 and app.worker.frames >= 3)
    assert app.frames > f0 + 10  # the UI kept drawing while training
    assert app.viewport.frames > 10
    import dearpygui.dearpygui as dpg

    assert dpg.is_item_shown("loss_plot") and dpg.is_item_shown("psnr_plot")  # shown once there is a history


def test_a_still_view_sharpens_once_training_stops(app):
    st, w = app.state, app.worker
    budget, st.runner.pause_s = w.refine_budget_ms, 0.3
    w.refine_budget_ms = 0.001  # while training, every refinement is over budget
    try:
        if not st.runner.running:
            send(app, "on_key_press", key.T, 0)
        st.dynres.reset(0.02)
        st.camera.orbit(1, 0)  # a new view: rendered small first
        assert app.pump(120, until=lambda: w.frames >= 2 and w._last_key == w.view_key() and w.latest.scale < 0.1)
        n = -1
        while n != w.frames:  # stop while the render thread idles between training steps
            n = w.frames
            app.pump(0.5)
        assert w.latest.scale < 0.1
        send(app, "on_key_press", key.T, 0)  # stop training; the mouse stays still
        assert not st.runner.running
        assert app.pump(120, until=lambda: w.latest.scale >= 0.1 - 1e-6), w.latest.scale
        assert w.frames - n <= 8  # within a few frames: the doubling steps up to the cap (from 0.01 at worst)
    finally:
        w.refine_budget_ms, st.runner.pause_s = budget, 0.001
        if not st.runner.running:
            send(app, "on_key_press", key.T, 0)  # as the other tests expect: training


def test_orbit_drag_and_zoom_change_the_image(app):
    send(app, "on_key_press", key.T, 0)  # pause training so only the camera changes the picture
    assert not app.state.runner.running
    app.state.settings.show_hud = False
    assert settle(app)
    before = screen(app, "before_orbit")
    frame = app.worker.latest.image  # the viewport shows the worker's uint8 RGBA frame, scaled to the window
    assert frame.shape[2] == 4 and (frame[..., 3] == 255).all()

    # The texture is scaled with linear filtering, so one window pixel mixes neighbouring texels. The two window
    # pixels either side of a texel centre sit symmetrically about it: their mean is that texel's value.
    def straddle(n_texels: int, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
        centre = (np.arange(n_texels) + 0.5) * n_pixels / n_texels - 0.5  # in pixel-index units
        lo = np.clip(np.floor(centre).astype(np.int64), 0, n_pixels - 2)
        return lo, lo + 1

    y0, y1 = straddle(frame.shape[0], before.shape[0])
    x0, x1 = straddle(frame.shape[1], before.shape[1])
    shown = (before[y0][:, x0] + before[y0][:, x1] + before[y1][:, x0] + before[y1][:, x1]) / 4
    above_status = y1 < before.shape[0] - 40  # the status line is drawn over the bottom of the picture
    diff = np.abs(shown - frame[..., :3])[above_status]
    assert diff.mean() < 0.25 and diff.max() <= 3.0  # (channels swapped: 0.7 mean; rows flipped: 10)
    v = app.state.camera.version
    send(app, "on_mouse_drag", 200, 100, 60, 25, mouse.LEFT, 0)
    assert app.state.camera.version > v
    assert settle(app)
    after_orbit = screen(app, "after_orbit")
    assert np.abs(after_orbit - before).mean() > 0.5
    send(app, "on_mouse_scroll", 200, 100, 0, 4)
    assert settle(app)
    after_zoom = screen(app, "after_zoom")
    assert np.abs(after_zoom - after_orbit).mean() > 0.5
    app.state.settings.show_hud = True


def test_a_still_view_sharpens_while_training(app):
    """(After the orbit test: the frames it trains on change the picture that test compares texel by texel; before
    the tests that open other scenes, whose untrained grids make every frame slow.) The first frames of a view are
    over the refinement budget (an untrained model's dense grid); once frames are affordable, a still view sharpens
    while training goes on, without touching the mouse (issue 17, item 3). The cap is a quarter of the window and
    the budget generous once frames are affordable, so a loaded machine's slow frames still fit it: what is tested
    is that the view grows, not how fast this machine renders."""
    st, w = app.state, app.worker
    budget, cap_before = w.refine_budget_ms, st.settings.resolution_scale
    cap = 0.25
    if not st.runner.running:  # T in the viewport, focused as a window manager focuses a clicked window
        xdotool("windowfocus", "--sync", app.viewport.window._window, "key", "t")
        assert app.pump(5, until=lambda: st.runner.running)
    try:
        st.settings.resolution_scale = cap
        w.refine_budget_ms = 0.001  # every frame is over budget: refinement stops at once
        st.dynres.reset(0.02)
        drag(*viewport_point(app, 0.5, 0.5), *viewport_point(app, 0.52, 0.5))  # a small orbit by mouse
        assert app.pump(60, until=lambda: w._last_key == w.view_key() and w.frames > 0 and w.latest.scale < cap / 2)
        small = w.latest.scale
        w.refine_budget_ms = 120_000.0  # frames are affordable now; the mouse stays still
        assert app.pump(180, until=lambda: w.latest.scale >= cap - 1e-6), (
            small,
            w.latest.scale,
            w.latest.ms,
            st.step,
            st.runner.running,
            st.status,
        )
        assert st.runner.running and w._last_key == w.view_key()  # sharpened while training, in the same view
    finally:
        w.refine_budget_ms = budget
        st.settings.resolution_scale = cap_before


def test_view_keys_fly_cameras_modes_and_hud(app):
    st = app.state
    eye = st.camera.eye.copy()
    send(app, "on_key_press", key.W, 0)
    app.pump(0.2)
    send(app, "on_key_release", key.W, 0)
    assert np.dot(st.camera.eye - eye, st.camera.basis()[2]) > 0  # flew forward
    send(app, "on_key_press", key.BRACKETRIGHT, 0)
    i = st.settings.gt_index
    assert np.allclose(st.camera.eye, st.current.train_cams[0][i][:, 3], atol=1e-4)
    send(app, "on_key_press", key.BRACKETRIGHT, 0)
    assert st.settings.gt_index == (i + 1) % st.current.scene.n_frames
    send(app, "on_key_press", key.G, 0)
    assert st.settings.ground_truth
    hud = app.viewport.hud_text()  # no render size or time for a training image
    assert f"training image {st.settings.gt_index} (" in hud and "render " not in hud.split("\n")[0], hud
    assert app.pump(60, until=lambda: app.worker.latest is not None and app.worker._last_key == app.worker.view_key())
    st.settings.show_hud = False
    shown = screen(app, "ground_truth")  # a square training image in a 16:9 window: centred, dimmed margins
    st.settings.show_hud = True
    bg = np.asarray(st.settings.background) * 255 * 0.25
    assert np.abs(shown[:-40, -80:] - bg).max() < 3 and np.abs(shown[:-40, 200:280] - bg).max() > 20
    send(app, "on_key_press", key._2, 0)
    assert st.settings.mode == "depth" and not st.settings.ground_truth
    send(app, "on_key_press", key._1, 0)
    send(app, "on_key_press", key.TAB, 0)
    assert not st.settings.show_hud
    send(app, "on_key_press", key.TAB, 0)
    send(app, "on_key_press", key.F11, 0)
    app.pump(0.3)
    send(app, "on_key_press", key.ESCAPE, 0)  # leaves fullscreen, never quits
    app.pump(0.3)
    assert app.running and not app.viewport.window.fullscreen
    send(app, "on_key_press", key.V, 0)
    assert np.allclose(st.camera.target, st.camera.home[0])


def test_panel_widgets_drive_the_state(app, tmp_path):
    import dearpygui.dearpygui as dpg

    st = app.state

    def use(tag, value):
        dpg.set_value(tag, value)
        dpg.get_item_callback(tag)(tag, value)  # as DearPyGui calls a two-argument callback
        app.tick()

    use("mode", "Occupancy cells")
    assert st.settings.mode == "occupancy"
    use("mode", "RGB")
    use("target_fps", 12.0)
    assert st.settings.target_fps == 12.0
    use("background", [0.0, 0.0, 255.0, 255.0])
    assert st.settings.background == (0.0, 0.0, 1.0)
    use("fov", 70.0)
    assert abs(st.camera.fov_deg - 70.0) < 1e-6
    use("crop_max", [0.6, 0.6, 0.6, 0.0])
    assert np.allclose(st.settings.crop_max, 0.6)
    use("crop_max", [1.0, 1.0, 1.0, 0.0])
    use("background", [255.0, 255.0, 255.0, 255.0])
    dpg.set_value("shot_path", str(tmp_path / "shot.png"))
    dpg.set_value("shot_w", 24)
    dpg.set_value("shot_h", 16)
    dpg.set_value("shot_alpha", True)
    dpg.get_item_callback([c for c in dpg.get_all_items() if dpg.get_item_label(c) == "Save screenshot PNG"][0])()
    assert app.pump(30, until=lambda: (tmp_path / "shot.png").exists())
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "shot.png").shape == (16, 24, 4)
    dpg.set_value("snap_path", str(tmp_path / "snap.npz"))
    dpg.get_item_callback([c for c in dpg.get_all_items() if dpg.get_item_label(c) == "Save snapshot"][0])()
    assert app.pump(30, until=lambda: "saved snapshot" in st.status), st.status
    assert (tmp_path / "snap.npz").exists() and not st.status_is_error


def test_panel_callbacks_from_another_thread_run_on_the_ui_thread_in_order(app):
    import threading

    import dearpygui.dearpygui as dpg

    from ngp_app.gui.overlays import MODE_LABELS

    st, panel = app.state, app.panel
    seen: list[tuple[str, int]] = []
    real_set = panel._set

    def recording_set(name, value):
        seen.append((value, threading.get_ident()))
        real_set(name, value)

    panel._set = recording_set
    modes = ["depth", "opacity", "normals", "depth", next(iter(MODE_LABELS))] * 4
    toggles_before = st.runner.running
    mode_cb, toggle_cb = dpg.get_item_callback("mode"), dpg.get_item_callback("train_toggle")

    def clicker() -> None:  # as DearPyGui's own callback thread would call them
        for i, m in enumerate(modes):
            mode_cb("mode", MODE_LABELS[m])
            if i % 5 == 0:
                toggle_cb("train_toggle", None)
            time.sleep(0.002)

    t = threading.Thread(target=clicker)
    try:
        t.start()
        while t.is_alive():
            app.tick()
        app.tick()
    finally:
        panel._set = real_set
    assert [v for v, _ in seen] == modes  # every change, in the order it was made
    assert {tid for _, tid in seen} == {threading.get_ident()}  # all on the UI thread (this one)
    assert st.settings.mode == modes[-1] and st.runner.running == toggles_before  # four toggles: as before


def test_a_long_export_shows_progress_eta_and_cancel_in_the_panel_and_hud(app, tmp_path):
    import dearpygui.dearpygui as dpg

    st = app.state
    out = tmp_path / "big.png"
    job = st.exports.screenshot(out, 1920, 1080)  # minutes on a CPU: cancelled long before the end
    row = f"job_{job.id}"
    assert app.pump(60, until=lambda: (job.fraction or 0) > 0.0 and dpg.does_item_exist(f"{row}_bar"))
    app.pump(0.3)
    assert dpg.get_value(f"{row}_bar") > 0.0 and "%" in dpg.get_item_configuration(f"{row}_bar")["overlay"]
    assert "screenshot: rendering" in dpg.get_value(f"{row}_text") and "screenshot" in app.viewport.hud_text()
    assert dpg.is_item_shown(f"{row}_cancel")
    f = app.frames
    dpg.get_item_callback(f"{row}_cancel")()  # the row's Cancel button
    assert app.pump(30, until=lambda: job.state == "cancelled"), job.describe()
    assert app.frames > f and not out.exists() and "cancelled" in st.status


def test_a_bug_in_a_key_handler_is_one_line_and_the_app_keeps_running(app, tmp_path, monkeypatch):
    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(app.state.paths, "add_keyframe", lambda: 1 / 0)
    send(app, "on_key_press", key.K, 0)
    assert app.state.status.startswith("ngp: internal error: ZeroDivisionError") and app.state.status_is_error
    f = app.frames
    app.pump(0.5)
    assert app.running and app.frames > f + 5
    import dearpygui.dearpygui as dpg

    dpg.configure_item("error_modal", show=False)


def test_training_cameras_are_drawn_as_thin_gl_lines_at_window_resolution(app):
    from ngp_app.gui.overlays import CAMERA_COLOR, HIGHLIGHT_COLOR, rasterize

    st = app.state
    if st.runner.running:
        send(app, "on_key_press", key.T, 0)
    st.settings.show_hud = False
    send(app, "on_key_press", key._5, 0)
    assert st.settings.mode == "cameras"
    assert settle(app)
    frame = app.worker.latest.image  # the render: 10% of the window's size
    shown = screen(app, "cameras_overlay")
    w, h = app.viewport.window.get_framebuffer_size()

    def camera_pixels(img):
        d = np.minimum(
            np.abs(img[..., :3].astype(int) - CAMERA_COLOR[:3]).sum(-1),
            np.abs(img[..., :3].astype(int) - HIGHLIGHT_COLOR[:3]).sum(-1),
        )
        return int((d < 30).sum())

    assert camera_pixels(frame) == 0  # nothing drawn into the low-resolution render
    expected = camera_pixels(rasterize(np.zeros((h, w, 3), np.uint8), st.view.overlay_layers(), st.camera.camera(w, h)))
    got = camera_pixels(shown)
    # 1-pixel lines at window resolution: about as many pixels as a rasteriser at that size draws, where lines
    # drawn into the render and scaled up would cover ~10x more
    assert expected > 50 and 0.4 * expected < got < 2.5 * expected, (got, expected)
    send(app, "on_key_press", key._1, 0)
    st.settings.show_hud = True


def test_k_adds_a_keyframe_and_the_panel_lists_it(app):
    import dearpygui.dearpygui as dpg

    n = len(app.state.paths.keyframes)
    xdotool("windowfocus", "--sync", app.viewport.window._window, "key", "k")  # K in the focused viewport
    assert app.pump(5, until=lambda: len(app.state.paths.keyframes) == n + 1)
    app.tick()
    assert len(dpg.get_item_configuration("path_keys")["items"]) == n + 1
    xdotool("key", "k")  # again without moving: no second, identical key
    app.pump(0.5)
    assert len(app.state.paths.keyframes) == n + 1 and "already" in app.state.status
    app.state.paths.clear_keyframes()


def test_keys_start_stop_and_reset_training(app):
    send(app, "on_key_press", key.T, 0)
    assert app.pump(30, until=lambda: app.state.step > 0 and app.state.runner.running)
    send(app, "on_key_press", key.R, 0)  # reset: fresh trainer, keeps running
    assert app.state.runner.running and app.state.step < 3
    send(app, "on_key_press", key.T, 0)
    assert not app.state.runner.running
    s = app.state.step
    app.pump(0.5)
    assert app.state.step == s
    send(app, "on_key_press", key.T, 0)
    assert app.pump(30, until=lambda: app.state.step > s)


def test_dropping_a_non_scene_shows_an_error_and_keeps_running(app, tmp_path):
    (tmp_path / "readme.txt").write_text("not a scene")
    scene = app.state.current.scene
    send(app, "on_file_drop", 10, 10, [str(tmp_path)])
    assert app.pump(10, until=lambda: app.state.loader.loading is None)
    assert app.state.status_is_error and "not a scene" in app.state.status
    f = app.frames
    app.pump(1.0)
    assert app.running and app.frames > f and app.state.current.scene is scene and app.state.runner.running
    import dearpygui.dearpygui as dpg

    assert dpg.get_value("status_full") == app.state.status and dpg.is_item_shown("error_modal")
    dpg.configure_item("error_modal", show=False)


def test_dropping_a_scene_folder_switches_scenes(app, tmp_path):
    import dearpygui.dearpygui as dpg

    other = synthetic.make_scene(tmp_path / "tiny", width=16, height=16, n_train=4, n_val=1, n_test=1, progress=False)
    old, v = app.state.trainer, app.viewport
    assert app.pump(30, until=lambda: v.texture is not None)  # the old scene's picture is up
    generation = app.state.current.generation
    send(app, "on_file_drop", 10, 10, [str(other)])
    assert app.state.loader.loading == "tiny" and app.running
    # every drawn frame from the drop on shows the scene of that moment's generation, or nothing: after the swap,
    # never the old scene's picture under the new scene's HUD
    shown: list[bool] = []

    def check() -> bool:
        gen = app.state.current.generation
        shown.append(v.texture is None or v.frame_generation == gen)
        return app.state.loader.loading is None and gen > generation and v.texture is not None and app.state.step >= 2

    assert app.pump(60, until=check), app.state.status
    assert all(shown), shown.count(False)
    assert not app.state.status_is_error, app.state.status
    assert app.state.current.scene.n_frames == 4 and Path(app.state.current.scene.path) == Path(other)
    assert "4 training frames (1 held out for evaluation)" in dpg.get_value("scene_info")  # the held-out frame said
    assert app.state.trainer is not old and app.state.runner.running
    assert "first picture" not in v.hud_text()


def test_images_at_loads_a_scene_smaller_and_reload_applies_it(app, tmp_path):
    """Issue 17 UX: the Scene section's *images at* choice sets the size the next scene loads at, and *Reload at
    this size* opens the current scene again at it; the scene line says the size. By clicks only."""
    import dearpygui.dearpygui as dpg

    st = app.state
    sized = synthetic.make_scene(tmp_path / "sized", width=32, height=32, n_train=4, n_val=1, n_test=1, progress=False)
    assert dpg.get_value("load_size") == "1/8"  # the app was started with --downscale 8

    def loaded(width: int) -> bool:
        return st.loader.loading is None and st.current.scene is not None and st.current.meta.get("width") == width

    send(app, "on_file_drop", 10, 10, [str(sized)])
    assert app.pump(60, until=lambda: loaded(4) and Path(st.current.meta["path"]) == sized), st.status
    for label, width in (("1/2", 16), ("full size", 32), ("1/8", 4)):
        choose(app, "load_size", label)
        assert dpg.get_value("load_size") == label and st.loader.downscale == {"1/2": 2, "full size": 1}.get(label, 8)
        click_item(app, "scene_reload")
        assert app.pump(60, until=lambda w=width: loaded(w)), (label, st.status)
        assert st.current.scene.image(0).shape[:2] == (width, width)
        app.pump(0.3)
        said = dpg.get_value("scene_info")
        assert f"{width}x{width} pixels" in said and (("loaded at 1/" in said) == (width != 32)), said


def test_open_dialog_takes_a_typed_transforms_json(app, tmp_path):
    import dearpygui.dearpygui as dpg

    other = synthetic.make_scene(tmp_path / "dialog", width=16, height=16, n_train=3, n_val=1, n_test=1, progress=False)
    (other / "transforms.json").write_text((other / "transforms_train.json").read_text())
    width = dpg.get_viewport_width()
    dpg.get_item_callback(
        [c for c in dpg.get_all_items() if dpg.get_item_label(c) == "Open scene, snapshot, photos or video..."][0]
    )()
    app.tick()
    assert app.panel.files.shown and dpg.get_viewport_width() >= 900  # roomy: the panel widens for it
    dpg.get_item_callback("fd_path")("fd_path", str(other))  # type the folder, Enter: the dialog goes there
    app.tick()
    assert app.panel.files.shown and app.panel.files.browser.folder == other
    (other / "clip.mp4").write_bytes(b"")  # a video is listed too (opening one imports it)
    assert {"transforms.json", "clip.mp4"} <= {e.name for e in app.panel.files.browser.entries()}
    dpg.get_item_callback("fd_path")("fd_path", str(other / "train"))  # a folder of photos does not look empty
    app.tick()
    assert any(e.name.endswith(".png") for e in app.panel.files.browser.entries())
    assert "imported" in dpg.get_value("fd_hint")  # the dialog says what opening photos or a video does
    dpg.get_item_callback("fd_path")("fd_path", str(other))
    app.tick()
    dpg.get_item_callback("fd_path")("fd_path", "transforms.json")  # type the file name, Enter: opened as typed
    app.tick()
    assert not app.panel.files.shown and dpg.get_viewport_width() == width
    assert app.pump(60, until=lambda: app.state.loader.loading is None)
    assert not app.state.status_is_error, app.state.status
    assert Path(app.state.current.scene.path) == other / "transforms.json"  # the file typed, not transforms.npz
    app.pump(0.5)
    assert app.running
    assert dpg.get_value("shot_path") == str(other / "ngp-exports" / "screenshot.png")  # exports beside it


def test_windows_side_by_side_and_the_wheel_scrolls_the_panel(app):
    import dearpygui.dearpygui as dpg

    panel, view = app.panel.rect(), app.viewport.rect()
    assert not panel.overlaps(view) and view.x >= panel.x + panel.width
    for name in ("loss", "psnr"):  # plots ignore the mouse, so the wheel over them scrolls the panel
        assert dpg.get_item_configuration(f"{name}_plot")["no_inputs"]


def test_screenshots_of_both_windows_are_written_and_not_blank(app):
    import imageio.v3 as iio

    app.pump(1.0)
    paths = app.save_screenshots(ARTIFACTS)
    import shutil

    expected = {"viewport.png", "panel.png"} | ({"screen.png"} if shutil.which("import") else set())
    assert {p.name for p in paths} == expected
    for p in paths:
        img = iio.imread(p)[..., :3].astype(np.float32)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 5.0, f"{p} looks blank"


def test_camera_path_editor_adds_keys_previews_and_renders_a_video(app, tmp_path):
    """The camera-path workflow through the panel: three keys from the view, the path drawn as GL lines, timing,
    a preview played to its end, and a 12-frame video rendered by a background job."""
    import dearpygui.dearpygui as dpg
    import imageio.v2 as iio2

    st, ed = app.state, app.state.paths.path_editor
    if st.runner.running:
        send(app, "on_key_press", key.T, 0)

    def use(tag, value=None):
        if value is not None:
            dpg.set_value(tag, value)
        dpg.get_item_callback(tag)(tag, value)
        app.tick()

    use("path_clear")
    for _ in range(3):
        send(app, "on_mouse_drag", 200, 100, 70, 10, mouse.LEFT, 0)
        use("path_add")
    assert len(ed.path.keys) == 3 and ed.selected == 2
    assert len(dpg.get_item_configuration("path_keys")["items"]) == 3
    path_layer = next(lay for lay in st.view.overlay_layers() if lay.name == "path")
    app.tick()
    assert app.viewport.overlay.drawn >= len(path_layer.vertices) > 3 * 16  # the spline and three key frusta
    use("path_keys", dpg.get_item_configuration("path_keys")["items"][1])  # a click on key 2 jumps there
    assert ed.selected == 1 and np.allclose(st.camera.c2w().numpy(), ed.path.keys[1].c2w, atol=1e-5)
    use("path_split")  # a key halfway to key 3, on the path, then removed again
    assert len(ed.path.keys) == 4 and ed.selected == 2 and ed.path.keys[2].time == 3.0
    use("path_delete")
    assert len(ed.path.keys) == 3
    use("path_keys", dpg.get_item_configuration("path_keys")["items"][1])
    use("path_duration", 1.1)
    use("path_fps", 10.0)
    assert math.isclose(ed.path.end_time, 1.1) and ed.path.n_frames() == 12
    use("path_play")
    assert ed.playing and dpg.get_item_configuration("path_play")["label"] == "Pause"
    eyes = []
    assert app.pump(20, until=lambda: eyes.append(st.camera.eye.copy()) or not ed.playing)
    assert ed.play_time == ed.path.end_time and np.allclose(st.camera.c2w().numpy(), ed.path.keys[2].c2w, atol=1e-5)
    assert len({tuple(np.round(e, 4)) for e in eyes}) >= 3  # the view moved along the path
    use("path_scrub", 0.5)
    assert np.allclose(st.camera.c2w().numpy(), ed.path.evaluate(0.5).c2w, atol=1e-5)
    out = tmp_path / "path.mp4"
    dpg.set_value("video_out", str(out))
    use("video_w", 32)
    use("video_h", 24)
    use("video_render")
    job = next(j for j in st.jobs.visible() if j.label == "video")
    assert app.pump(180, until=lambda: not job.active), job.describe()
    assert job.state == "done", job.describe()
    app.tick()
    frames = list(iio2.get_reader(out, format="FFMPEG").iter_data())
    assert len(frames) == 12 and frames[0].shape == (24, 32, 3)
    shown = dpg.get_value("video_last")  # a long path is cut in the middle, keeping its folder's end and file name
    assert shown.startswith("last video:") and f"{out.parent.name}/{out.name}" in shown and str(out) in st.status


def test_per_image_table_rows_fly_to_a_frame_and_exclude_it(app):
    """Clicks where a person clicks: the section header, a row's index (flies there), its *train* checkbox (leaves
    the frame out and brings it back); the rows hold still under the pointer while losses re-sort them."""
    import dearpygui.dearpygui as dpg

    st = app.state
    if not st.runner.running:
        send(app, "on_key_press", key.T, 0)
    assert app.pump(30, until=lambda: st.step > 0)
    st.images.refresh_image_table(force=True)
    click_item(app, "images_header")
    assert app.pump(5, until=lambda: dpg.get_value("images_header"))  # the section opened

    def shown_order() -> list[str]:
        return [dpg.get_item_label(dpg.get_item_children(r, 1)[0]) for r in dpg.get_item_children("images_table", 1)]

    rows = st.images.image_table.rows
    assert rows and len(dpg.get_item_children("images_table", 1)) == len(rows)
    i = int(shown_order()[0])  # the top row
    click_item(app, f"images_row_{i}")
    assert app.pump(5, until=lambda: st.images.compare_index == i)
    app.pump(0.2)
    assert app.viewport.inset.rect[2] > 0  # the frame's image beside the render
    x, y, w, h = app.viewport.inset.rect
    aspect = float(st.current.scene.widths[i]) / float(st.current.scene.heights[i])
    assert x + w <= app.viewport.window.width and abs(w / h - aspect) < 0.05
    click_item(app, f"images_train_{i}")
    assert app.pump(5, until=lambda: st.current.scene.excluded == (i,)), st.status
    assert not dpg.get_value(f"images_train_{i}") and st.images.compare_index == i  # the click did not fly elsewhere
    # new losses that would re-sort the rows wait while the pointer is over the table
    before = shown_order()
    for r in st.images.image_table.rows:  # the last row becomes the worst
        r.mse = 1.0 if r.index == st.images.image_table.rows[-1].index else 0.001
    st.images.image_table.sort_by("loss", True)
    st.images.image_table.sort_by("loss", True)  # the same sort as shown: only the losses changed
    app.pump(0.5)
    assert shown_order() == before
    vx, vy = dpg.get_viewport_pos()
    xdotool("mousemove", vx + 5, vy + 5)  # the pointer leaves the table: the rows take the new order
    assert app.pump(5, until=lambda: shown_order() == [str(r.index) for r in st.images.image_table.rows[: len(before)]])
    click_item(app, f"images_train_{i}")
    assert app.pump(5, until=lambda: st.current.scene.excluded == ())
    click_item(app, "images_hide")
    assert app.pump(5, until=lambda: st.images.compare_index is None and app.viewport.inset.rect[2] == 0)


def test_panel_controls_hold_still_while_the_status_and_jobs_change(app, tmp_path):
    """A job row appearing and going, and a long status line, move no control: a click aimed at a checkbox before
    they changed still lands on it (issue 17 item 6). The job is started by clicking its button."""
    import dearpygui.dearpygui as dpg

    st = app.state
    dpg.set_value("shot_path", str(tmp_path / ("a-rather-long-folder-name-" * 4) / "shot.png"))  # a long status
    dpg.set_value("shot_w", 96)
    dpg.set_value("shot_h", 54)
    tags = ("snap_optimizer", "shot_alpha", "shot_save", "train_toggle", "video_render", "images_header")

    def places() -> dict[str, tuple]:
        app.tick()
        return {t: tuple(dpg.get_item_rect_min(t)) for t in tags if dpg.is_item_visible(t)}

    scroll_to(app, "shot_save")
    target = scroll_to(app, "snap_optimizer")
    before, value = places(), dpg.get_value("snap_optimizer")
    assert "shot_save" in before and "snap_optimizer" in before
    assert app.pump(30, until=lambda: not st.jobs.visible())  # an earlier test's job row has gone
    click_item(app, "shot_save")
    assert app.pump(30, until=lambda: any(dpg.does_item_exist(f"job_{j.id}") for j in st.jobs.visible()))
    assert places() == before  # a job row came: nothing moved
    click(*target)  # where the checkbox was before the row came
    assert app.pump(5, until=lambda: dpg.get_value("snap_optimizer") != value)
    assert app.pump(60, until=lambda: "shot.png" in st.status), st.status
    assert (tmp_path / ("a-rather-long-folder-name-" * 4) / "shot.png").is_file()
    assert len(st.status) > 80 and dpg.get_value("status_full") == st.status  # two lines or more, shown in two
    assert places() == before
    assert app.pump(30, until=lambda: not st.jobs.visible())  # the finished row expires
    app.pump(0.3)
    assert places() == before
    click(*target)
    assert app.pump(5, until=lambda: dpg.get_value("snap_optimizer") == value)


def test_path_fields_follow_the_path_and_undo_takes_back_a_clear(app):
    """The path editor by X events (issue 17 item 9): a typed duration resizes the scrub slider, Clear empties and
    greys the key's fields, Undo (button) brings the cleared keys back, Ctrl+Z in the viewport undoes an edit."""
    import dearpygui.dearpygui as dpg

    st, ed = app.state, app.state.paths.path_editor
    if st.runner.running:
        send(app, "on_key_press", key.T, 0)
    click_item(app, "path_clear")
    assert app.pump(5, until=lambda: not ed.path.keys)
    view = app.viewport.window._window
    for k in range(3):
        drag(*viewport_point(app, 0.5, 0.5), *viewport_point(app, 0.6, 0.5))  # another view
        app.pump(0.2)
        xdotool("windowfocus", "--sync", view, "key", "k")
        assert app.pump(5, until=lambda k=k: len(ed.path.keys) == k + 1), st.status
    app.tick()
    assert dpg.get_item_configuration("path_key_time")["enabled"] and dpg.get_value("path_key_time") > 0
    type_into(app, "path_duration", "7.5")
    assert app.pump(5, until=lambda: abs(ed.path.end_time - 7.5) < 1e-6), st.status
    app.tick()
    assert dpg.get_item_configuration("path_scrub")["max_value"] == pytest.approx(7.5)
    # the slider dragged past its right end reaches the new end, not the old one
    scroll_to(app, "path_scrub")
    (x0, y0), (x1, y1) = dpg.get_item_rect_min("path_scrub"), dpg.get_item_rect_max("path_scrub")
    vx, vy = dpg.get_viewport_pos()
    cy = int(vy + (y0 + y1) / 2)
    xdotool("mousemove", int(vx + x0 + 5), cy, "mousedown", 1)
    app.pump(0.2)
    xdotool("mousemove", int(vx + x1 + 40), cy)
    app.pump(0.2)
    xdotool("mouseup", 1)
    assert app.pump(5, until=lambda: abs(ed.play_time - 7.5) < 1e-3), ed.play_time
    click_item(app, "path_clear")
    assert app.pump(5, until=lambda: not ed.path.keys)
    app.tick()
    assert dpg.get_value("path_key_time") == 0.0 and dpg.get_value("path_key_fov") == 0.0
    assert not dpg.get_item_configuration("path_key_time")["enabled"]
    assert "Undo" in st.status
    click_item(app, "path_undo")
    assert app.pump(5, until=lambda: len(ed.path.keys) == 3), st.status
    assert ed.path.end_time == pytest.approx(7.5) and "undone" in st.status
    xdotool("windowfocus", "--sync", view, "key", "ctrl+z")  # the duration edit, taken back from the viewport
    assert app.pump(5, until=lambda: abs(ed.path.end_time - 7.5) > 1e-3), st.status
    assert len(ed.path.keys) == 3
    st.paths.clear_keyframes()


def test_use_this_frames_look_shows_its_exposure_and_default_look_goes_back(app, tmp_path):
    """Issue 18 item 3 in the app: a snapshot trained with per-image appearance opens with its trainer; clicking a
    frame's row and *Use this frame's look* renders that frame's learned exposure (here set to -3 stops, so the
    change is plain on a barely trained model), and *Default look* renders the mean look again. By clicks only."""
    import dearpygui.dearpygui as dpg
    import torch

    from ngp_app.cli import main

    run = tmp_path / "looks"
    args = ["train", str(DEMO), "--out", str(run), "--steps", "40", "--config", "small", "--downscale", "8"]
    assert main([*args, "--appearance", "on", "--backend", "torch", "--device", "cpu", "--quiet"]) == 0
    st, w = app.state, app.worker
    if st.runner.running:
        send(app, "on_key_press", key.T, 0)
    generation = st.current.generation
    send(app, "on_file_drop", 10, 10, [str(run / "snapshot.npz")])
    assert app.pump(60, until=lambda: st.loader.loading is None and st.current.generation > generation), st.status
    assert st.trainer is not None and st.trainer.model.appearance is not None and not st.runner.running, st.status
    st.images.refresh_image_table(force=True)
    if not dpg.get_value("images_header"):
        click_item(app, "images_header")
        assert app.pump(5, until=lambda: dpg.get_value("images_header"))
    assert app.pump(5, until=lambda: len(dpg.get_item_children("images_table", 1)) > 0)
    i = int(dpg.get_item_label(dpg.get_item_children(dpg.get_item_children("images_table", 1)[0], 1)[0]))
    with st.trainer.lock, torch.no_grad():  # frame i's learned exposure: three stops down, on every channel
        st.trainer.eval_nerf.field.appearance.exposure[i] = -3.0
    click_item(app, f"images_row_{i}")
    assert app.pump(5, until=lambda: st.images.compare_index == i)
    assert settle(app)
    plain = w.latest.image[..., :3].astype(np.float32)
    click_item(app, "images_look")
    assert app.pump(5, until=lambda: st.settings.look == i), st.status
    assert app.pump(5, until=lambda: f"look: frame {i}" in dpg.get_value("images_look_info"))
    assert settle(app)
    dark = w.latest.image[..., :3].astype(np.float32)
    assert dark.mean() < plain.mean() - 0.5 and (plain - dark).max() > 10, (
        dark.mean(),
        plain.mean(),
        (plain - dark).max(),
    )
    assert (dark <= plain + 1).all()  # darker where anything changed, never brighter
    click_item(app, "images_look_default")
    assert app.pump(5, until=lambda: st.settings.look == -1), st.status
    assert settle(app)
    assert np.abs(w.latest.image[..., :3].astype(np.float32) - plain).max() <= 1
    assert app.pump(5, until=lambda: "look: default" in dpg.get_value("images_look_info"))
