"""The app's plain-Python state, driven without any window."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ngp_app.data.cameras import look_at
from ngp_app.gui.camera import OrbitCamera, nearest_camera
from ngp_app.gui.dynres import DynamicResolution, render_size
from ngp_app.gui.render_worker import RenderWorker
from ngp_app.gui.training import TrainingRunner
from tests.conftest import thin_grid, wait_for

DEMO = Path(__file__).resolve().parent.parent / "scenes" / "demo"


# ---------------------------------------------------------------------------------------------- camera
def test_orbit_camera_looks_at_target_and_is_orthonormal():
    cam = OrbitCamera(target=(0.5, 0.5, 0.5), distance=2.0)
    m = cam.c2w().numpy()
    assert np.allclose(m[:, :3].T @ m[:, :3], np.eye(3), atol=1e-5)
    forward = m[:, 2]
    to_target = cam.target - m[:, 3]
    assert np.allclose(forward, to_target / np.linalg.norm(to_target), atol=1e-5)
    assert math.isclose(np.linalg.norm(to_target), 2.0, rel_tol=1e-5)
    # world up (+y) points against the camera's "down" axis
    assert m[1, 1] < 0


def test_orbit_pan_zoom_fly_and_reset():
    cam = OrbitCamera(distance=2.0)
    v0, eye0 = cam.version, cam.eye.copy()
    cam.orbit(100, 0)
    assert cam.version > v0 and not np.allclose(cam.eye, eye0)
    assert math.isclose(np.linalg.norm(cam.eye - cam.target), 2.0, rel_tol=1e-6)
    cam.orbit(0, -1e5)  # pitch is clamped short of the pole
    assert abs(cam.pitch) < math.pi / 2
    cam.zoom(3)
    assert cam.distance < 2.0
    t0 = cam.target.copy()
    cam.pan(50, 0)
    right = cam.basis()[0]
    assert np.dot(cam.target - t0, right) < 0  # dragging right moves the scene right: target moves left
    fwd = cam.basis()[2]
    e0 = cam.eye.copy()
    cam.fly(1, 0, 0, 0.1)
    assert np.allclose(cam.eye - e0, 0.1 * fwd, atol=1e-6)
    cam.reset()
    assert np.allclose(cam.eye, eye0)


def test_look_from_reproduces_a_training_camera():
    eye, target = np.array([1.5, 0.9, 0.2]), np.array([0.5, 0.5, 0.5])
    c2w = look_at(eye, target).numpy()
    cam = OrbitCamera()
    cam.look_from(c2w, fy=100.0, height=100)
    assert np.allclose(cam.c2w().numpy(), c2w, atol=1e-5)
    assert math.isclose(cam.fov_deg, math.degrees(2 * math.atan(0.5)), rel_tol=1e-6)
    c2ws = np.stack([look_at([2, 0.5, 0.5], target).numpy(), c2w])
    assert nearest_camera(c2ws, cam.eye, cam.basis()[2]) == 1


def test_camera_intrinsics_follow_fov():
    cam = OrbitCamera(fov_deg=90.0)
    c = cam.camera(200, 100)
    assert math.isclose(c.fy, 50.0, rel_tol=1e-6) and c.cx == 100.0 and c.cy == 50.0


# ---------------------------------------------------------------------------------------------- dynamic resolution
def test_dynres_waits_for_patience_then_scales_down():
    d = DynamicResolution(target_fps=30, scale=0.5, patience=3)
    target = d.target_ms
    assert d.update(target * 1.5) == 0.5  # one slow frame: no change
    assert d.update(target * 1.5) == 0.5
    s = d.update(target * 1.5)
    assert s < 0.5 and math.isclose(s, 0.5 * math.sqrt(1 / 1.5), rel_tol=1e-6)


def test_dynres_hysteresis_band_and_noise_do_not_flicker():
    d = DynamicResolution(target_fps=30, scale=0.4, patience=3)
    t = d.target_ms
    for ms in [t * 0.9, t * 1.1, t * 1.2, t * 0.75, t * 1.3, t * 0.8, t * 0.65, t * 1.0] * 5:
        d.update(ms)
    assert d.scale == 0.4  # alternating/in-band frames never build a run long enough


def test_dynres_far_too_slow_acts_at_once_and_fast_grows_damped():
    d = DynamicResolution(target_fps=30, scale=0.5)
    s = d.update(d.target_ms * 10)
    assert s == 0.25  # halved at most per frame
    for _ in range(3):
        s = d.update(d.target_ms * 0.25)
    assert 0.25 < s <= 0.5 and s < 0.25 * 2.0 + 1e-9
    d2 = DynamicResolution(scale=0.9)
    for _ in range(30):
        d2.update(0.1)
    assert d2.scale == 1.0  # never above max


def test_dynres_stops_shrinking_when_time_is_not_in_the_pixels():
    d = DynamicResolution(target_fps=30, scale=0.2, patience=2)
    for _ in range(20):
        d.update(300.0)  # a fixed 300 ms whatever the size (e.g. waiting on something else)
    assert d.floor == 0.2 and d.scale == 0.2
    for _ in range(d.floor_frames + 1):
        d.update(d.target_ms)  # in band: nothing changes, but the floor expires
    assert d.floor == 0.0 and d.scale == 0.2
    d.reset(0.05)
    assert d.floor == 0.0 and d.scale == 0.05


def test_dynres_refinement_and_render_size():
    d = DynamicResolution(scale=0.1)
    steps = d.refine_scales()
    assert steps[-1] == 1.0 and all(b > a for a, b in zip(steps, steps[1:])) and len(steps) == 4
    assert render_size(1920, 1080, 0.5) == (960, 540)
    assert render_size(1920, 1080, 0.0001) == (8, 8)


# ---------------------------------------------------------------------------------------------- training thread
class FakeTrainer:
    def __init__(self, fail_at: int | None = None, error: Exception | None = None):
        self.step_count = 0
        self.fail_at = fail_at
        self.error = error or RuntimeError("CUDA out of memory\nmore detail")

    def step(self):
        time.sleep(0.001)
        if self.fail_at is not None and self.step_count >= self.fail_at:
            raise self.error
        self.step_count += 1


def test_runner_start_stop_reset_and_errors(tmp_path, monkeypatch):
    r = TrainingRunner(FakeTrainer())
    assert r.start() and wait_for(lambda: r.step > 5, 10)
    assert r.steps_per_second() > 0
    r.stop()
    assert not r.running
    s = r.step
    time.sleep(0.05)
    assert r.step == s  # really stopped
    r.start()
    r.reset(FakeTrainer)
    assert r.running and wait_for(lambda: r.step > 0, 10)
    r.reset(lambda: (_ for _ in ()).throw(ValueError("bad config")))
    assert "bad config" in r.error and not r.running
    r.replace(FakeTrainer(fail_at=3), start=True)
    assert wait_for(lambda: not r.running, 10)
    assert r.error == "training stopped: out of memory (try a smaller size, resolution or batch)"
    # a bug: one line naming a log file with the traceback (crash.report_internal_error), the app goes on
    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path))
    r.replace(FakeTrainer(fail_at=2, error=ZeroDivisionError("division by zero")), start=True)
    assert wait_for(lambda: not r.running, 10)
    assert r.error.startswith("training stopped: ngp: internal error: ZeroDivisionError: division by zero (details: ")
    log_file = Path(r.error.split("details: ")[1][:-1])
    assert log_file.parent == tmp_path and "in step" in log_file.read_text()
    assert not TrainingRunner().start()


# ---------------------------------------------------------------------------------------------- app state
def test_open_scene_trains_and_renders(state):
    assert state.open_path(DEMO)
    assert state.current.scene.n_frames == 80 and state.runner.running and not state.status_is_error
    assert wait_for(lambda: state.step >= 3)
    state.toggle_training()
    assert not state.runner.running
    assert state.source().nerf.field is state.trainer.eval_model is not state.trainer.model  # the weight average
    img = state.view.render_view(24, 16)
    assert img.shape == (16, 24, 4) and img.dtype == np.uint8 and (img[..., 3] == 255).all()
    raw = state.view.render_raw(24, 16)  # the viewport's uint8 frame is the float render, rounded
    assert np.abs(img[..., :3].astype(np.float32) - raw["rgb"].clip(0, 1) * 255).max() <= 1.0
    for mode in ("depth", "opacity", "occupancy", "cameras"):
        state.settings.mode = mode
        view = state.view.render_view(24, 16)
        assert view.shape == (16, 24, 4) and (view[..., 3] == 255).all()
    state.settings.mode = "rgb"
    state.reset_training()
    assert state.step == 0 and not state.runner.running


def test_unusable_backend_or_config_is_reported_and_reverted(state):
    state.open_path(DEMO, start=False)
    state.set_backend("tcnn")  # needs CUDA + tinycudann
    assert state.status_is_error and "tcnn" in state.status and state.backend_request == "torch"
    state.set_config("does-not-exist")
    assert state.status_is_error and "config not found" in state.status and state.config_name == "small"
    state.poll_errors()
    state.status_line.set("something else")
    state.poll_errors()  # an error already shown is not shown again
    assert state.status == "something else"
    state.set_config("base")
    assert not state.status_is_error and state.trainer.config.name == "base"


def test_drop_non_scene_reports_error_and_keeps_scene(state, tmp_path):
    state.open_path(DEMO, start=False)
    before = state.current.scene
    (tmp_path / "notes.txt").write_text("hello")
    assert not state.open_path(tmp_path)
    assert state.status_is_error and "not a scene" in state.status and state.current.scene is before
    assert not state.open_path(tmp_path / "notes.txt")
    assert state.status_is_error and "notes.txt" in state.status
    assert not state.open_path(tmp_path / "missing")
    bad = tmp_path / "transforms.json"
    bad.write_text("{oops")
    assert not state.open_path(bad) and "malformed JSON" in state.status
    assert state.current.scene is before


def test_drop_transforms_json_and_switch_scene_stops_old_thread(state):
    state.open_path(DEMO)
    old_runner_trainer = state.trainer
    assert wait_for(lambda: state.step >= 1)
    assert state.open_path(DEMO / "transforms_train.json")
    assert state.trainer is not old_runner_trainer and state.runner.running
    s = old_runner_trainer.step_count
    time.sleep(0.3)
    assert old_runner_trainer.step_count == s  # the old trainer is no longer stepped


def test_snapshot_round_trip_and_screenshot(state, tmp_path):
    import imageio.v3 as iio

    state.open_path(DEMO, start=False)
    for _ in range(3):
        state.trainer.step()
    snap = state.wait_job(state.exports.save_snapshot(tmp_path / "snap"))
    assert snap is not None and snap.name == "snapshot.npz"
    state.reset_training()
    assert state.open_path(snap)
    assert state.step == 3 and state.trainer is not None and not state.status_is_error
    assert state.open_path(tmp_path / "snap")  # the folder holding snapshot.npz works too
    p = state.wait_job(state.exports.screenshot(tmp_path / "shot.png", 20, 12, alpha=True))
    assert p is not None and iio.imread(p).shape == (12, 20, 4)
    p = state.wait_job(state.exports.screenshot(tmp_path / "shot3.png", 20, 12))
    assert iio.imread(p).shape == (12, 20, 3)
    # with the optimizer state, the reopened trainer has Adam's moments back
    state.trainer.step()  # Adam's state exists once it has stepped
    state.exports.save_optimizer_state = True
    full = state.wait_job(state.exports.save_snapshot(tmp_path / "full"))
    assert full is not None and full.stat().st_size > snap.stat().st_size
    with np.load(full) as arrays:  # the moments themselves (compressed sizes depend on how sparse they are)
        shape = tuple(state.trainer.model.encoding.table.shape)
        table_moments = [
            k
            for k in arrays.files
            if k.startswith("train/opt.") and k.endswith((".exp_avg", ".exp_avg_sq")) and arrays[k].shape == shape
        ]
    assert len(table_moments) == 2
    assert state.open_path(full)
    table = state.trainer.model.encoding.table
    assert state.trainer.optimizer.state[table]["exp_avg"].abs().sum() > 0


def test_crop_box_limits_render(state):
    state.open_path(DEMO, start=False)
    for _ in range(5):
        state.trainer.step()
    aabb = state.trainer.aabb
    full = state.view.crop_aabb(aabb)
    assert torch.allclose(full, aabb)
    state.settings.crop_max = (0.5, 0.5, 0.5)
    state.settings.crop_min = (0.49, 0.49, 0.49)
    cropped = state.view.render_raw(16, 16)
    assert cropped["opacity"].max() < 0.2  # a 1%-wide box holds almost nothing


def test_training_camera_snapping_and_ground_truth(state):
    state.open_path(DEMO, start=False)
    i = state.snap_to_training_camera(0)
    j = state.snap_to_training_camera(+1)
    assert j == (i + 1) % state.current.scene.n_frames
    c2w = state.current.scene.camera(j).c2w.numpy()
    assert np.allclose(state.camera.eye, c2w[:, 3], atol=1e-4)
    assert state.snap_to_training_camera(-1) == i
    assert state.toggle_ground_truth()
    gt = state.view.render_view(25, 25)
    assert gt.shape == (25, 25, 4) and gt[..., :3].std() > 0


def test_render_worker_dynamic_resolution_and_refinement(state):
    state.open_path(DEMO, start=False)
    thin_grid(state)
    w = RenderWorker(state)
    w.size = (64, 36)
    state.settings.target_fps = 1000.0  # unreachable: the worker must shrink, then refine once still
    w.start()
    try:
        assert wait_for(lambda: w.latest is not None and w.latest.scale == 1.0, 60)
        n = w.frames
        state.camera.orbit(10, 0)
        assert wait_for(lambda: w.frames > n, 30)
    finally:
        w.stop()


# ---------------------------------------------------------------------------------------------- entry points
def test_app_without_display_says_so(monkeypatch, capsys):
    from ngp_app.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["app", "--empty", "--exit-after", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ngp: error: ") and "xvfb-run" in err[0] and "ngp train" in err[0]


def test_app_parser_and_no_toolkit_imports_on_servers():
    import argparse
    import subprocess
    import sys

    from ngp_app.commands import app as app_command
    from ngp_app.commands import options

    p = argparse.ArgumentParser()
    app_command.register(p.add_subparsers(dest="command"), options)
    args = p.parse_args(
        [
            "app",
            "scenes/demo",
            "--exit-after",
            "2",
            "--screenshot-dir",
            "d",
            "--config",
            "base",
            "--device",
            "cpu",
            "--backend",
            "torch",
            "--downscale",
            "4",
        ]
    )
    assert (args.path, args.exit_after, args.screenshot_dir, args.config, args.downscale) == (
        "scenes/demo",
        2.0,
        "d",
        "base",
        4,
    )
    code = (
        "import sys, ngp_app.cli, ngp_app.commands.app, ngp_app.gui.session, ngp_app.gui.app, ngp_app.bench.render; "
        "print(any(m in sys.modules for m in ('pyglet', 'dearpygui')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=DEMO.parent.parent)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------------------------------- background loading
def test_open_path_async_loads_off_thread_and_swaps_on_apply(state, tmp_path):
    from ngp_app.data import synthetic

    first = synthetic.make_scene(tmp_path / "first", width=16, height=16, n_train=3, n_val=1, n_test=1, progress=False)
    second = synthetic.make_scene(
        tmp_path / "second", width=16, height=16, n_train=5, n_val=1, n_test=1, progress=False
    )
    gen0 = state.current.generation
    t1 = state.open_path_async(first, start=False)
    t2 = state.open_path_async(second, start=False)  # supersedes the first request
    assert state.loader.loading == "second" and "loading" in state.status
    t1.join(60)
    t2.join(60)
    assert state.current.scene is None  # nothing changes until the UI thread applies the result
    assert state.apply_pending()
    assert state.current.scene.n_frames == 5 and state.loader.loading is None and state.current.generation == gen0 + 1
    assert not state.apply_pending()  # the superseded first load was dropped
    assert state.current.scene.n_frames == 5 and not state.runner.running


def test_open_path_async_reports_errors_and_keeps_the_scene(state, tmp_path):
    assert state.open_path(DEMO, start=False)
    scene = state.current.scene
    (tmp_path / "notes.txt").write_text("not a scene")
    state.open_path_async(tmp_path).join(30)
    assert not state.apply_pending()
    assert state.status_is_error and state.loader.loading is None and state.current.scene is scene
    bad = tmp_path / "snapshot.npz"
    bad.write_bytes(b"garbage")
    state.open_path_async(bad).join(30)
    assert not state.apply_pending() and state.status_is_error and "snapshot" in state.status
    assert state.current.scene is scene


# ---------------------------------------------------------------------------------------------- video export
def test_keyframes_and_video_export(state, tmp_path):
    import imageio.v3 as iio

    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    state.paths.export_video(tmp_path / "k.gif", "keyframes", 4, 10, 16, 16)
    assert state.status_is_error and "no keyframes" in state.status
    for dx in (0, 120, 240):
        state.camera.orbit(dx, 0)
        state.paths.add_keyframe()
    assert len(state.paths.keyframes) == 3
    assert state.paths.save_keyframes(tmp_path / "path.json") is not None
    saved = [k.c2w.copy() for k in state.paths.keyframes]
    state.paths.clear_keyframes()
    assert state.paths.load_keyframes(tmp_path / "path.json")
    assert all(np.allclose(a, b.c2w, atol=1e-6) for a, b in zip(saved, state.paths.keyframes))
    job = state.paths.export_video(tmp_path / "k.gif", "keyframes", 5, 10, 20, 12, loop=True)
    assert job is not None
    state.wait_job(job)
    assert not state.status_is_error, state.status
    assert "saved video" in state.status and iio.imread(tmp_path / "k.gif").shape[:3] == (5, 12, 20)
    state.wait_job(state.paths.export_video(tmp_path / "o", "orbit", 2, 10, 8, 8))
    assert len(list((tmp_path / "o").glob("*.png"))) == 2
    state.paths.export_video(tmp_path / "v.webm", "orbit", 2, 10, 8, 8)
    assert state.status_is_error and "unsupported video format" in state.status
    assert not state.paths.load_keyframes(tmp_path / "missing.json") and state.status_is_error


def test_video_export_without_a_model_is_an_error(state, tmp_path):
    assert state.paths.export_video(tmp_path / "v.gif", "orbit", 2, 10, 8, 8) is None
    assert state.status_is_error and "nothing to export" in state.status


def test_mesh_export_from_the_app(state, tmp_path):
    assert state.open_path(DEMO, start=False)
    state.trainer.train(steps=30)
    state.exports.export_mesh(tmp_path / "m.stl")
    assert state.status_is_error and "unknown mesh format" in state.status
    # empty occupancy cells count as density 0, so a low threshold always finds the object's boundary
    job = state.exports.export_mesh(tmp_path / "m.ply", resolution=32, threshold=0.05, space="ngp")
    assert job is not None
    state.wait_job(job)
    assert not state.status_is_error, state.status
    assert "saved mesh" in state.status and (tmp_path / "m.ply").stat().st_size > 100
    state.wait_job(state.exports.export_mesh(tmp_path / "none.ply", resolution=16, threshold=1e9))
    assert state.status_is_error and "no surface at density" in state.status
    assert not (tmp_path / "none.ply").exists()


def test_pose_refinement_toggle(state):
    state.set_optimize_extrinsics(True)
    assert state.status_is_error  # no scene yet
    assert state.open_path(DEMO, start=False)
    state.set_optimize_extrinsics(True)
    assert state.trainer.optimize_extrinsics and not state.status_is_error
    state.set_optimize_extrinsics(False)
    assert not state.trainer.optimize_extrinsics


def test_normals_mode_renders_normals(state):
    assert state.open_path(DEMO, start=False)
    state.trainer.train(steps=20)
    state.settings.mode = "rgb"
    shaded = state.view.render_view(24, 16)
    state.settings.mode = "normals"
    normals = state.view.render_view(24, 16)
    assert normals.shape == (16, 24, 4) and not np.array_equal(normals, shaded)


# ------------------------------------------------------------------------------------ threads (issue 10, item 7)
class CountingTrainer:
    """Flags two threads inside ``step`` at once (two training threads on one trainer)."""

    inside = 0
    overlaps = 0
    guard = __import__("threading").Lock()

    def __init__(self) -> None:
        self.step_count = 0

    def step(self) -> None:
        cls = CountingTrainer
        with cls.guard:
            cls.inside += 1
            cls.overlaps += cls.inside > 1
        time.sleep(0.002)
        with cls.guard:
            cls.inside -= 1
        self.step_count += 1


def test_runner_driven_from_many_threads_never_runs_two_training_threads():
    import random
    import threading

    CountingTrainer.overlaps = 0
    r = TrainingRunner(CountingTrainer(), pause_s=0.0)

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            op = rng.choice(("start", "stop", "toggle", "reset", "start"))
            if op == "reset":
                r.reset(lambda: r.trainer)  # the same trainer again: two threads would step it at once
            else:
                getattr(r, op)()
            time.sleep(rng.random() * 0.003)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    r.start()
    time.sleep(0.05)
    r.stop()
    time.sleep(0.05)
    alive = [t for t in threading.enumerate() if t.name == "ngp-train"]
    assert alive == [] and CountingTrainer.overlaps == 0


def test_calls_from_other_threads_run_on_the_ui_thread_in_order(state):
    import threading

    ran: list[tuple[int, int, int]] = []

    def poster(k: int) -> None:
        for i in range(50):
            state.call_on_ui(lambda i=i: ran.append((k, i, threading.get_ident())))

    threads = [threading.Thread(target=poster, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert ran == []  # queued, not run on the posting threads
    state.apply_pending()
    assert len(ran) == 150 and {tid for _, _, tid in ran} == {threading.get_ident()}
    for k in range(3):
        assert [i for kk, i, _ in ran if kk == k] == list(range(50))  # each thread's calls in its order


def test_snapshot_is_compressed_and_written_outside_the_trainer_lock(state, tmp_path, monkeypatch):
    import threading

    import ngp_app.snapshot as snapshot_module

    assert state.open_path(DEMO, start=False)
    state.trainer.step()
    real = snapshot_module.save_snapshot
    lock_free: list[bool] = []

    def probing_save(*args, **kwargs):
        def probe() -> None:  # can another thread take the trainer's lock while the file is being written?
            ok = state.trainer.lock.acquire(timeout=2.0)
            if ok:
                state.trainer.lock.release()
            lock_free.append(ok)

        t = threading.Thread(target=probe)
        t.start()
        t.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(snapshot_module, "save_snapshot", probing_save)
    job = state.exports.save_snapshot(tmp_path / "s.npz")
    assert state.wait_job(job) == tmp_path / "s.npz" and lock_free == [True]
    assert "saved snapshot" in state.status and not state.status_is_error


def test_screenshot_job_reports_progress_and_cancel_writes_nothing(state, tmp_path, monkeypatch):
    from ngp_app.gui.jobs import CANCELLED, DONE, Job

    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    fractions: list[float] = []
    real_report = Job.report

    def recording_report(self, fraction=None, stage=None):
        if fraction is not None:
            fractions.append(fraction)
        return real_report(self, fraction, stage)

    monkeypatch.setattr(Job, "report", recording_report)
    job = state.exports.screenshot(tmp_path / "big.png", 128, 96)  # 12288 rays: three chunks of 4096 on a CPU
    state.wait_job(job)
    assert job.state == DONE and (tmp_path / "big.png").exists()
    assert len([f for f in fractions if 0.0 < f < 0.95]) >= 2 and fractions == sorted(fractions)
    job = state.exports.screenshot(tmp_path / "cancelled.png", 128, 96)
    job.cancel()
    state.wait_job(job)
    assert job.state == CANCELLED and "cancelled" in state.status
    assert not (tmp_path / "cancelled.png").exists() and not list(tmp_path.glob(".*cancelled*"))


# ---------------------------------------------------------------------------------------------- refinement (item 1)
def _still_worker(state, budget_ms: float) -> RenderWorker:
    w = RenderWorker(state, refine_budget_ms=budget_ms)
    w.size = (64, 36)
    state.settings.target_fps = 1000.0  # unreachable: moving-camera frames stay small
    w.start()
    return w


def test_view_sharpens_once_training_stops(state):
    state.runner.pause_s = 0.5  # the render thread gets the model between steps, then waits for the next one
    assert state.open_path(DEMO, start=True)
    w = _still_worker(state, budget_ms=0.001)  # while training, every refinement is over budget
    try:
        assert wait_for(lambda: w.frames >= 3 and state.step >= 2, 60)
        assert w.latest.scale < 1.0  # training: stays at the small size
        n = -1
        while n != w.frames:  # stop training while the render thread idles (not in the middle of a frame)
            n = w.frames
            time.sleep(0.3)
        state.toggle_training()
        assert not state.runner.running
        assert wait_for(lambda: w.latest.scale == 1.0, 60), w.latest.scale  # refined without touching the view
    finally:
        w.stop()


def test_restarting_training_drops_a_refined_view_back_within_budget(state):
    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    w = _still_worker(state, budget_ms=0.001)
    try:
        assert wait_for(lambda: w.latest is not None and w.latest.scale == 1.0, 60)
        state.toggle_training()
        n = w.frames
        assert wait_for(lambda: w.frames >= n + 2, 60)
        assert w.latest.scale < 1.0  # frames while training are sized to the budget, not the still view's
    finally:
        w.stop()
        state.runner.stop()


# ---------------------------------------------------------------------------------------------- overlays (item 5)
def test_view_projection_puts_points_where_project_does():
    from ngp_app.gui.overlays import project, view_projection

    cam = OrbitCamera(distance=1.7, fov_deg=55.0).camera(96, 54)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0.0, 1.0, (200, 3))
    clip = np.c_[pts, np.ones(len(pts))] @ view_projection(cam).T
    px = np.stack([(clip[:, 0] / clip[:, 3] + 1.0) * 0.5 * 96, (1.0 - clip[:, 1] / clip[:, 3]) * 0.5 * 54], -1)
    uv, front = project(pts, cam)
    assert front.all() and np.allclose(px, uv, atol=1e-6)
    behind = cam.c2w.numpy()[:, 3] - 0.5 * cam.c2w.numpy()[:, 2]  # half a unit behind the eye: clipped by GL
    assert (np.r_[behind, 1.0] @ view_projection(cam).T)[3] < 0


def test_overlays_are_geometry_drawn_over_the_render_not_into_it(state):
    from ngp_app.gui.overlays import CAMERA_COLOR, HIGHLIGHT_COLOR, polyline_layer

    assert state.open_path(DEMO, start=False)
    state.trainer.train(steps=5)
    rgb = state.view.render_view(48, 27)
    state.settings.mode = "cameras"
    assert np.array_equal(state.view.render_view(48, 27), rgb)  # nothing drawn into the low-resolution picture
    (cams,) = state.view.overlay_layers()
    n = state.current.scene.n_frames
    assert cams.name == "cameras" and cams.kind == "lines" and cams.vertices.shape == (n * 16, 3)
    hl = state.settings.gt_index
    assert (cams.colors[hl * 16 : (hl + 1) * 16] == HIGHLIGHT_COLOR).all()
    assert (cams.colors[(hl + 1) % n * 16] == CAMERA_COLOR).all()
    assert state.view.overlay_layers()[0] is cams  # cached until its inputs change
    state.settings.mode = "occupancy"
    state.settings.toggle_overlay("crop")
    state.settings.toggle_overlay("axes")
    state.view.overlay_providers["path"] = lambda: polyline_layer("path", [[0, 0, 0], [1, 1, 1]], (255, 0, 255, 255))
    layers = {lay.name: lay for lay in state.view.overlay_layers()}
    assert set(layers) == {"crop", "axes", "occupancy", "path"}
    assert layers["crop"].vertices.shape == (24, 3) and layers["occupancy"].kind == "points"
    assert len(layers["occupancy"].vertices) > 0 and layers["path"].vertices.shape == (2, 3)
    state.settings.toggle_overlay("crop")
    assert "crop" not in {lay.name for lay in state.view.overlay_layers()}


def test_rasterize_clips_at_the_near_plane_and_screenshots_carry_overlays_when_asked(state, tmp_path):
    import imageio.v3 as iio

    from ngp_app.data.cameras import Camera
    from ngp_app.gui.overlays import CAMERA_COLOR, layer, rasterize

    cam = Camera(torch.eye(4)[:3], 20.0, 20.0, 20.0, 20.0, 40, 40)  # at the origin, looking down +z
    crossing = layer("l", "lines", [[0.5, 0.0, -2.0], [0.5, 0.0, 2.0]], (255, 0, 0, 255))  # from behind to ahead
    img = rasterize(np.zeros((40, 40, 3), np.uint8), [crossing], cam)
    cols = np.nonzero(img[..., 0])[1]
    assert cols.size > 0 and cols.min() >= 24  # u = 20 + 20 * 0.5 / z >= 25 ahead; the part behind is not mirrored
    behind = layer("b", "lines", [[0.0, 0.0, -1.0], [0.1, 0.0, -2.0]], (255, 0, 0, 255))
    assert not rasterize(np.zeros((40, 40, 3), np.uint8), [behind], cam).any()
    assert state.open_path(DEMO, start=False)
    thin_grid(state)
    state.settings.mode = "cameras"
    shot = iio.imread(state.wait_job(state.exports.screenshot(tmp_path / "cams.png", 160, 90, overlays=True)))
    assert (np.abs(shot.astype(int) - CAMERA_COLOR[:3]).sum(-1) == 0).sum() > 50
    clean = iio.imread(state.wait_job(state.exports.screenshot(tmp_path / "clean.png", 160, 90)))  # the default
    assert (np.abs(clean.astype(int) - CAMERA_COLOR[:3]).sum(-1) == 0).sum() < 5


# ---------------------------------------------------------------------------------------------- ground truth (item 2)
def test_ground_truth_keeps_the_image_aspect_and_lines_up_with_its_camera(state):
    assert state.open_path(DEMO, start=False)
    state.settings.background = (1.0, 1.0, 1.0)
    assert state.toggle_ground_truth()  # snaps the view to the nearest training camera
    i = state.settings.gt_index
    ih, iw = state.current.scene.image(i).shape[:2]
    assert ih == iw  # the demo's images are square
    gt = state.view.render_view(64, 32)[..., :3].astype(int)
    margin = np.array([64, 64, 64])  # the dimmed background around the image
    is_margin = (np.abs(gt - margin).sum(-1) == 0).all(axis=0)  # columns that are margin from top to bottom
    image_cols = np.nonzero(~is_margin)[0]
    assert image_cols.min() == 16 and image_cols.max() == 47  # a centred 32x32 square, not stretched to 64 wide
    assert is_margin[:16].all() and is_margin[48:].all()
    # and the square is the training image at that size (nearest neighbour, pixel centres)
    img = state.current.scene.image(i).cpu().numpy().astype(np.float32) / 255.0
    if img.shape[-1] == 4:
        img = img[..., :3] * img[..., 3:] + (1.0 - img[..., 3:])
    idx = ((np.arange(32) + 0.5) * ih / 32).astype(int)
    expect = np.clip(img[idx][:, idx] * 255 + 0.5, 0, 255).astype(int)
    assert np.abs(gt[:, 16:48] - expect).max() <= 1


# ---------------------------------------------------------------------------------------------- awkward list
def test_exports_default_next_to_the_scene_as_absolute_paths(state, tmp_path, monkeypatch):
    from ngp_app.data import synthetic

    scene = synthetic.make_scene(tmp_path / "s", width=16, height=16, n_train=3, n_val=1, n_test=1, progress=False)
    monkeypatch.chdir(tmp_path)
    assert state.exports.export_dir() == tmp_path / "ngp-exports"  # no scene yet: under the working directory
    assert state.open_path("s", start=False)  # a relative path
    assert state.exports.export_dir() == scene / "ngp-exports" and state.exports.export_dir().is_absolute()
    assert state.exports.default_export_path("screenshot") == scene / "ngp-exports" / "screenshot.png"
    assert state.exports.export_path("shots/a.png") == scene / "ngp-exports" / "shots" / "a.png"  # typed relative
    assert state.exports.export_path(tmp_path / "x.png") == tmp_path / "x.png"
    assert state.open_path(scene / "transforms_train.json", start=False)  # a transforms file: its folder
    assert state.exports.export_dir() == scene / "ngp-exports"


def test_keyframes_belong_to_their_scene(state, tmp_path):
    from ngp_app.data import synthetic

    other = synthetic.make_scene(tmp_path / "o", width=16, height=16, n_train=3, n_val=1, n_test=1, progress=False)
    assert state.open_path(DEMO, start=False)
    state.paths.add_keyframe()
    state.camera.orbit(60, 0)
    state.paths.add_keyframe()
    snap = state.wait_job(state.exports.save_snapshot(tmp_path / "snap.npz"))
    assert state.open_path(snap) and len(state.paths.keyframes) == 2  # a snapshot of the same scene keeps them
    assert state.open_path(other, start=False) and state.paths.keyframes == []  # another scene does not


def test_errors_fade_and_clear_but_messages_stay(state):
    state.status_line.set("something broke", error=True)
    t0 = state.status_line.time
    assert state.status_line.alpha(t0 + 1.0) == 1.0 and not state.status_line.expire(t0 + 1.0)
    from ngp_app.gui.status import ERROR_SECONDS, FADE_SECONDS

    assert 0.0 < state.status_line.alpha(t0 + ERROR_SECONDS - FADE_SECONDS / 2) < 1.0  # fading
    assert state.status_line.expire(t0 + ERROR_SECONDS + 0.1) and state.status == "" and not state.status_is_error
    state.status_line.set("saved something")
    assert not state.status_line.expire(state.status_line.time + 1e6) and state.status == "saved something"


def test_export_targets_are_checked_before_any_work(state, tmp_path):
    """Every export checks its path with ``outputs`` first: a refusal is one line and no job starts."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert state.open_path(DEMO, start=False)
    state.paths.add_keyframe()
    before = len(state.jobs.jobs)
    assert state.exports.screenshot(blocker / "shot.png", 8, 8) is None and "not a folder" in state.status
    assert (
        state.exports.screenshot(tmp_path / "shot.jpg", 8, 8) is None
        and "unsupported screenshot format" in state.status
    )
    assert state.exports.save_snapshot(tmp_path / "snap.txt") is None and "unsupported snapshot format" in state.status
    assert state.exports.save_snapshot(blocker / "snap.npz") is None and "not a folder" in state.status
    assert state.exports.export_mesh(blocker / "m.ply") is None and "not a folder" in state.status
    assert state.paths.export_video(blocker / "v.gif", "orbit", 2, 10, 8, 8) is None and "not a folder" in state.status
    assert state.paths.save_keyframes(blocker / "k.json") is None and "not a folder" in state.status
    assert state.status_is_error and len(state.jobs.jobs) == before  # nothing started
    assert not any(tmp_path.glob("*.png")) and not any(tmp_path.glob("*.txt"))


def test_unexpected_errors_become_one_internal_error_line_and_the_app_goes_on(state, tmp_path, monkeypatch):
    import ngp_app.data.loaders as loaders

    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path / "logs"))
    state.post(lambda: 1 / 0)  # a panel callback with a bug
    state.post(lambda: state.status_line.set("the next callback still runs"))
    state.apply_pending()
    assert state.status == "the next callback still runs"
    state.post(lambda: 1 / 0)
    state.apply_pending()
    line = state.status
    assert state.status_is_error and line.startswith("ngp: internal error: ZeroDivisionError: division by zero")
    assert "1 / 0" in Path(line.split("details: ")[1][:-1]).read_text()  # the traceback is in the log file

    def broken(*args, **kwargs):
        raise KeyError("images")

    monkeypatch.setattr(loaders, "load_scene", broken)
    assert not state.open_path(DEMO)
    assert state.status.startswith(f"cannot open {DEMO}: ngp: internal error: KeyError: 'images' (details: ")
    job = state.open_path_async(DEMO)
    state.wait_job(job)
    assert "ngp: internal error: KeyError" in state.status and state.loader.loading is None


def test_one_name_per_render_mode_in_the_cli_and_the_app():
    import argparse

    from ngp_app.cli import build_parser
    from ngp_app.gui.overlays import MODE_LABELS, MODES

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("render", "video"):
        choices = next(a.choices for a in sub.choices[command]._actions if a.dest == "mode")
        for mode in choices:  # the app's key, its label in the panel and the CLI's --mode agree
            assert mode in MODES and MODE_LABELS[mode].lower() == mode, (command, mode)
    assert MODES[0] == "rgb"


def test_help_and_labels_name_what_the_panel_shows(capsys):
    from ngp_app.cli import main

    gui = Path(__file__).resolve().parent.parent / "ngp_app" / "gui"
    panel, path_panel = (gui / "panel.py").read_text(), (gui / "panel_path.py").read_text()
    assert main(["video", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ours (the app's 'Save path')" in text and '("Save path", ' in path_panel
    assert "~2x larger" in panel and "~3x" not in panel  # the optimizer-state checkbox (issue 10: ~2x measured)


def test_render_worker_transitions_are_one_table():
    from ngp_app.gui.render_worker import Phase, next_phase

    # next_phase(view_moved, training, model_moved, refining, sharp)
    assert next_phase(True, True, True, True, True) is Phase.NEW_VIEW  # a moved view always re-renders first
    assert next_phase(False, True, True, False, False) is Phase.FOLLOW_TRAINING
    assert next_phase(False, True, True, True, False) is Phase.REFINE  # refinement goes on before following
    assert next_phase(False, False, False, True, True) is Phase.REFINE
    assert next_phase(False, False, False, False, False) is Phase.RESUME  # still, not training, not sharp
    assert next_phase(False, False, True, False, True) is Phase.IDLE
    assert next_phase(False, True, False, False, False) is Phase.IDLE  # training, no new step yet: wait
