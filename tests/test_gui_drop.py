"""Drag-and-drop onto the real app's viewport as a file manager does it: an XDND drag from another process
(tests/xdnd_source.py) under Xvfb, no direct callback calls. A scene folder, a snapshot, a photo folder and a video
each start the right job. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_drop.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gui_support import empty_app, require_app, xdnd_drop

pytestmark = pytest.mark.gui

require_app()

from ngp_app.data import synthetic  # noqa: E402


@pytest.fixture(scope="module")
def app():
    yield from empty_app(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return synthetic.make_scene(
        tmp_path_factory.mktemp("drop") / "tiny", width=16, height=16, n_train=4, n_val=1, n_test=1, progress=False
    )


def test_a_dropped_scene_folder_opens_and_trains(app, tiny):
    xdnd_drop(app, tiny)
    st = app.state
    assert app.pump(10, until=lambda: st.loader.loading == "tiny" or st.current.scene is not None), st.status
    assert app.pump(60, until=lambda: st.loader.loading is None and st.trainer is not None), st.status
    assert not st.status_is_error, st.status
    assert Path(st.current.scene.path) == tiny and st.current.scene.n_frames == 4
    assert app.pump(60, until=lambda: st.step >= 2), st.status  # it trains


def test_a_dropped_snapshot_opens_at_its_step(app, tiny, tmp_path):
    st = app.state
    assert app.pump(60, until=lambda: st.trainer is not None and st.step >= 2), st.status
    snap = st.trainer.save_snapshot(tmp_path / "tiny.npz")
    from ngp_app.snapshot import load_snapshot

    step = load_snapshot(snap).step  # training went on while it was written
    xdnd_drop(app, snap)
    assert app.pump(60, until=lambda: st.current.snapshot_path is not None and st.loader.loading is None), st.status
    assert not st.status_is_error, st.status
    assert Path(st.current.snapshot_path) == Path(snap) and st.current.snapshot_step == step


def cancel_import(app) -> None:
    st = app.state
    st.importer.job.cancel()
    assert app.pump(60, until=lambda: not st.importer.job.active), st.importer.job.describe()


def test_a_dropped_photo_folder_starts_an_import(app, tiny, tmp_path):
    pytest.importorskip("pycolmap")
    photos = shutil.copytree(tiny / "train", tmp_path / "photos")
    before = app.state.importer.job
    xdnd_drop(app, photos, inline_types=True)  # a source with the types in XdndEnter itself
    st = app.state
    assert app.pump(10, until=lambda: st.importer.job is not before), st.status
    assert st.importer.job.label == "import photos" and st.importer.out.name.startswith("photos")
    cancel_import(app)


def test_a_dropped_video_starts_an_import(app, tmp_path):
    pytest.importorskip("pycolmap")
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with imageio.get_writer(video, fps=10) as w:  # 2 s of a moving noise texture
        base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        for i in range(20):
            w.append_data(np.roll(base, 3 * i, axis=1))
    before = app.state.importer.job
    xdnd_drop(app, video)
    st = app.state
    assert app.pump(10, until=lambda: st.importer.job is not before), st.status
    assert st.importer.job.label == "import clip.mp4" and st.importer.out.name.startswith("clip")
    cancel_import(app)


def test_a_dropped_single_photo_says_to_drop_its_folder(app, tiny):
    """One photo is not a scene: the status line says what to drop instead (as ``ngp import`` does), no job starts
    and the app keeps running (issue 22 item 19)."""
    photo = next((tiny / "train").glob("*.png"))
    before = app.state.importer.job
    xdnd_drop(app, photo)
    st = app.state
    assert app.pump(10, until=lambda: "a single photo" in st.status), st.status
    assert st.status_is_error and "drop the folder that holds the photos" in st.status
    assert st.importer.job is before and app.running
