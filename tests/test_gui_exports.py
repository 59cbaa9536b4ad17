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
        assert app.pump(120, until=lambda out=out: f"saved video {out} " in st.status), st.status
        frames[spp] = np.stack(list(iio2.mimread(out)))
    assert st.paths.path_editor.video.spp == 2
    assert frames[1].shape == frames[2].shape and frames[1].shape[0] == 2
    assert not np.array_equal(frames[1], frames[2])


def _video_settings(app, frames: int, w: int, h: int, spp: int) -> None:
    choose(app, "video_path", next(k for k, v in VIDEO_PATHS.items() if v == "orbit"))
    type_into(app, "video_frames", str(frames))
    type_into(app, "video_w", str(w))
    type_into(app, "video_h", str(h))
    type_into(app, "video_spp", str(spp))


def _render_to(app, out: Path):
    """Type ``out`` into the video field and click *Render video*; returns the job the click started."""
    st = app.state
    before = {j.id for j in st.jobs.jobs}
    type_into(app, "video_out", str(out))
    click_item(app, "video_render")
    assert app.pump(10, until=lambda: any(j.id not in before for j in st.jobs.jobs)), st.status
    return next(j for j in st.jobs.jobs if j.id not in before)


def test_videos_queue_and_a_cancelled_one_resumes_by_clicks(app, tiny_snapshot: Path, tmp_path: Path) -> None:
    """Three videos asked for at once render one after another (the waiting ones say so in their job rows); one
    cancelled while it waits never renders. A video cancelled part-way keeps its frames and, asked for again,
    renders only the rest: its frames equal those of the same video rendered whole."""
    import dearpygui.dearpygui as dpg
    import imageio.v3 as iio

    from ngp_app.export.frame_cache import cache_folder

    st = app.state
    if st.current.snapshot_path is None:
        xdnd_drop(app, tiny_snapshot)
        assert app.pump(60, until=lambda: st.current.snapshot_path is not None and st.loader.loading is None)
    assert not st.runner.running
    n = 12
    _video_settings(app, n, 24, 16, 1)  # the app's torch backend renders slowly on the CPU: small videos
    a, b, c = (_render_to(app, tmp_path / name) for name in "abc")  # folders of PNG frames
    row = lambda job: dpg.get_value(f"job_{job.id}_text")  # noqa: E731
    assert app.pump(10, until=lambda: "queued: 2 videos ahead" in row(c) and "queued: 1 video ahead" in row(b))
    click(*panel_point(f"job_{b.id}_cancel"))
    assert app.pump(10, until=lambda: b.state == "cancelled"), row(b)
    assert a.state == "running" and "queued: 1 video ahead" in row(c)  # b's place is given up
    assert app.pump(240, until=lambda: a.state == "done" and c.state == "done"), (st.status, row(a), row(c))
    assert a.finished < c.finished and not (tmp_path / "b").exists()
    assert len(list((tmp_path / "a").glob("*.png"))) == n == len(list((tmp_path / "c").glob("*.png")))

    d = _render_to(app, tmp_path / "d")
    assert app.pump(120, until=lambda: (d.fraction or 0.0) > 3.5 / n), row(d)
    click(*panel_point(f"job_{d.id}_cancel"))
    assert app.pump(30, until=lambda: d.state == "cancelled"), row(d)
    kept = len(list(cache_folder(tmp_path / "d").glob("*.png")))
    assert 3 <= kept < n and f"video cancelled: {kept} of {n} frames kept" in st.status, st.status
    again = _render_to(app, tmp_path / "d")
    assert app.pump(240, until=lambda: again.state == "done"), st.status
    assert f"{kept} frames reused from the interrupted render" in st.status
    assert not cache_folder(tmp_path / "d").exists()
    resumed = np.stack([iio.imread(f) for f in sorted((tmp_path / "d").glob("*.png"))]).astype(int)
    uninterrupted = np.stack([iio.imread(f) for f in sorted((tmp_path / "a").glob("*.png"))]).astype(int)
    assert resumed.shape[0] == n
    assert np.abs(resumed - uninterrupted).max() <= 1  # the same frames (rounding aside: sums may split apart)


def test_a_360_video_by_clicks(app, tiny_snapshot: Path, tmp_path: Path) -> None:
    """The video section's *camera* choice: 360 degrees keeps the size 2:1 as the width is typed, and the mp4 has
    equirectangular frames of that size with the spherical-video metadata players read."""
    import dearpygui.dearpygui as dpg
    import imageio.v3 as iio

    from ngp_app.gui.widgets import VIDEO_CAMERAS

    st = app.state
    if st.current.snapshot_path is None:
        xdnd_drop(app, tiny_snapshot)
        assert app.pump(60, until=lambda: st.current.snapshot_path is not None and st.loader.loading is None)
    choose(app, "video_path", next(k for k, v in VIDEO_PATHS.items() if v == "orbit"))
    type_into(app, "video_frames", "2")
    type_into(app, "video_spp", "1")
    choose(app, "video_camera", next(k for k, v in VIDEO_CAMERAS.items() if v == "equirectangular"))
    type_into(app, "video_w", "40")
    assert app.pump(5, until=lambda: dpg.get_value("video_h") == 20)  # the height follows: 2:1
    out = tmp_path / "360.mp4"
    type_into(app, "video_out", str(out))
    click_item(app, "video_render")
    assert app.pump(120, until=lambda: f"saved video {out} " in st.status), st.status  # not an earlier video's
    assert "40x20 360-degree" in st.status
    data = out.read_bytes()
    assert b"sv3d" in data and b"equi" in data and b"st3d" in data  # Spherical Video V2 boxes
    assert iio.imread(out, index=0).shape[:2] == (20, 40)
    choose(app, "video_camera", next(k for k, v in VIDEO_CAMERAS.items() if v == "pinhole"))


def test_the_bundle_by_clicks(app, demo_trained: Path, tmp_path: Path) -> None:
    """*Deliverables*: a cancelled bundle leaves nothing; a finished one is a GLB that trimesh opens, within the face
    budget typed, with no piece below the size limit, and a fly-through of the frames and size typed."""
    import dearpygui.dearpygui as dpg
    import imageio.v3 as iio
    import trimesh

    from ngp_app.export.bundle import BUNDLE_FILES

    st = app.state
    xdnd_drop(app, demo_trained)
    assert app.pump(60, until=lambda: st.current.snapshot_path == demo_trained and st.loader.loading is None)
    click_item(app, "mesh_header")
    app.pump(0.3)
    type_into(app, "mesh_res", "48")
    click_item(app, "bundle_header")
    app.pump(0.3)
    type_into(app, "bundle_faces", "800")
    type_into(app, "bundle_frames", "3")
    type_into(app, "bundle_w", "32")
    type_into(app, "bundle_h", "24")

    cancelled = tmp_path / "cancelled"
    type_into(app, "bundle_out", str(cancelled))
    before = {j.id for j in st.jobs.jobs}
    click_item(app, "bundle_export")
    assert app.pump(10, until=lambda: any(j.id not in before for j in st.jobs.jobs)), st.status
    job = next(j for j in st.jobs.jobs if j.id not in before)
    assert app.pump(10, until=lambda: dpg.does_item_exist(f"job_{job.id}_cancel"))
    app.pump(0.2)
    click(*panel_point(f"job_{job.id}_cancel"))
    assert app.pump(60, until=lambda: job.state == "cancelled"), job.describe()
    assert "bundle cancelled" in st.status
    written = [p.name for p in cancelled.iterdir()] if cancelled.exists() else []
    assert all(name in BUNDLE_FILES.values() for name in written)  # only complete files, each named in the status
    assert all(name in st.status for name in written) and (written or "nothing written" in st.status)

    out = tmp_path / "bundle"
    type_into(app, "bundle_out", str(out))
    click_item(app, "bundle_export")
    assert app.pump(300, until=lambda: "saved the bundle" in st.status), st.status
    mesh = trimesh.load(out / "model.glb", force="mesh")
    assert 0 < len(mesh.faces) <= 800
    pieces = mesh.split(only_watertight=False)
    assert min(len(p.faces) for p in pieces) >= 0.01 * len(mesh.faces)
    frames = iio.imread(out / "flythrough.mp4", index=None)
    assert frames.shape[:3] == (3, 24, 32)
    assert (out / "flythrough_path.json").is_file()


def test_a_render_job_by_clicks_renders_the_same_frames(app, tiny_snapshot: Path, tmp_path: Path) -> None:
    """*Save render job* with a snapshot in view: the job names that snapshot, and ``ngp video --job`` renders the
    frames the app renders for the same settings."""
    import json

    import imageio.v3 as iio

    from ngp_app.cli import main

    st = app.state
    xdnd_drop(app, tiny_snapshot)
    assert app.pump(60, until=lambda: st.current.snapshot_path == tiny_snapshot and st.loader.loading is None)
    assert not st.runner.running
    _video_settings(app, 3, 24, 16, 1)
    type_into(app, "video_out", str(tmp_path / "app_frames"))
    click_item(app, "video_render")
    assert app.pump(120, until=lambda: f"saved video {tmp_path / 'app_frames'} " in st.status), st.status
    job = tmp_path / "jobs" / "render_job.json"
    type_into(app, "video_out", str(tmp_path / "job_frames"))
    type_into(app, "job_out", str(job))
    click_item(app, "job_out:Save render job (ngp video --job)")
    assert app.pump(20, until=lambda: "saved render job" in st.status), st.status
    data = json.loads(job.read_text())
    assert (job.parent / data["snapshot"]).resolve() == tiny_snapshot.resolve()
    assert (data["path"], data["frames"], data["width"], data["height"]) == ("orbit", 3, 24, 16)
    assert main(["video", "--job", str(job), "--backend", "torch", "--device", "cpu", "--quiet"]) == 0
    ours = [iio.imread(p).astype(int) for p in sorted((tmp_path / "app_frames").glob("*.png"))]
    theirs = [iio.imread(p).astype(int) for p in sorted((tmp_path / "job_frames").glob("*.png"))]
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert np.abs(a - b).max() <= 1  # the same model, path and settings: the same pixels (rounding aside)
