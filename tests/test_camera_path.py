"""The camera-path model (times, fields of view, spline, editing), our file format and the instant-ngp and
nerfstudio importers on small hand-written files, and ``ngp video --path`` with them."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ngp_app.data.cameras import look_at, ngp_to_nerf
from ngp_app.errors import NgpError
from ngp_app.export.path_files import detect_format, load_path, path_to_json, save_path
from ngp_app.export.path_model import CameraPath, Keyframe, PathCamera

META = {"scale": 0.33, "offset": [0.5, 0.5, 0.5]}

# A NeRF (Blender) camera at (0, -4, 0) looking at the origin along +y, z up: OpenGL axes x right, y up, z back.
NERF_FRONT = [[1, 0, 0, 0], [0, 0, -1, -4], [0, 1, 0, 0], [0, 0, 0, 1]]
# ... and one at (4, 0, 0) looking along -x.
NERF_SIDE = [[0, 0, 1, 4], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def _key(eye, target=(0.5, 0.5, 0.5), fov=50.0, time=0.0) -> Keyframe:
    return Keyframe(look_at(eye, target).numpy().astype(np.float64), fov, time)


def _square_path(loop: bool = False) -> CameraPath:
    """Four keys around the scene at uneven times, with different fields of view."""
    keys = [
        _key([1.5, 0.6, 0.5], fov=40, time=0.0),
        _key([0.5, 0.7, 1.5], fov=60, time=1.0),
        _key([-0.5, 0.5, 0.5], fov=45, time=3.0),
        _key([0.5, 0.8, -0.5], fov=30, time=3.5),
    ]
    path = CameraPath(keys, 3.5, 24.0, False)
    if loop:
        path.loop, path.duration = True, 5.0
    return path.validate()


def _velocity(path: CameraPath, t: float, h: float = 1e-5) -> np.ndarray:
    return (path.evaluate(t + h).c2w[:, 3] - path.evaluate(t - h).c2w[:, 3]) / (2 * h)


# ---------------------------------------------------------------------------------------------- spline
@pytest.mark.parametrize("loop", [False, True])
def test_spline_passes_every_key_at_its_time_smoothly(loop: bool) -> None:
    path = _square_path(loop)
    for k in path.keys:
        cam = path.evaluate(k.time)
        assert np.allclose(cam.c2w, k.c2w, atol=1e-9) and math.isclose(cam.fov_y_deg, k.fov_y_deg, abs_tol=1e-9)
    times = np.linspace(0, path.end_time, 400)
    for t in times:
        r = path.evaluate(t).c2w[:, :3]
        assert np.allclose(r.T @ r, np.eye(3), atol=1e-9) and np.linalg.det(r) > 0
    for k in path.keys[1:-1] if not loop else path.keys:  # C1: the velocity is continuous through each key
        t = k.time if k.time > 0 else path.duration  # a loop's first key, approached from the end
        h = 1e-4
        left = (path.evaluate(t - h).c2w[:, 3] - path.evaluate(t - 2 * h).c2w[:, 3]) / h
        right = (path.evaluate(t + 2 * h).c2w[:, 3] - path.evaluate(t + h).c2w[:, 3]) / h
        assert np.linalg.norm(left - right) < 0.02 * np.linalg.norm(left) + 1e-3
    # the spacing in time shows in the speed: the long 1 -> 3 s segment is slower than the short 3 -> 3.5 s one
    assert np.linalg.norm(_velocity(path, 2.0)) < np.linalg.norm(_velocity(path, 3.25))
    if loop:
        assert np.allclose(path.evaluate(path.duration - 1e-9).c2w, path.keys[0].c2w, atol=1e-6)
        assert np.allclose(path.evaluate(path.duration + 1.0).c2w, path.evaluate(1.0).c2w)


def test_two_keys_move_straight_at_constant_speed_and_fov_interpolates() -> None:
    a, b = _key([1.5, 0.5, 0.5], fov=30.0), _key([0.5, 0.5, 1.5], fov=70.0, time=2.0)
    path = CameraPath([a, b], 2.0).validate()
    mid = path.evaluate(1.0)
    assert np.allclose(mid.c2w[:, 3], 0.5 * (a.c2w[:, 3] + b.c2w[:, 3]))
    assert math.isclose(mid.fov_y_deg, 50.0)
    forward = mid.c2w[:, 2]  # halfway between the two viewing directions (slerp)
    expect = a.c2w[:, 2] + b.c2w[:, 2]
    assert np.allclose(forward, expect / np.linalg.norm(expect), atol=1e-9)
    speeds = [np.linalg.norm(_velocity(path, t)) for t in (0.2, 1.0, 1.8)]
    assert max(speeds) - min(speeds) < 1e-6


def test_frames_cover_the_path_at_its_rate() -> None:
    path = _square_path()
    assert path.n_frames() == round(3.5 * 24) + 1
    cams = path.cameras()
    assert np.allclose(cams[0].c2w, path.keys[0].c2w) and np.allclose(cams[-1].c2w, path.keys[-1].c2w)
    assert path.cameras(5)[2].fov_y_deg == path.evaluate(3.5 / 2).fov_y_deg
    loop = _square_path(loop=True)
    assert loop.n_frames() == 5 * 24
    times = loop.frame_times()
    assert times[-1] < loop.duration and math.isclose(times[1], 1 / 24)
    single = CameraPath([_key([1.5, 0.5, 0.5])])
    assert len(single.cameras()) == 1 and len(single.cameras(4)) == 4


# ---------------------------------------------------------------------------------------------- editing
def test_editing_operations() -> None:
    path = CameraPath()
    for i, eye in enumerate([[1.5, 0.5, 0.5], [0.5, 0.5, 1.5], [-0.5, 0.5, 0.5]]):
        assert path.append(_key(eye, fov=40 + i).camera()) == i
    assert [k.time for k in path.keys] == [0.0, 2.0, 4.0] and path.duration == 4.0
    third = path.keys[2]
    assert path.insert(2, _key([0.2, 0.6, 1.2]).camera()) == 2  # halfway in time between keys 1 and 2
    assert path.keys[2].time == 3.0 and path.keys[3] is third
    path.replace_pose(0, _key([1.4, 0.7, 0.4], fov=33).camera())
    assert path.keys[0].fov_y_deg == 33 and path.keys[0].time == 0.0
    assert path.move(3, -1) == 2 and path.keys[2] is third and path.keys[2].time == 3.0  # times stay in place
    assert path.set_time(2, 10.0) == pytest.approx(4.0 - 1e-3)  # clamped before the next key
    assert path.set_time(3, 7.0) == 7.0 and path.duration == 7.0  # the last key sets an open path's end
    path.set_duration(3.5)
    assert [round(k.time, 6) for k in path.keys] == [0.0, 1.0, 2.0 - 5e-4, 3.5]
    path.delete(0)
    assert path.keys[0].time == 0.0 and path.duration == pytest.approx(2.5)
    path.set_loop(True)
    assert path.loop and path.duration > path.keys[-1].time
    path.retime(6.0, even_speed=True)
    gaps = np.diff([k.time for k in path.keys] + [6.0])
    pts = [k.c2w[:, 3] for k in path.keys] + [path.keys[0].c2w[:, 3]]
    dist = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    assert np.allclose(gaps / dist, gaps[0] / dist[0])  # constant speed along the chords
    path.set_fov(1, 500.0)
    assert path.keys[1].fov_y_deg == 179.0
    with pytest.raises(NgpError, match="no keyframe 9"):
        path.delete(9)


@pytest.mark.parametrize("loop", [False, True])
def test_split_adds_a_key_where_the_path_is_halfway(loop: bool) -> None:
    path = _square_path(loop)
    before = path.copy()
    assert path.split(1) == 2 and len(path.keys) == 5
    key = path.keys[2]
    assert key.time == pytest.approx(2.0)  # halfway between 1.0 and 3.0
    at_mid = before.evaluate(2.0)
    assert np.allclose(key.c2w, at_mid.c2w, atol=1e-9) and key.fov_y_deg == pytest.approx(at_mid.fov_y_deg)
    assert [k.time for k in path.keys] == [0.0, 1.0, 2.0, 3.0, 3.5] and path.end_time == before.end_time
    for k in path.keys:  # the spline still passes every key, the new one included
        assert np.allclose(path.evaluate(k.time).c2w, k.c2w, atol=1e-6)
    ts = np.linspace(0.0, before.end_time, 41)
    drift = max(np.linalg.norm(path.evaluate(t).c2w[:, 3] - before.evaluate(t).c2w[:, 3]) for t in ts)
    assert drift < 0.1  # the path keeps its course: only the tangents near the new key change
    path.validate()
    if loop:  # the closing segment splits too: halfway between the last key (3.5) and the end (5.0)
        assert path.split(4) == 5 and path.keys[5].time == pytest.approx(4.25) and path.duration == 5.0
    else:
        with pytest.raises(NgpError, match="needs a key after"):
            path.split(4)
    close = CameraPath([_key([1.5, 0.6, 0.5], time=0.0), _key([0.5, 0.7, 1.5], time=0.0015)], 0.0015, 24.0, False)
    with pytest.raises(NgpError, match="too close in time"):
        close.split(0)


@settings(max_examples=60, deadline=None)
@example(ops=[("append", 0, 1.0), ("loop", 0, 1.0), ("insert", 0, 1.0)])  # a one-key loop gaining a start key
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "insert", "delete", "move", "time", "duration", "loop", "retime", "split"]),
            st.integers(0, 6),
            st.floats(0.01, 20.0),
        ),
        max_size=25,
    )
)
def test_any_sequence_of_edits_leaves_a_valid_path(ops) -> None:
    rng = np.random.default_rng(0)
    path = CameraPath()
    for op, i, x in ops:
        n = len(path.keys)
        cam = _key(rng.normal(size=3) + 0.5, fov=float(rng.uniform(20, 80))).camera()
        if op == "append" or n == 0:
            path.append(cam)
        elif op == "insert":
            path.insert(i % (n + 1), cam)
        elif op == "delete":
            path.delete(i % n)
        elif op == "move":
            path.move(i % n, 1 if i % 2 else -1)
        elif op == "time":
            path.set_time(i % n, x)
        elif op == "duration" and n > 1:
            path.set_duration(x)
        elif op == "loop":
            path.set_loop(not path.loop)
        elif op == "retime" and n > 1:
            path.retime(x, even_speed=bool(i % 2))
        elif op == "split":
            try:
                path.split(i % n)
            except NgpError as exc:  # the last key of an open path, or keys too close: refused, path unchanged
                assert "needs a key after" in str(exc) or "too close" in str(exc)
        if path.keys:
            path.validate()
            assert path.end_time >= path.keys[-1].time
            assert np.isfinite(path.evaluate(x % max(path.end_time, 1e-9)).c2w).all()


# ---------------------------------------------------------------------------------------------- our files
def test_our_file_round_trips_times_fovs_and_settings(tmp_path: Path) -> None:
    meta = {"scale": 0.5, "offset": [0.4, 0.5, 0.6]}
    path = _square_path(loop=True)
    path.resolution = (800, 450)
    out = save_path(tmp_path / "path.json", path, meta)
    data = json.loads(out.read_text())
    assert data["format"] == "ngp-app camera path" and data["version"] == 1 and data["duration"] == 5.0
    back = load_path(out, meta)
    assert (back.loop, back.duration, back.fps, back.resolution) == (True, 5.0, 24.0, (800, 450))
    for a, b in zip(path.keys, back.keys):
        assert np.allclose(a.c2w, b.c2w, atol=1e-6) and a.fov_y_deg == b.fov_y_deg and a.time == b.time
    # the file's poses are in the scene's transforms.json coordinates
    assert np.allclose(
        data["keyframes"][1]["transform_matrix"], ngp_to_nerf(path.keys[1].c2w, 0.5, (0.4, 0.5, 0.6)), atol=1e-7
    )


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"version": 2}, "version: expected one of 1"),
        ({"keyframes": []}, "keyframes: expected at least 1 entry"),
        ({"keyframes": [{"time": 0.5, "transform_matrix": NERF_FRONT}]}, "first keyframe must be at time 0"),
        (
            {"keyframes": [{"time": 0, "transform_matrix": NERF_FRONT}, {"time": 0, "transform_matrix": NERF_SIDE}]},
            r"keyframes\[1\].time 0 is not after",
        ),
        ({"keyframes": [{"time": 0, "transform_matrix": NERF_FRONT, "fov": 0}]}, "fov: expected a field of view"),
        ({"fps": -1}, "fps: expected"),
        ({"loop": True, "duration": 1.0}, "duration .* must exceed"),
    ],
)
def test_our_file_errors_are_one_line(tmp_path: Path, change: dict, needle: str) -> None:
    data = {
        "format": "ngp-app camera path",
        "version": 1,
        "duration": 1.0,
        "fps": 30,
        "keyframes": [
            {"time": 0, "transform_matrix": NERF_FRONT, "fov": 40},
            {"time": 1, "transform_matrix": NERF_SIDE, "fov": 40},
        ],
    }
    data.update(change)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    with pytest.raises(NgpError, match=needle) as err:
        load_path(f, META)
    assert str(err.value).startswith(str(f)) and "\n" not in str(err.value)


def test_unknown_json_is_not_a_camera_path(tmp_path: Path) -> None:
    f = tmp_path / "other.json"
    f.write_text('{"cameras": []}')
    with pytest.raises(NgpError, match="not a camera path"):
        load_path(f, META)
    assert detect_format({"frames": []}) == "transforms" and detect_format({"path": []}) == "instant-ngp"


# ---------------------------------------------------------------------------------------------- instant-ngp
# base_cam.json as instant-ngp's testbed saves it: poses in ngp space (OpenCV camera axes, world axes cycled,
# 0.33 scale, 0.5 offset applied), R as [x, y, z, w]. The two keys are NERF_FRONT and NERF_SIDE seen by instant-ngp:
# NERF_FRONT becomes the camera at ngp (-0.82, 0.5, 0.5) looking along +x: R = 180 degrees about (1, 0, 1)/sqrt(2);
# NERF_SIDE the camera at (0.5, 0.5, 1.82) looking along -z: 180 degrees about x.
INSTANT_NGP = """{"loop": false, "time": 0.37, "duration_seconds": 1.0, "spline_order": 3, "path": [
 {"R": [0.7071067811865476, 0.0, 0.7071067811865476, 0.0], "T": [-0.82, 0.5, 0.5], "aperture_size": 0.0,
  "fov": 40.0, "glow_mode": 0, "glow_y_cutoff": 0.0, "scale": 1.5, "slice": 0.0, "timestamp": 0.5},
 {"R": [1.0, 0.0, 0.0, 0.0], "T": [0.5, 0.5, 1.82], "aperture_size": 0.0, "fov": 60.0, "glow_mode": 0,
  "glow_y_cutoff": 0.0, "scale": 1.5, "slice": 0.0, "timestamp": 1.0}]}"""


def test_instant_ngp_camera_path_lands_on_the_same_cameras(tmp_path: Path) -> None:
    f = tmp_path / "base_cam.json"
    f.write_text(INSTANT_NGP)
    path = load_path(f, META)
    assert len(path.keys) == 2 and not path.loop
    for key, nerf in zip(path.keys, (NERF_FRONT, NERF_SIDE)):
        assert np.allclose(ngp_to_nerf(key.c2w, 0.33, (0.5, 0.5, 0.5)), nerf, atol=1e-9)
    front = path.keys[0].c2w
    assert np.allclose(front[:, 2], [1, 0, 0]) and np.allclose(front[:, 1], [0, -1, 0])  # looks at the centre, y up
    assert [k.fov_y_deg for k in path.keys] == [40.0, 60.0]
    assert path.keys[1].time == pytest.approx(2.0)  # the editor's normalised timestamps, 2 s per segment
    # A recorded path (duration_seconds > 1) keeps its seconds; key k is reached at path[k-1].timestamp.
    data = json.loads(INSTANT_NGP)
    data["duration_seconds"], data["path"][0]["timestamp"], data["path"][1]["timestamp"] = 4.0, 3.0, 4.0
    f.write_text(json.dumps(data))
    assert load_path(f, META).keys[1].time == 3.0
    # Files without valid timestamps (older versions) get evenly spaced keys; loop is kept.
    for k in data["path"]:
        del k["timestamp"]
    data["loop"] = True
    f.write_text(json.dumps(data))
    looped = load_path(f, META)
    assert looped.loop and looped.keys[1].time == 2.0 and looped.duration == 4.0


def test_instant_ngp_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "base_cam.json"
    data = json.loads(INSTANT_NGP)
    data["path"][1]["R"] = [0, 0, 0, 0]
    f.write_text(json.dumps(data))
    with pytest.raises(NgpError, match=r"path\[1\].R: expected a quaternion"):
        load_path(f, META)
    data["path"] = []
    f.write_text(json.dumps(data))
    with pytest.raises(NgpError, match="path: expected at least 1 entry"):
        load_path(f, META)


# ---------------------------------------------------------------------------------------------- nerfstudio
# nerfstudio's dataparser rotated the capture 90 degrees about z, moved it by (0.1, 0.2, 0.3) and scaled it by 0.5:
# NERF_FRONT is then at 0.5 * (R (0, -4, 0) + t) = (2.05, 0.1, 0.15) with axes R x, R y, R z.
DATAPARSER = {"transform": [[0, -1, 0, 0.1], [1, 0, 0, 0.2], [0, 0, 1, 0.3]], "scale": 0.5}
NS_FRONT = [0, 0, 1, 2.05, 1, 0, 0, 0.1, 0, 1, 0, 0.15, 0, 0, 0, 1]
NS_SIDE = [-1, 0, 0, 0.05, 0, 0, 1, 2.1, 0, 1, 0, 0.15, 0, 0, 0, 1]  # NERF_SIDE the same way


def _nerfstudio(tmp_path: Path, **extra) -> Path:
    data = {
        "camera_type": "perspective",
        "render_height": 90,
        "render_width": 160,
        "fps": 4,
        "seconds": 1.5,
        "is_cycle": False,
        "smoothness_value": 0.5,
        "default_fov": 50.0,
        "default_transition_sec": 0.5,
        "keyframes": [
            {
                "matrix": NS_FRONT,
                "fov": 40,
                "aspect": 1.78,
                "override_transition_enabled": False,
                "override_transition_sec": None,
            },
            {
                "matrix": NS_SIDE,
                "fov": 60,
                "aspect": 1.78,
                "override_transition_enabled": True,
                "override_transition_sec": 1.0,
            },
        ],
        "camera_path": [
            {"camera_to_world": NS_FRONT, "fov": 40, "aspect": 1.78},
            {"camera_to_world": NS_FRONT, "fov": 45, "aspect": 1.78},
            {"camera_to_world": NS_SIDE, "fov": 55, "aspect": 1.78},
            {"camera_to_world": NS_SIDE, "fov": 60, "aspect": 1.78},
        ],
    }
    data.update(extra)
    (tmp_path / "camera_paths").mkdir(exist_ok=True)
    f = tmp_path / "camera_paths" / "ns.json"
    f.write_text(json.dumps(data))
    return f


def test_nerfstudio_camera_path_undoes_the_dataparser_transform(tmp_path: Path, caplog) -> None:
    f = _nerfstudio(tmp_path)
    (tmp_path / "dataparser_transforms.json").write_text(json.dumps(DATAPARSER))  # found next to camera_paths/
    keys = load_path(f, META)  # the editable keyframes
    for key, nerf in zip(keys.keys, (NERF_FRONT, NERF_SIDE)):
        assert np.allclose(ngp_to_nerf(key.c2w, 0.33, (0.5, 0.5, 0.5)), nerf, atol=1e-9)
    assert [k.fov_y_deg for k in keys.keys] == [40.0, 60.0] and keys.resolution == (160, 90)
    assert keys.keys[1].time == pytest.approx(1.5)  # key 1's own 1.0 s transition, stretched to the 1.5 s
    dense = load_path(f, META, dense=True)  # the exported frames, one key each, 1/fps apart: the same video
    assert [k.time for k in dense.keys] == [0.0, 0.25, 0.5, 0.75] and dense.n_frames() == 4
    assert [c.fov_y_deg for c in dense.cameras()] == [40.0, 45.0, 55.0, 60.0]
    # Without the dataparser transforms the path is taken as already in transforms.json coordinates (warned).
    (tmp_path / "dataparser_transforms.json").unlink()
    with caplog.at_level("WARNING", logger="ngp_app"):
        raw = load_path(f, META)
    assert "dataparser_transforms.json" in caplog.text
    assert np.allclose(ngp_to_nerf(raw.keys[0].c2w, 0.33, (0.5, 0.5, 0.5))[:3], np.reshape(NS_FRONT, (4, 4))[:3])
    given = tmp_path / "elsewhere.json"
    given.write_text(json.dumps(DATAPARSER))
    assert np.allclose(load_path(f, META, given).keys[0].c2w, keys.keys[0].c2w)


def test_nerfstudio_variants_and_errors(tmp_path: Path) -> None:
    old = _nerfstudio(
        tmp_path,
        keyframes=[{"matrix": json.dumps(NS_FRONT), "fov": 40}, {"matrix": json.dumps(NS_SIDE), "fov": 40}],
        is_cycle=True,
    )
    path = load_path(old, META)  # older viewers wrote matrices as strings
    assert path.loop and path.duration == pytest.approx(1.5)
    for extra, needle in [
        ({"camera_type": "equirectangular"}, "only perspective"),
        ({"camera_path": [], "keyframes": []}, "non-empty 'camera_path' or 'keyframes'"),
        (
            {"camera_path": [{"camera_to_world": [1, 2], "fov": 50}], "keyframes": None},
            r"camera_path\[0\].camera_to_world: expected a 4x4 camera-to-world matrix",
        ),
    ]:
        with pytest.raises(NgpError, match=needle):
            load_path(_nerfstudio(tmp_path, **extra), META)


def test_transforms_style_keyframes_still_load(tmp_path: Path) -> None:
    f = tmp_path / "keys.json"
    f.write_text(
        json.dumps(
            {
                "camera_angle_y": math.radians(30),
                "frames": [
                    {"transform_matrix": NERF_FRONT},
                    {"transform_matrix": NERF_SIDE, "camera_angle_y": math.radians(60)},
                ],
            }
        )
    )
    path = load_path(f, META)
    assert [k.fov_y_deg for k in path.keys] == pytest.approx([30.0, 60.0]) and path.keys[1].time == 2.0
    assert np.allclose(ngp_to_nerf(path.keys[1].c2w, 0.33, (0.5, 0.5, 0.5)), NERF_SIDE)


# ---------------------------------------------------------------------------------------------- ngp video --path
def _video_args(path: str, **kw) -> argparse.Namespace:
    base = dict(
        path=path,
        frames=None,
        fps=None,
        seconds=None,
        loop=False,
        width=None,
        height=None,
        fov=None,
        radius=None,
        elevation=None,
        dataparser_transforms=None,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_video_plan_uses_the_files_timing_size_and_fovs(tmp_path: Path) -> None:
    from ngp_app.commands.video import plan_video

    f = tmp_path / "base_cam.json"
    f.write_text(INSTANT_NGP)
    plan = plan_video(_video_args(str(f)), META, "cpu")
    assert len(plan.cameras) == 2 * 30 + 1 and plan.fps == 30 and (plan.width, plan.height) == (640, 360)
    assert plan.cameras[0].fov_y_deg == 40.0 and plan.cameras[-1].fov_y_deg == 60.0
    plan = plan_video(_video_args(str(f), seconds=1.0, fps=10.0, loop=True), META, "cpu")
    assert len(plan.cameras) == 10 and plan.fps == 10.0
    ns = _nerfstudio(tmp_path)
    plan = plan_video(_video_args(str(ns), dataparser_transforms=None), META, "cuda")
    assert len(plan.cameras) == 4 and plan.fps == 4 and (plan.width, plan.height) == (160, 90)
    ours = save_path(tmp_path / "ours.json", _square_path(), META)
    plan = plan_video(_video_args(str(ours), frames=7, width=64, height=48), META, "cpu")
    assert len(plan.cameras) == 7 and (plan.width, plan.height) == (64, 48)
    orbit = plan_video(_video_args("orbit"), META, "cpu")
    assert len(orbit.cameras) == 120


def test_path_to_json_refuses_an_invalid_path() -> None:
    with pytest.raises(NgpError, match="at least one keyframe"):
        path_to_json(CameraPath(), META)
    assert PathCamera(np.eye(3, 4)).fov_y_deg == 50.0


def test_nerfstudio_matrices_as_rows_of_four_read_as_flat_ones(tmp_path: Path) -> None:
    """nerfstudio reads a camera_to_world as 16 numbers or as 4 rows of 4: both give the same cameras."""
    flat, nested = tmp_path / "flat.json", tmp_path / "nested.json"
    frames = [NS_FRONT, NS_SIDE]
    for f, rows in ((flat, False), (nested, True)):
        doc = {
            "camera_path": [
                {"camera_to_world": [m[i : i + 4] for i in range(0, 16, 4)] if rows else m, "fov": 50} for m in frames
            ],
            "fps": 2,
            "seconds": 1,
        }
        f.write_text(json.dumps(doc))
    a, b = load_path(flat, META, dense=True), load_path(nested, META, dense=True)
    assert len(a.keys) == len(b.keys) == 2
    for ka, kb in zip(a.keys, b.keys):
        assert np.array_equal(ka.c2w, kb.c2w)


def test_instant_ngp_quaternions_of_any_length_give_the_rotation(tmp_path: Path) -> None:
    """``R`` scaled by 1e300 is the same rotation, without overflow warnings: 90 degrees about z."""
    import warnings

    s = math.sqrt(0.5)
    cams = []
    for scale in (1.0, 1e300):
        f = tmp_path / f"k{scale:g}.json"
        f.write_text(json.dumps({"path": [{"R": [0, 0, s * scale, s * scale], "T": [0.5, 0.5, 0.5]}]}))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cams.append(load_path(f, META).keys[0].c2w)
    expected = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # by hand: z-rotation by 90 degrees
    for c2w in cams:
        assert np.allclose(c2w[:, :3], expected, atol=1e-9)
