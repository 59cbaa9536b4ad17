"""The import's conventions on hand-built cases (no pycolmap needed): pose conversion, up alignment, centring,
scaling, aabb_scale, intrinsics mapping, pose-error metrics, sources, frame selection, progress, PLY files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ngp_app.data.importer import conventions as cv
from ngp_app.data.importer.align import pose_errors, umeyama
from ngp_app.data.importer.convert import camera_to_json
from ngp_app.data.importer.pipeline import check_output
from ngp_app.data.importer.points import read_points_ply, write_points_ply
from ngp_app.data.importer.progress import Reporter
from ngp_app.data.importer.sfm import choose_matcher, sequential_pairs
from ngp_app.data.importer.sources import Source, detect_source, natural_key
from ngp_app.data.importer.video import sharpness, window_of
from ngp_app.errors import ImportCancelled, ImportFailed, SceneError


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def look_at_gl(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """NeRF (OpenGL) camera-to-world (4, 4) at eye looking at target with +y along up."""
    back = eye - target
    back = back / np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def ring(n: int, centre: np.ndarray, radius: float, up: np.ndarray, elevation: float = 0.4) -> np.ndarray:
    """n cameras (n, 4, 4) on a ring around ``centre`` (in the plane normal to ``up``), above it by
    ``elevation`` * radius, looking at it."""
    up = up / np.linalg.norm(up)
    a = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eyes = centre + radius * (np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b + elevation * up)
    return np.stack([look_at_gl(e, centre, up) for e in eyes])


# ------------------------------------------------------------------------------------------- pose conversion
def test_identity_colmap_pose_is_an_opengl_camera_at_the_origin() -> None:
    c2w = cv.colmap_to_nerf_c2w(np.hstack([np.eye(3), np.zeros((3, 1))]))
    np.testing.assert_allclose(c2w, np.diag([1.0, -1.0, -1.0, 1.0]))


def test_colmap_pose_centre_and_viewing_direction() -> None:
    rng = np.random.default_rng(0)
    rot = random_rotation(rng)
    t = rng.normal(size=3)
    c2w = cv.colmap_to_nerf_c2w(np.hstack([rot, t[:, None]]))
    centre = -rot.T @ t
    np.testing.assert_allclose(c2w[:3, 3], centre, atol=1e-12)
    # a point in front of the COLMAP camera (positive z_cam) is in front of the OpenGL camera (along -z)
    x_world = rot.T @ (np.array([0.1, -0.2, 3.0]) - t)
    in_gl = c2w[:3, :3].T @ (x_world - c2w[:3, 3])
    np.testing.assert_allclose(in_gl, [0.1, 0.2, -3.0], atol=1e-12)  # y flips (down -> up), z flips
    assert np.linalg.det(c2w[:3, :3]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------- up, centre, scale
@pytest.mark.parametrize(
    "a,b", [([1, 0, 0], [0, 0, 1]), ([0, 0, 1], [0, 0, 1]), ([0, 0, -1], [0, 0, 1]), ([0.3, -2, 1], [-1, 0.5, 0.2])]
)
def test_rotation_between(a: list[float], b: list[float]) -> None:
    rot = cv.rotation_between(np.array(a, float), np.array(b, float))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot @ (np.array(a) / np.linalg.norm(a)), np.array(b) / np.linalg.norm(b), atol=1e-12)


def test_up_rotation_turns_the_average_camera_up_onto_z() -> None:
    up = np.array([0.2, -1.0, 0.3])  # a y-down-ish world, as COLMAP's often is
    cams = ring(12, np.zeros(3), 3.0, up)
    rot = cv.up_rotation(cams)
    mean_up = (rot @ cams[:, :3, 1].T).mean(axis=1)
    np.testing.assert_allclose(mean_up / np.linalg.norm(mean_up), [0, 0, 1], atol=1e-12)


def test_focus_point_of_an_orbit_and_when_there_is_none() -> None:
    centre = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(cv.focus_point(ring(8, centre, 2.5, np.array([0, 0, 1.0]))), centre, atol=1e-9)
    parallel = np.stack(
        [
            look_at_gl(np.array([x, 0.0, 0.0]), np.array([x, 5.0, 0.0]), np.array([0, 0, 1.0]))
            for x in np.linspace(-1, 1, 6)
        ]
    )  # a forward-facing sweep: parallel axes
    assert cv.focus_point(parallel) is None
    away = ring(8, centre, 2.5, np.array([0, 0, 1.0]))
    away[:, :3, :3] = away[:, :3, :3] @ np.diag([-1.0, 1.0, -1.0])  # turned around: the point is behind them
    assert cv.focus_point(away) is None


def test_scene_centre_falls_back_to_points_then_cameras() -> None:
    parallel = np.stack(
        [
            look_at_gl(np.array([x, 0.0, 0.0]), np.array([x, 5.0, 0.0]), np.array([0, 0, 1.0]))
            for x in np.linspace(-1, 1, 6)
        ]
    )
    pts = np.array([[0, 5, 0], [0.2, 6, 0.1], [-0.1, 5.5, 9.0], [0, 4, 0]], float)
    centre, how = cv.scene_centre(parallel, pts)
    assert how == "points"
    np.testing.assert_allclose(centre, np.median(pts, axis=0))
    centre, how = cv.scene_centre(parallel, np.zeros((0, 3)))
    assert how == "cameras"
    np.testing.assert_allclose(centre, parallel[:, :3, 3].mean(axis=0))


def test_normalise_centres_scales_and_levels_an_orbit() -> None:
    rng = np.random.default_rng(1)
    centre, up = np.array([5.0, -2.0, 1.0]), rng.normal(size=3)
    cams = ring(10, centre, 7.0, up)
    pts = centre + rng.normal(scale=0.5, size=(50, 3))
    sim, how = cv.normalise(cams, pts)
    assert how == "focus"
    out = sim.poses(cams)
    np.testing.assert_allclose(sim.points(centre[None])[0], 0.0, atol=1e-9)
    assert np.linalg.norm(out[:, :3, 3], axis=1).mean() == pytest.approx(cv.CAMERA_DISTANCE)
    mean_up = out[:, :3, 1].mean(axis=0)
    np.testing.assert_allclose(mean_up / np.linalg.norm(mean_up), [0, 0, 1], atol=1e-9)
    # cameras still look at the centre, and poses stay rigid (orthonormal rotations)
    for m in out:
        np.testing.assert_allclose(-m[:3, 2], -m[:3, 3] / np.linalg.norm(m[:3, 3]), atol=1e-9)
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(sim.matrix()[:3, :3] / sim.scale, sim.rotation)


@pytest.mark.parametrize("half,expected", [(1.5, 1), (3.0, 2), (3.1, 4), (12.0, 8), (1e5, 128), (0.01, 1)])
def test_aabb_scale_is_the_power_of_two_that_holds_the_points(half: float, expected: int) -> None:
    rng = np.random.default_rng(2)
    pts = rng.uniform(-half, half, size=(2000, 3))
    pts[:8] = [[half * sx, half * sy, half * sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]  # corners
    # side in ngp units = 2 * half * 0.33: 1.5 -> 0.99 -> 1, 3.0 -> 1.98 -> 2, 3.1 -> 2.05 -> 4, 12 -> 7.9 -> 8
    assert cv.aabb_scale_for(pts, percentile=100.0) == expected


def test_aabb_scale_ignores_stray_points_and_empty_clouds() -> None:
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform(-1.4, 1.4, size=(1000, 3)), np.full((5, 3), 900.0)])
    assert cv.aabb_scale_for(pts) == 1  # 99th percentile: the 0.5 % strays don't count
    assert cv.aabb_scale_for(pts, percentile=100.0) == 128
    assert cv.aabb_scale_for(np.zeros((0, 3))) == 1


# ------------------------------------------------------------------------------------------- intrinsics
def test_camera_models_map_onto_the_loader_lenses() -> None:
    simple = camera_to_json("SIMPLE_RADIAL", [500, 320, 240, 0.05], 640, 480)
    assert simple["camera_model"] == "OPENCV" and simple["fl_x"] == simple["fl_y"] == 500
    assert (simple["k1"], simple["k2"], simple["p1"], simple["p2"]) == (0.05, 0, 0, 0)
    assert simple["camera_angle_x"] == pytest.approx(2 * np.arctan(320 / 500))
    opencv = camera_to_json("OPENCV", [500, 510, 320, 240, 0.1, -0.02, 0.001, 0.002], 640, 480)
    assert [opencv[k] for k in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2", "w", "h")] == [
        500,
        510,
        320,
        240,
        0.1,
        -0.02,
        0.001,
        0.002,
        640,
        480,
    ]
    fish = camera_to_json("OPENCV_FISHEYE", [300, 301, 320, 240, 0.1, 0.01, -0.001, 0.0005], 640, 480)
    assert fish["camera_model"] == "OPENCV_FISHEYE" and "p1" not in fish
    assert [fish[k] for k in ("k1", "k2", "k3", "k4")] == [0.1, 0.01, -0.001, 0.0005]
    radial_fish = camera_to_json("RADIAL_FISHEYE", [300, 320, 240, 0.1, 0.01], 640, 480)
    assert radial_fish["camera_model"] == "OPENCV_FISHEYE" and radial_fish["k2"] == 0.01 and radial_fish["k3"] == 0
    full = camera_to_json("FULL_OPENCV", [500, 500, 320, 240, 0.1, 0.01, 0, 0, 0.003, 0, 0, 0], 640, 480)
    assert full["k3"] == 0.003
    pinhole = camera_to_json("PINHOLE", [500, 510, 320, 240], 640, 480)
    assert pinhole["k1"] == pinhole["p2"] == 0


def test_unsupported_camera_models_are_refused() -> None:
    with pytest.raises(ImportFailed, match="unsupported camera model FOV"):
        camera_to_json("FOV", [500, 500, 320, 240, 0.9], 640, 480)
    with pytest.raises(ImportFailed, match="rational"):
        camera_to_json("FULL_OPENCV", [500, 500, 320, 240, 0.1, 0.01, 0, 0, 0, 0.2, 0, 0], 640, 480)


# ------------------------------------------------------------------------------------------- pose errors
def test_umeyama_recovers_a_similarity_and_pose_errors_measure_what_is_left() -> None:
    rng = np.random.default_rng(4)
    ref = ring(12, np.zeros(3), 3.0, np.array([0, 0, 1.0]))
    rot, scale, shift = random_rotation(rng), 0.37, rng.normal(size=3)
    est = ref.copy()
    est[:, :3, :3] = rot @ ref[:, :3, :3]
    est[:, :3, 3] = scale * ref[:, :3, 3] @ rot.T + shift
    s, r, t = umeyama(est[:, :3, 3], ref[:, :3, 3])
    assert s == pytest.approx(1 / scale)
    np.testing.assert_allclose(r, rot.T, atol=1e-9)
    exact = pose_errors(est, ref)
    assert exact.centre_median < 1e-9 and exact.rotation_median < 1e-5
    # one camera turned by 3 degrees: its error shows, the median stays 0
    bent = est.copy()
    bent[0, :3, :3] = bent[0, :3, :3] @ cv.rotation_between(
        np.array([0, 0, 1.0]), np.array([np.sin(np.radians(3)), 0, np.cos(np.radians(3))])
    )
    err = pose_errors(bent, ref)
    assert err.rotation_error[0] == pytest.approx(3.0, abs=1e-6) and err.rotation_median < 1e-5


# ------------------------------------------------------------------------------------------- sources
def test_detect_source_kinds_and_errors(tmp_path: Path) -> None:
    photos = tmp_path / "capture" / "images"
    photos.mkdir(parents=True)
    for name in ("img10.JPG", "img2.jpg", "img1.png", ".hidden.jpg", "notes.txt"):
        (photos / name).write_bytes(b"x")
    src = detect_source(photos)
    assert src.kind == "images" and src.names == ["img1.png", "img2.jpg", "img10.JPG"]
    assert detect_source(tmp_path / "capture").path == photos  # the capture folder's images/
    video = tmp_path / "clip.MOV"
    video.write_bytes(b"")
    assert detect_source(video).kind == "video"
    with pytest.raises(ImportFailed, match="no such file"):
        detect_source(tmp_path / "missing")
    with pytest.raises(ImportFailed, match="not a video"):
        detect_source(photos / "notes.txt")
    with pytest.raises(ImportFailed, match="single image"):
        detect_source(photos / "img1.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFailed, match="no images found"):
        detect_source(tmp_path / "empty")
    model = tmp_path / "capture" / "sparse" / "0"
    model.mkdir(parents=True)
    for name in ("cameras", "images", "points3D"):
        (model / f"{name}.txt").write_text("")
    colmap = detect_source(tmp_path / "capture")
    assert colmap.kind == "colmap" and colmap.path == model.resolve() and colmap.images == photos
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]


def test_check_output(tmp_path: Path) -> None:
    src = Source("images", tmp_path / "photos", tmp_path / "photos", ["a.jpg"])
    check_output(tmp_path / "new" / "scene", src, overwrite=False)  # a new folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImportFailed, match="not a folder"):
        check_output(tmp_path / "file", src, overwrite=False)
    done = tmp_path / "done"
    done.mkdir()
    (done / "transforms.json").write_text("{}")
    with pytest.raises(ImportFailed, match="--overwrite"):
        check_output(done, src, overwrite=False)
    check_output(done, src, overwrite=True)
    (done / "mine.txt").write_text("x")
    with pytest.raises(ImportFailed, match="empty or new folder"):
        check_output(done, src, overwrite=True)  # never replaces what an import did not write
    in_place = tmp_path / "inplace"
    (in_place / "images").mkdir(parents=True)
    check_output(in_place, Source("images", in_place / "images", in_place / "images", ["a.jpg"]), overwrite=False)


# ------------------------------------------------------------------------------------------- video frames
def test_sharpness_prefers_crisp_frames() -> None:
    rng = np.random.default_rng(5)
    crisp = (rng.uniform(size=(120, 160, 3)) > 0.5).astype(np.uint8) * 255
    blurred = crisp.astype(np.float32)
    for axis in (0, 1):  # a 5-tap box blur
        blurred = sum(np.roll(blurred, k, axis=axis) for k in range(-2, 3)) / 5.0
    assert sharpness(crisp) > 5 * sharpness(blurred.astype(np.uint8))
    big = np.kron(crisp, np.ones((8, 8, 1), np.uint8))  # 1280 px: measured on a shrunk copy
    assert sharpness(big) > 0


def test_windows_split_the_clip_evenly() -> None:
    assert [window_of(i, 10, 5) for i in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [window_of(i, 7, 3) for i in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    assert window_of(12, 10, 5) == 4  # frames past the announced count go to the last window


def test_matcher_choice_and_sequential_pairs() -> None:
    assert choose_matcher("auto", 50, ordered=False) == "exhaustive"
    assert choose_matcher("auto", 50, ordered=True) == "sequential"
    assert choose_matcher("auto", 500, ordered=False) == "sequential"
    assert choose_matcher("exhaustive", 500, ordered=True) == "exhaustive"
    with pytest.raises(ImportFailed):
        choose_matcher("vocab", 5, ordered=False)
    # neighbours (i, i+1), (i, i+2) and the 2^k-ahead (0, 4)
    assert sequential_pairs(5, 2) == [(0, 1), (0, 2), (0, 4), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4)]
    assert sequential_pairs(5, 2, keyframes=2) == sorted(sequential_pairs(5, 2) + [(0, 3), (1, 4)])  # keys 0, 4
    pairs = sequential_pairs(100, 10, keyframes=10)
    assert (0, 99) in pairs and (50, 98) not in pairs and len(pairs) < 100 * 99 // 2 * 0.4


# ------------------------------------------------------------------------------------------- progress, PLY
def test_reporter_weights_cancel_and_skipped_stages() -> None:
    seen = []
    cancel = threading.Event()
    report = Reporter(seen.append, cancel, skip=("features", "matching", "mapping"))
    report("images", 0.5, force=True)
    report("writing", 1.0)
    assert seen[0].overall == pytest.approx(0.5 * 0.08 / 0.13) and seen[-1].overall == pytest.approx(1.0)
    full = Reporter(seen.append)
    fractions = [
        full.overall(stage, f)
        for stage in ("images", "features", "matching", "mapping", "writing")
        for f in (0.0, 0.5, 1.0)
    ]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert set(report.seconds()) == {"images", "writing"} and all(v >= 0 for v in report.seconds().values())
    report.check()
    cancel.set()
    with pytest.raises(ImportCancelled):
        report.check()


def test_points_ply_round_trip_and_errors(tmp_path: Path) -> None:
    xyz = np.random.default_rng(6).normal(size=(17, 3)).astype(np.float32)
    rgb = np.arange(51, dtype=np.uint8).reshape(17, 3)
    write_points_ply(tmp_path / "p.ply", xyz, rgb)
    got_xyz, got_rgb = read_points_ply(tmp_path / "p.ply")
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, rgb)
    (tmp_path / "a.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n1 2 3\n4 5 6\n"
    )
    got_xyz, got_rgb = read_points_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(got_xyz, [[1, 2, 3], [4, 5, 6]])
    assert got_rgb.shape == (2, 3)
    (tmp_path / "bad.ply").write_bytes(b"not a ply")
    with pytest.raises(SceneError, match="not a PLY"):
        read_points_ply(tmp_path / "bad.ply")
    data = (tmp_path / "p.ply").read_bytes()
    (tmp_path / "short.ply").write_bytes(data[:-20])
    with pytest.raises(SceneError, match="truncated"):
        read_points_ply(tmp_path / "short.ply")
