"""The app's import of dropped captures, driven without a window (gui/importing.py): what counts as import
material, where the scene goes, the background job with progress and cancel, then the scene opening and
training, and the sparse-points view mode."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ngp_app.gui.importing import SCENE_SUFFIX, scene_dir_for, wants_import
from ngp_app.gui.session import Session
from tests.conftest import app_state, wait_for

DEMO = Path(__file__).resolve().parent.parent / "scenes" / "demo"


@pytest.fixture()
def state():
    """Imported scenes train at 1/2 size (their images are small already)."""
    yield from app_state(2)


def test_what_is_import_material(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    video = tmp_path / "walk.MP4"
    video.write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert wants_import(photos) and wants_import(video) and wants_import(tmp_path / "photos")
    assert not wants_import(DEMO)  # a scene (transforms_train.json)
    (tmp_path / "empty").mkdir()
    assert not wants_import(tmp_path / "empty")  # nothing to import: the loader's "not a scene" error
    assert not wants_import(tmp_path / "notes.txt") and not wants_import(tmp_path / "missing")
    assert scene_dir_for(photos) == tmp_path / f"photos{SCENE_SUFFIX}"
    assert scene_dir_for(video) == tmp_path / f"walk{SCENE_SUFFIX}"
    capture = tmp_path / "capture" / "images"
    capture.mkdir(parents=True)
    assert scene_dir_for(capture) == tmp_path / f"capture{SCENE_SUFFIX}"


def test_bad_drops_report_an_error_and_the_app_goes_on(state: Session, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    state.wait_job(state.open_path_async(tmp_path / "empty"), 30)
    assert not state.importer.running and state.importer.job is None
    assert state.status_is_error and "not a scene" in state.status and "no photos to import" in state.status
    assert not (tmp_path / f"empty{SCENE_SUFFIX}").exists()
    one = tmp_path / "one"  # photos, but too few: the import says so
    one.mkdir()
    iio.imwrite(one / "a.png", np.zeros((8, 8, 3), np.uint8))
    state.wait_job(state.open_path_async(one), 30)
    assert state.importer.job.state == "failed" and "too few images" in state.status
    assert not (tmp_path / f"one{SCENE_SUFFIX}").exists()
    (tmp_path / "notes.txt").write_text("hello")
    state.wait_job(state.open_path_async(tmp_path / "notes.txt"), 30)
    assert state.loader.loading is None and state.status_is_error and "notes.txt" in state.status


def test_an_import_target_is_checked_like_every_output(state: Session, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "taken").write_text("a file where the scene folder would go")
    state.wait_job(state.importer.start(photos, out=tmp_path / "taken"), 30)
    assert state.status_is_error and "taken: exists and is not a folder" in state.status
    assert (tmp_path / "taken").read_text().startswith("a file")


def test_a_dropped_colmap_project_imports_opens_and_trains(state: Session, tmp_path: Path) -> None:
    pytest.importorskip("pycolmap")
    from ngp_app.data.synthetic import ring_poses
    from tests.colmap_project import write_project

    project, _ = write_project(
        tmp_path / "capture",
        ring_poses(10),
        "SIMPLE_RADIAL",
        [70.0, 32.0, 24.0, 0.01],
        (64, 48),
        False,
        (1.0, np.eye(3), np.zeros(3)),
    )
    job = state.open_path_async(project)
    assert job is state.importer.job and state.importer.out == tmp_path / f"capture{SCENE_SUFFIX}"
    assert state.importer.running and job.label == "import capture"  # its row in the panel, its line in the HUD
    state.wait_job(job, 120)
    assert job.state == "done" and job.fraction == 1.0 and job.stage.startswith("writing"), state.status
    assert "imported capture: 10 of 10 images registered" in state.status
    assert wait_for(lambda: state.apply_pending() or (state.trainer is not None and state.loader.loading is None), 120)
    assert state.current.meta["path"] == str(state.importer.out) and state.runner.running
    assert len(state.current.sparse_points[0]) == 200  # the points mode has something to show
    assert wait_for(lambda: state.step >= 2, 120)
    state.runner.stop()
    lit = state.view.render_view(24, 16)
    state.settings.mode = "points"
    dim = state.view.render_view(24, 16)
    assert dim.shape == (16, 24, 4) and dim[..., :3].astype(int).sum() < 0.5 * lit[..., :3].astype(int).sum()
    names = state.view.overlay_names()
    assert "points" in names and "cameras" in names  # drawn over the dimmed render as GL points and lines
    points = next(lay for lay in state.view.overlay_layers() if lay.name == "points")
    assert points.kind == "points" and len(points.vertices) == 200
    # dropping it again opens the earlier import instead of redoing it
    load = state.open_path_async(project)
    assert state.importer.job is job and load is not job and "imported before" in state.status
    state.wait_job(load, 60)


def test_cancel_stops_an_import_and_removes_its_folder(state: Session, tmp_path: Path) -> None:
    pytest.importorskip("pycolmap")
    photos = tmp_path / "noise"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        iio.imwrite(photos / f"{i}.png", rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8))
    job = state.importer.start(photos)
    assert job is not None and state.importer.running
    assert state.importer.start(photos) is None and "is running; cancel it first" in state.status  # one at a time
    assert wait_for(lambda: job.stage.startswith("features"), 60), job.describe()
    assert state.importer.cancel()
    state.wait_job(job, 60)
    assert job.state == "cancelled" and not state.importer.out.exists()
    assert "cancelled: nothing kept" in state.status and state.current.scene is None
