"""State-level tests of the camera-path editor (keys from the viewport camera, selection, preview playback,
files, overlay geometry) and of the per-image loss table (sorting, excluding frames while training)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ngp_app.errors import NgpError
from ngp_app.gui.camera import OrbitCamera
from ngp_app.gui.image_table import ImageTable
from ngp_app.gui.path_editor import PathEditor, overlay_segments


def _editor_with_three_keys() -> PathEditor:
    cam = OrbitCamera()
    ed = PathEditor(cam)
    for yaw, fov in ((0.0, 40.0), (1.2, 50.0), (2.4, 60.0)):
        cam.yaw = yaw
        cam.set_fov(fov)
        ed.add_view()
    return ed


def test_keys_come_from_the_view_and_jumping_shows_them_exactly() -> None:
    ed = _editor_with_three_keys()
    cam = ed.camera
    assert [k.time for k in ed.path.keys] == [0.0, 2.0, 4.0] and ed.selected == 2
    assert [k.fov_y_deg for k in ed.path.keys] == [40.0, 50.0, 60.0]
    cam.orbit(200, 30)
    ed.jump(0)
    assert np.allclose(cam.c2w().numpy(), ed.path.keys[0].c2w, atol=1e-6) and cam.fov_deg == 40.0
    assert ed.selected == 0
    # a key with roll (an imported one) is shown as it is, and moving on starts from it upright
    rolled = ed.path.keys[1].c2w.copy()
    c, s = math.cos(0.3), math.sin(0.3)
    rolled[:, :2] = rolled[:, :2] @ np.array([[c, -s], [s, c]])
    ed.path.keys[1].c2w = rolled
    ed.jump(1)
    assert np.allclose(cam.c2w().numpy(), rolled, atol=1e-6)
    v = cam.version
    cam.orbit(1, 0)
    assert cam.pose is None and cam.version > v
    assert np.allclose(cam.eye, rolled[:, 3], atol=0.05)


def test_insert_replace_delete_reorder_and_timing() -> None:
    ed = _editor_with_three_keys()
    cam = ed.camera
    first, last = ed.path.keys[0], ed.path.keys[2]
    ed.select(0)
    cam.yaw = 0.6
    assert ed.insert_view() == 1 and ed.path.keys[1].time == 1.0  # between keys 0 and 1, halfway in time
    v = ed.version
    assert ed.split_selected() == 2 and ed.selected == 2 and ed.path.keys[2].time == 1.5 and ed.version > v
    ed.delete_selected()
    assert ed.selected == 2 and [k.time for k in ed.path.keys] == [0.0, 1.0, 2.0, 4.0]
    ed.select(3)
    cam.yaw, cam.fov_deg = 3.0, 35.0
    ed.replace_selected()
    assert ed.path.keys[3] is last and last.fov_y_deg == 35.0 and last.time == 4.0
    assert np.allclose(last.c2w, cam.c2w().numpy(), atol=1e-6)
    ed.move_selected(-1)
    assert ed.selected == 2 and ed.path.keys[2] is last and last.time == 2.0
    ed.select(0)
    ed.delete_selected()
    assert ed.path.keys[0] is not first and ed.path.keys[0].time == 0.0 and ed.selected == 0
    v = ed.version
    ed.set_fov(0, 70.0)
    ed.set_duration(9.0)
    assert ed.path.end_time == 9.0 and ed.version > v
    ed.set_loop(True)
    assert ed.path.loop and ed.path.duration > ed.path.keys[-1].time
    ed.retime(even_speed=True)
    ed.set_fps(24)
    assert ed.path.fps == 24 and ed.path.n_frames() == round(ed.path.duration * 24)
    with pytest.raises(NgpError, match="frame rate"):
        ed.set_fps(0)
    ed.clear()
    assert ed.selected is None and not ed.path.keys
    with pytest.raises(NgpError, match="no keyframes"):
        ed.delete_selected()


def test_preview_plays_scrubs_and_stops_at_the_end() -> None:
    ed = _editor_with_three_keys()
    cam = ed.camera
    with pytest.raises(NgpError, match="at least two"):
        PathEditor(OrbitCamera()).play()
    ed.play()
    assert ed.playing and ed.preview and np.allclose(cam.c2w().numpy(), ed.path.keys[0].c2w, atol=1e-6)
    v = cam.version
    assert ed.tick(1.0) and cam.version > v
    assert np.allclose(cam.c2w().numpy(), ed.path.evaluate(1.0).c2w, atol=1e-6)
    assert math.isclose(cam.fov_deg, ed.path.evaluate(1.0).fov_y_deg)
    ed.tick(10.0)  # past the end: stops on the last key
    assert not ed.playing and ed.play_time == 4.0
    assert np.allclose(cam.c2w().numpy(), ed.path.keys[2].c2w, atol=1e-6)
    ed.play()  # from the end it starts over
    assert ed.play_time == 0.0
    ed.pause()
    assert not ed.tick(1.0)
    ed.scrub(3.0)
    assert ed.preview and not ed.playing and np.allclose(cam.c2w().numpy(), ed.path.evaluate(3.0).c2w, atol=1e-6)
    ed.set_loop(True)
    ed.play()
    ed.tick(ed.path.duration - 3.0 + 0.5)  # wraps around
    assert math.isclose(ed.play_time, 0.5)


def test_editor_files_and_video_settings(tmp_path: Path) -> None:
    meta = {"scale": 0.33, "offset": [0.5, 0.5, 0.5]}
    ed = _editor_with_three_keys()
    ed.video.width, ed.video.height = 800, 450
    out = ed.save(tmp_path / "path.json", meta)
    other = PathEditor(OrbitCamera())
    assert other.load(out, meta) == 3 and other.selected == 0
    assert (other.video.width, other.video.height) == (800, 450)
    for a, b in zip(ed.path.keys, other.path.keys):
        assert np.allclose(a.c2w, b.c2w, atol=1e-6) and a.time == b.time and a.fov_y_deg == b.fov_y_deg
    other.video.quality = "draft"
    assert other.video.render_size() == (400, 224) and other.video.encoder_quality() == 5
    assert len(other.frame_cameras()) == 4 * 30 + 1
    with pytest.raises(NgpError, match="no keyframes to save"):
        PathEditor(OrbitCamera()).save(tmp_path / "empty.json", meta)
    with pytest.raises(NgpError, match="no such camera path"):
        other.load(tmp_path / "missing.json", meta)
    assert len(other.path.keys) == 3  # a failed load keeps the path


def test_overlay_draws_the_spline_a_frustum_per_key_and_the_selection() -> None:
    ed = _editor_with_three_keys()
    segs, cols = overlay_segments(ed, per_segment=10)
    assert segs.shape == (2 * 10 + 3 * 8, 2, 3) and cols.shape == (len(segs), 4)
    spline = segs[:20]
    assert np.allclose(spline[0, 0], ed.path.keys[0].c2w[:, 3]) and np.allclose(
        spline[-1, 1], ed.path.keys[2].c2w[:, 3]
    )
    assert np.allclose(spline[1:, 0], spline[:-1, 1])  # one connected polyline
    key_cols = cols[20:].reshape(3, 8, 4)[:, 0]
    assert (key_cols[2] != key_cols[0]).any() and (key_cols[0] == key_cols[1]).all()  # key 2 is selected
    apex = segs[20 + 16, 0]
    assert np.allclose(apex, ed.path.keys[2].c2w[:, 3])
    ed.scrub(1.0)
    assert len(overlay_segments(ed, per_segment=10)[0]) == len(segs) + 8  # the preview camera


# ---------------------------------------------------------------------------------------------- image table
class _Stats:
    def __init__(self, mses):
        self.mses = mses

    def snapshot(self):
        from ngp_app.train.image_stats import ImageLoss

        return [
            ImageLoss(i, m, -10 * math.log10(m) if not math.isnan(m) else math.nan, 0 if math.isnan(m) else 5.0)
            for i, m in enumerate(self.mses)
        ]


class _Scene:
    def __init__(self, n):
        self.file_names = [f"img_{i:02d}.png" for i in range(n)]
        self.excluded: tuple[int, ...] = ()
        self.n_frames = n

    def set_excluded(self, idx):
        if len(idx) >= self.n_frames:
            raise ValueError("at least one frame must stay in training")
        self.excluded = tuple(sorted(idx))


class _Trainer:
    def __init__(self, mses):
        self.image_stats = _Stats(mses)
        self.scene = _Scene(len(mses))


def test_image_table_sorts_refreshes_and_excludes() -> None:
    tr = _Trainer([0.01, 0.05, float("nan"), 0.002])
    table = ImageTable(interval=1.0)
    assert table.refresh(tr, now=0.0)
    assert [r.index for r in table.rows] == [1, 0, 3, 2]  # worst first, the unsampled frame last
    assert table.rows[0].name == "img_01.png" and math.isclose(table.rows[0].psnr, 13.0103, abs_tol=1e-3)
    tr.image_stats.mses[3] = 0.5
    assert not table.refresh(tr, now=0.5)  # rate-limited
    assert table.refresh(tr, now=1.5) and table.rows[0].index == 3
    table.sort_by("loss")  # same key: flips to best first, nan still last
    assert [r.index for r in table.rows] == [0, 1, 3, 2]
    table.sort_by("name")
    assert [r.index for r in table.rows] == [0, 1, 2, 3]
    table.sort_by("index", descending=True)
    assert [r.index for r in table.rows] == [3, 2, 1, 0]
    assert table.toggle_excluded(tr, 3) and tr.scene.excluded == (3,)
    assert next(r for r in table.rows if r.index == 3).excluded
    assert [r.index for r in table.worst(2)] == [1, 0]  # excluded frames are not among the worst to act on
    assert not table.toggle_excluded(tr, 3) and tr.scene.excluded == ()
    for i in range(3):
        table.toggle_excluded(tr, i)
    with pytest.raises(ValueError, match="at least one"):
        table.toggle_excluded(tr, 3)
    assert tr.scene.excluded == (0, 1, 2)
    assert table.refresh(None) and table.rows == []


def test_the_same_view_is_not_added_twice() -> None:
    ed = _editor_with_three_keys()
    assert ed.add_view() == 2 and len(ed.path.keys) == 3  # the view is key 2 already: selected, not added
    ed.camera.yaw = 0.0
    ed.camera.set_fov(40.0)
    assert ed.add_view() == 0 and len(ed.path.keys) == 3  # any key with this exact pose and field of view
    ed.camera.set_fov(41.0)  # the same pose with another field of view is another key
    assert ed.add_view() == 3 and len(ed.path.keys) == 4


def test_undo_takes_back_edits_in_order_and_a_refused_edit_leaves_nothing_to_undo() -> None:
    ed = _editor_with_three_keys()
    assert len(ed.history) == 3  # the three added keys
    times = [k.time for k in ed.path.keys]
    ed.set_duration(10.0)
    ed.select(1)
    ed.delete_selected()
    with pytest.raises(NgpError):
        ed.set_fps(-1.0)  # refused: not an edit
    ed.clear()
    assert not ed.path.keys and len(ed.history) == 6
    assert ed.undo() and len(ed.path.keys) == 2 and ed.path.end_time == pytest.approx(10.0)
    assert ed.undo() and len(ed.path.keys) == 3 and ed.selected == 1  # the deleted key, selected as it was
    assert ed.undo() and [k.time for k in ed.path.keys] == times
    v = ed.version
    assert ed.undo() and len(ed.path.keys) == 2 and ed.version > v
    assert ed.undo() and ed.undo() and not ed.path.keys and not ed.undo()  # back to the empty start, then nothing
    for _ in range(120):
        ed.set_loop(not ed.path.loop)
    assert len(ed.history) == 100  # bounded
