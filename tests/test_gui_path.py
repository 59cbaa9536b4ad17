"""The app's camera-path editor, path videos and per-image loss table through the app's ``Session`` (no window):
what the panel's buttons and the viewport's keys call."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ngp_app.gui.session import Session
from tests.conftest import thin_grid

DEMO = Path(__file__).resolve().parent.parent / "scenes" / "demo"


def _three_keys(state: Session) -> None:
    for _ in range(3):
        state.camera.orbit(80, 10)
        state.paths.add_keyframe()


def test_editing_through_the_state_reports_errors_and_draws_the_path(state):
    assert state.open_path(DEMO, start=False)
    assert state.paths.edit_path("delete_selected") is None and state.status_is_error  # nothing to delete yet
    assert [lay.name for lay in state.view.overlay_layers()] == []  # no keys: nothing drawn
    _three_keys(state)
    assert "keyframe 3 added at 4.00 s" in state.status and len(state.paths.keyframes) == 3
    state.paths.edit_path("select", 0)
    state.camera.orbit(40, 0)
    assert state.paths.edit_path("insert_view") == 1 and state.paths.path_editor.path.keys[1].time == 1.0
    (path,) = state.view.overlay_layers()
    assert path.name == "path" and path.kind == "lines"
    assert len(path.vertices) == 2 * (3 * 24 + 4 * 8)  # the spline (24 segments a span) and 4 key frusta
    assert state.view.overlay_layers()[0] is path  # cached while nothing changes
    state.paths.edit_path("set_fov", 1, 30.0)
    assert state.view.overlay_layers()[0] is not path
    assert state.paths.edit_path("set_duration", -1.0) is None and "must be positive" in state.status
    # preview: P / Play moves the view each frame; a hand move ends it
    assert state.paths.toggle_preview() and state.paths.tick_preview(0.5)
    names = [lay.name for lay in state.view.overlay_layers()]
    assert names == ["path", "path_playhead"]
    assert np.allclose(state.camera.c2w().numpy(), state.paths.path_editor.path.evaluate(0.5).c2w, atol=1e-6)
    state.camera.orbit(5, 0)
    assert not state.paths.tick_preview(0.1) and not state.paths.path_editor.preview
    assert [lay.name for lay in state.view.overlay_layers()] == ["path"]
    state.paths.path_editor.show = False
    assert state.view.overlay_layers() == []


def test_paths_are_saved_and_instant_ngp_and_nerfstudio_files_imported(state, tmp_path):
    from test_camera_path import INSTANT_NGP, _nerfstudio

    assert state.open_path(DEMO, start=False)
    _three_keys(state)
    state.paths.edit_path("set_time", 2, 5.0)
    out = state.paths.save_keyframes(tmp_path / "mine.json")
    assert out is not None and json.loads(out.read_text())["format"] == "ngp-app camera path"
    times = [k.time for k in state.paths.path_editor.path.keys]
    state.paths.clear_keyframes()
    assert state.paths.load_keyframes(out) and [k.time for k in state.paths.path_editor.path.keys] == times
    (tmp_path / "base_cam.json").write_text(INSTANT_NGP)
    assert state.paths.load_keyframes(tmp_path / "base_cam.json"), state.status
    assert [k.fov_y_deg for k in state.paths.path_editor.path.keys] == [40.0, 60.0]
    ns = _nerfstudio(tmp_path)
    assert state.paths.load_keyframes(ns), state.status
    assert state.paths.path_editor.video.width == 160 and state.paths.path_editor.video.height == 90  # the file's size
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ngp-app camera path", "version": 1, "keys": []}')
    assert not state.paths.load_keyframes(bad) and state.status_is_error
    assert len(state.paths.path_editor.path.keys) == 2  # a bad file keeps the path
    assert state.paths.save_keyframes(tmp_path / "x.txt") is None and state.status_is_error


def test_path_video_job_size_quality_pause_and_cancel(state, tmp_path):
    import imageio.v3 as iio

    assert state.open_path(DEMO, start=False)
    state.trainer.train(steps=3)
    assert state.paths.render_video(tmp_path / "v.gif") is None and "at least two keyframes" in state.status
    _three_keys(state)
    ed = state.paths.path_editor
    ed.set_duration(1.0)
    ed.set_fps(5.0)
    ed.video.width, ed.video.height, ed.video.quality = 40, 24, "draft"  # drafts render at half size
    ed.video.pause_training = True
    assert state.runner.start()
    job = state.paths.render_video(tmp_path / "v.gif")
    assert job is not None and not state.runner.running  # training waits for the video
    state.wait_job(job)
    assert job.state == "done", job.describe()
    assert state.runner.running  # and goes on afterwards
    state.runner.stop()
    assert iio.imread(tmp_path / "v.gif").shape[:3] == (6, 12, 20)  # 1 s at 5 fps + the last key, half size
    assert ed.video.last_output == (tmp_path / "v.gif").absolute() and str(tmp_path / "v.gif") in state.status
    # a long video cancelled part-way: no video; the finished frames kept (the model is not training), as the
    # status says; training resumed as it was (not running)
    import re
    import time

    from ngp_app.export.frame_cache import cache_folder

    ed.video.path, ed.video.frames, ed.video.quality = "orbit", 400, "best"
    job = state.paths.render_video(tmp_path / "long.mp4")
    assert job is not None
    end = time.time() + 60.0
    while (job.fraction or 0.0) <= 2.5 / 400 and time.time() < end:
        time.sleep(0.01)
    job.cancel()
    state.wait_job(job)
    assert job.state == "cancelled" and "video cancelled" in state.status
    kept = re.search(r"(\d+) of 400 frames kept: render the same video again to resume", state.status)
    assert kept is not None, state.status
    assert len(list(cache_folder(tmp_path / "long.mp4").glob("*.png"))) == int(kept.group(1)) >= 2
    assert not (tmp_path / "long.mp4").exists()
    assert not state.runner.running


def test_export_video_keeps_the_keys_timing(state, tmp_path):
    import imageio.v3 as iio

    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    _three_keys(state)
    state.paths.edit_path("set_time", 1, 3.5)  # a slow first segment
    job = state.paths.export_video(tmp_path / "k.gif", "keyframes", 5, 10, 16, 16)
    state.wait_job(job)
    assert job.state == "done" and iio.imread(tmp_path / "k.gif").shape[0] == 5


def test_image_table_flies_to_a_frame_shows_it_and_excludes_it_while_training(state, tmp_path):
    assert state.images.toggle_image_excluded(0) is None and "open a scene" in state.status
    assert state.open_path(DEMO, start=False)
    state.trainer.train(steps=8)
    assert state.images.refresh_image_table(force=True)
    rows = state.images.image_table.rows
    n = state.current.scene.n_frames
    assert len(rows) == n and sorted(r.index for r in rows) == list(range(n))
    seen = [r for r in rows if r.rays > 0]
    assert seen and all(a.mse >= b.mse for a, b in zip(seen, seen[1:]))  # worst first
    worst = seen[0]
    assert state.images.fly_to_image(worst.index)
    c2w, intr, sizes = (a[worst.index] for a in state.current.train_cams)
    assert np.allclose(state.camera.c2w().numpy(), c2w, atol=1e-6)  # exactly the frame's camera
    assert math.isclose(state.camera.camera(int(sizes[0]), int(sizes[1])).fy, intr[1], rel_tol=1e-5)
    assert not state.images.refresh_image_table()  # no training since: nothing to read
    img = state.images.compare_image()
    assert img.shape == state.current.scene.image(worst.index).shape[:2] + (3,) and img.dtype == np.uint8
    assert worst.name in state.images.compare_caption() and "loss" in state.images.compare_caption()
    # leave it out of training while training runs; its rays stop, the others go on
    assert state.runner.start()
    assert state.images.toggle_image_excluded(worst.index) is True
    assert state.current.scene.excluded == (worst.index,) and "left out of training" in state.status
    import time

    def wait_steps(n: int) -> None:
        end, target = time.time() + 60, state.step + n
        while state.step < target and time.time() < end:
            time.sleep(0.01)
        assert state.step >= target

    wait_steps(1)  # a step already under way may have drawn its rays before the change
    rays_before = state.trainer.image_stats.ray_sum[worst.index].item()
    wait_steps(3)
    state.runner.stop()
    assert state.trainer.image_stats.ray_sum[worst.index].item() < rays_before  # decays, never grows
    assert "(excluded)" in state.images.compare_caption()
    snap = state.wait_job(state.exports.save_snapshot(tmp_path / "s.npz"))
    assert state.open_path(snap, start=False) and state.current.scene.excluded == (worst.index,)
    assert state.images.compare_index is None  # another scene object: the inset closes
    assert state.images.toggle_image_excluded(worst.index) is False and state.current.scene.excluded == ()
    for i in range(n - 1):
        state.images.toggle_image_excluded(i)
    assert state.images.toggle_image_excluded(n - 1) is None and "at least one frame" in state.status
    assert not state.images.fly_to_image(n + 3) and state.status_is_error


def test_frustum_size_follows_the_scene(state):
    assert state.paths._frustum_length() == 0.06  # no scene: a default
    assert state.open_path(DEMO, start=False)
    radius = float(np.median(np.linalg.norm(state.current.train_cams[0][:, :, 3] - 0.5, axis=1)))
    assert math.isclose(state.paths._frustum_length(), float(np.clip(0.1 * radius, 0.02, 0.5)))


def test_a_render_job_of_a_training_model_saves_the_model_beside_it(state, tmp_path):
    """*Save render job* with a model in training: the model is saved beside the job first, the job names it and
    holds the edited path; ``ngp video --job`` renders the same frame count and size. A crop box is said to be left
    out; a path of fewer than two keys is one error line."""
    import imageio.v3 as iio

    from ngp_app.cli import main

    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    state.trainer.train(steps=3)
    job_file = tmp_path / "jobs" / "render_job.json"
    assert state.paths.save_render_job(job_file, tmp_path / "out.gif") is None
    assert state.status_is_error and "two keyframes" in state.status and not job_file.exists()
    _three_keys(state)
    ed = state.paths.path_editor
    ed.set_duration(1.0)
    ed.set_fps(3.0)
    ed.video.width, ed.video.height = 16, 12
    state.settings.crop_min = (0.2, 0.2, 0.2)
    job = state.paths.save_render_job(job_file, tmp_path / "out.gif")
    state.wait_job(job)
    assert "saved render job" in state.status and "the crop box is not part of a job" in state.status, state.status
    data = json.loads(job_file.read_text())
    assert data["snapshot"] == "render_job.snapshot.npz" and (job_file.parent / data["snapshot"]).is_file()
    assert data["out"] == "../out.gif" and len(data["camera_path"]["keyframes"]) == 3
    assert main(["video", "--job", str(job_file), "--quiet"]) == 0
    width, height = ed.video.render_size()
    assert iio.imread(tmp_path / "out.gif", index=None).shape[:3] == (len(ed.frame_cameras()), height, width)
