"""Snapshots find their scene from any working directory (issue 10, item 4): the scene's absolute path plus its
path relative to the snapshot, for ``ngp train`` snapshots and the app's alike."""

from __future__ import annotations

import shutil
from pathlib import Path

from ngp_app.data import synthetic
from ngp_app.snapshot import read_snapshot_meta, snapshot_scene_path


def tiny_scene(folder: Path) -> Path:
    return synthetic.make_scene(folder, width=16, height=16, n_train=3, n_val=1, n_test=1, progress=False)


def test_ngp_train_snapshot_finds_its_scene_from_elsewhere_and_after_a_move(tmp_path, monkeypatch):
    from ngp_app.cli import main

    work = tmp_path / "work"
    tiny_scene(work / "scene")
    monkeypatch.chdir(work)
    assert main(["train", "scene", "--steps", "2", "--out", "runs/a", "--quiet"]) == 0  # a relative scene path
    snap = work / "runs" / "a" / "snapshot.npz"
    scene = read_snapshot_meta(snap)["scene"]
    assert Path(scene["path"]).is_absolute() and scene["path_from_snapshot"] == "../../scene"
    monkeypatch.chdir(tmp_path)  # another working directory: the absolute path still works
    assert snapshot_scene_path(scene, snap) == work / "scene"
    moved = tmp_path / "moved"
    shutil.move(str(work), str(moved))  # scene and snapshot moved together: the relative path works
    assert snapshot_scene_path(scene, moved / "runs" / "a" / "snapshot.npz") == moved / "runs" / "a" / "../../scene"
    shutil.rmtree(moved / "scene")
    assert snapshot_scene_path(scene, moved / "runs" / "a" / "snapshot.npz") is None


def test_app_opens_a_snapshot_from_another_directory_and_shows_its_step(tmp_path, monkeypatch):
    from ngp_app.gui.session import Session

    work = tmp_path / "work"
    tiny_scene(work / "scene")
    monkeypatch.chdir(work)
    state = Session(config="small", device="cpu", backend="torch")
    try:
        assert state.open_path("scene", start=False)  # relative to the working directory
        for _ in range(2):
            state.trainer.step()
        snap = state.wait_job(state.exports.save_snapshot(tmp_path / "snaps" / "s.npz"))
        monkeypatch.chdir(tmp_path / "snaps")
        assert state.open_path(snap)
        assert state.trainer is not None and "training can continue" in state.status and state.step == 2
        shutil.rmtree(work / "scene")
        assert state.open_path(snap)
        assert state.trainer is None and "view only" in state.status
        assert state.step == 2  # the snapshot's step, not 0
    finally:
        state.close()
