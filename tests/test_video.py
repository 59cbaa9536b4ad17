"""Camera paths (rotations, splines, keyframe files) and ``ngp video`` end to end, with its error cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ngp_app.cli import main
from ngp_app.data.cameras import look_at
from ngp_app.errors import NgpError
from ngp_app.export import camera_path as cp
from ngp_app.export.video import check_output, even_size, export_video


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---------------------------------------------------------------------------------------------- rotations
def test_quaternion_round_trip_and_hand_cases() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = _random_rotation(rng)
        q = cp.rotation_to_quaternion(r)
        assert abs(np.linalg.norm(q) - 1) < 1e-12 and q[0] >= 0
        assert np.allclose(cp.quaternion_to_rotation(q), r, atol=1e-9)
    # 180 degrees about y (trace -1: the branch without the w pivot)
    r = np.diag([-1.0, 1.0, -1.0])
    assert np.allclose(cp.rotation_to_quaternion(r), [0, 0, 1, 0], atol=1e-12)
    # 90 degrees about z: w = cos 45, z = sin 45
    r = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.allclose(cp.rotation_to_quaternion(r), [math.sqrt(0.5), 0, 0, math.sqrt(0.5)], atol=1e-12)


def test_slerp_is_constant_speed_on_the_short_arc() -> None:
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = cp.rotation_to_quaternion(np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # 90 deg about z
    mid = cp.quaternion_to_rotation(cp.slerp(q0, q1, 0.5))
    assert math.isclose(math.degrees(math.atan2(mid[1, 0], mid[0, 0])), 45.0, abs_tol=1e-9)
    assert np.allclose(cp.slerp(q0, -q1, 0.25), cp.slerp(q0, q1, 0.25))  # -q is the same rotation


# ---------------------------------------------------------------------------------------------- paths
def test_orbit_path_circles_the_centre_looking_at_it() -> None:
    cams = cp.orbit_path(36, (0.5, 0.5, 0.5), radius=1.2, elevation_deg=30.0, fov_y_deg=40.0)
    assert len(cams) == 36
    eyes = np.stack([c.c2w[:, 3] for c in cams])
    assert np.allclose(np.linalg.norm(eyes - 0.5, axis=1), 1.2)
    assert np.allclose(eyes[:, 1] - 0.5, 1.2 * math.sin(math.radians(30.0)))
    for c in cams:
        to_centre = 0.5 - c.c2w[:, 3]
        assert np.allclose(c.c2w[:, 2], to_centre / np.linalg.norm(to_centre))  # forward axis
    assert not np.allclose(eyes[0], eyes[-1])  # the loop does not repeat its first frame


def test_interpolated_path_passes_through_every_key_smoothly() -> None:
    rng = np.random.default_rng(1)
    keys = [
        cp.PathCamera(np.concatenate([_random_rotation(rng), rng.normal(size=(3, 1))], 1), 30.0 + 10 * i)
        for i in range(4)
    ]
    per = 10
    cams = cp.interpolate_path(keys, 3 * per + 1)
    for i, k in enumerate(keys):
        assert np.allclose(cams[i * per].c2w, k.c2w, atol=1e-9)
        assert math.isclose(cams[i * per].fov_y_deg, k.fov_y_deg)
    for c in cams:  # orientations stay rotations
        r = c.c2w[:, :3]
        assert np.allclose(r.T @ r, np.eye(3), atol=1e-9) and np.linalg.det(r) > 0
    steps = np.linalg.norm(np.diff(np.stack([c.c2w[:, 3] for c in cams]), axis=0), axis=1)
    assert steps.max() < 4 * np.median(steps)  # no jumps
    loop = cp.interpolate_path(keys, 4 * per, loop=True)
    assert np.allclose(loop[3 * per].c2w, keys[3].c2w, atol=1e-9)
    assert np.linalg.norm(loop[-1].c2w[:, 3] - keys[0].c2w[:, 3]) < 3 * np.median(steps)  # heads back to the start
    with pytest.raises(NgpError):
        cp.interpolate_path([], 10)


def test_training_tour_and_default_orbit_follow_the_scene(demo_scene: Path) -> None:
    from ngp_app.data.loaders import load_scene

    meta = load_scene(demo_scene, "train", downscale=8).metadata()
    c2ws = np.asarray(meta["c2w"]).reshape(-1, 3, 4)
    order = cp.tour_order(c2ws)
    assert sorted(order) == list(range(len(c2ws)))
    tour = np.linalg.norm(np.diff(c2ws[order, :, 3], axis=0), axis=1).sum()
    file_order = np.linalg.norm(np.diff(c2ws[:, :, 3], axis=0), axis=1).sum()
    assert tour < 0.5 * file_order  # NeRF-synthetic views are in random order; the tour is much shorter
    keys = cp.training_keyframes(meta, max_keys=6)
    assert len(keys) == 6 and all(any(np.allclose(k.c2w, c) for c in c2ws) for k in keys)
    orbit = cp.default_orbit(meta, 8)
    radius = np.median(np.linalg.norm(c2ws[:, :, 3] - 0.5, axis=1))
    assert np.allclose(np.linalg.norm(orbit[0].c2w[:, 3] - 0.5), radius)
    with pytest.raises(NgpError, match="no training cameras"):
        cp.training_keyframes({})


def test_keyframe_file_round_trip_and_errors(tmp_path: Path) -> None:
    meta = {"scale": 0.5, "offset": [0.4, 0.5, 0.6]}
    keys = [
        cp.PathCamera(look_at([1.5, 0.8, 0.2], [0.5, 0.5, 0.5]).numpy().astype(np.float64), 35.0),
        cp.PathCamera(look_at([0.2, 0.9, 1.4], [0.5, 0.4, 0.5]).numpy().astype(np.float64), 55.0),
    ]
    path = tmp_path / "path.json"
    path.write_text(cp.keyframes_json(keys, meta))
    back = cp.load_keyframes(path, meta)
    for a, b in zip(keys, back):
        assert np.allclose(a.c2w, b.c2w, atol=1e-6) and math.isclose(a.fov_y_deg, b.fov_y_deg)
    for text, needle in [
        ("{", "malformed JSON"),
        ('{"frames": []}', "frames: expected at least 1 entry"),
        ('{"frames": [{"transform_matrix": [[1, 0], [0, 1]]}]}', "4x4"),
        ('{"frames": [{"transform_matrix": "x"}]}', r"frames\[0\].transform_matrix: expected a 4x4"),
        (
            f'{{"frames": [{{"transform_matrix": {np.eye(4).tolist()}, "camera_angle_y": "wide"}}]}}',
            "camera_angle_y: expected an angle in radians",
        ),
        ('{"frames": [{"transform_matrix": [[NaN,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}', "finite"),
    ]:
        path.write_text(text)
        with pytest.raises(NgpError, match=needle):
            cp.load_keyframes(path, meta)
    with pytest.raises(NgpError, match="no such"):
        cp.load_keyframes(tmp_path / "missing.json", meta)


# ---------------------------------------------------------------------------------------------- video files
def test_cli_writes_mp4_gif_and_frames(tiny_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import imageio.v2 as iio2
    import imageio.v3 as iio

    mp4 = tmp_path / "out" / "orbit.mp4"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(mp4),
                "--frames",
                "6",
                "--width",
                "33",
                "--height",
                "18",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    frames = list(iio2.get_reader(mp4, format="FFMPEG").iter_data())
    assert len(frames) == 6 and frames[0].shape == (18, 34, 3)  # odd width rounded up for H.264
    assert np.std(frames[0]) > 3.0  # the object is in the picture, not a flat background
    assert not np.array_equal(frames[0], frames[3])  # the camera moves
    gif = tmp_path / "tour.gif"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(gif),
                "--path",
                "train",
                "--frames",
                "4",
                "--width",
                "24",
                "--height",
                "24",
                "--quiet",
            ]
        )
        == 0
    )
    assert iio.imread(gif).shape[:3] == (4, 24, 24)
    folder = tmp_path / "frames"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(folder),
                "--frames",
                "3",
                "--width",
                "16",
                "--height",
                "16",
                "--mode",
                "depth",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == [".ngp-video", "00000.png", "00001.png", "00002.png"]
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(folder),
                "--frames",
                "2",
                "--width",
                "16",
                "--height",
                "16",
                "--quiet",
            ]
        )
        == 0
    )  # a previous frame folder (its marker says so) is replaced
    assert sorted(p.name for p in folder.iterdir()) == [".ngp-video", "00000.png", "00001.png"]
    leftovers = [p.name for p in tmp_path.rglob(".*") if not p.name.endswith(".ngp-video")]  # no temp files
    assert not leftovers, leftovers
    assert sorted(p.name for p in tmp_path.rglob(".*.ngp-video")) == [".orbit.mp4.ngp-video", ".tour.gif.ngp-video"]
    capsys.readouterr()


def test_cli_renders_an_instant_ngp_path_at_its_timing(tiny_snapshot: Path, tmp_path: Path) -> None:
    from tests.test_camera_path import INSTANT_NGP

    f = tmp_path / "base_cam.json"
    f.write_text(INSTANT_NGP)
    out = tmp_path / "frames"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(out),
                "--path",
                str(f),
                "--seconds",
                "0.2",
                "--fps",
                "10",
                "--width",
                "16",
                "--height",
                "12",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_video_replaces_only_a_folder_it_wrote(tiny_snapshot: Path, tmp_path: Path) -> None:
    """Issue 22 item 1, as real processes: a folder of PNGs that ngp video did not write (a scene's images, frame-like
    names, an export the user added a file to) is refused with one line before any rendering and left byte for byte;
    a folder it wrote is replaced only once the new frames are complete (a failed export leaves the old one)."""
    import imageio.v3 as iio

    from ngp_app.snapshot import load_snapshot
    from tests.bad_inputs import error_line, run_ngp_many

    rng = np.random.default_rng(0)

    def png() -> bytes:
        return iio.imwrite("<bytes>", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), extension=".png")

    images = tmp_path / "scene" / "images"  # a scene's training images
    images.mkdir(parents=True)
    for i in range(3):
        (images / f"r_{i}.png").write_bytes(png())
    lookalike = tmp_path / "lookalike"  # names like our frames, and one more
    lookalike.mkdir()
    (lookalike / "00000.png").write_bytes(png())
    (lookalike / "keep.png").write_bytes(png())
    exported = tmp_path / "exported"  # an earlier export, then the user added a file
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(exported),
                "--frames",
                "2",
                "--width",
                "8",
                "--height",
                "8",
                "--quiet",
            ]
        )
        == 0
    )
    (exported / "keep.png").write_bytes(png())
    folders = {"images": images, "lookalike": lookalike, "exported": exported}
    before = {name: folder_bytes(f) for name, f in folders.items()}
    runs = run_ngp_many(
        [
            (
                [
                    "video",
                    str(tiny_snapshot),
                    "--out",
                    str(f),
                    "--frames",
                    "2",
                    "--width",
                    "8",
                    "--height",
                    "8",
                    "--quiet",
                ],
                tmp_path,
            )
            for f in folders.values()
        ]
    )
    needles = ["was not written by ngp video", "was not written by ngp video", "holds keep.png"]
    for (name, folder), res, needle in zip(folders.items(), runs, needles):
        assert res.returncode == 2 and needle in error_line(res.stderr), (name, res.stderr)
        assert folder_bytes(folder) == before[name], name
    # a folder it wrote: kept as it was when the new export fails part-way, replaced when it completes
    ours = tmp_path / "ours"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(ours),
                "--frames",
                "3",
                "--width",
                "8",
                "--height",
                "8",
                "--quiet",
            ]
        )
        == 0
    )
    old = folder_bytes(ours)
    snap = load_snapshot(tiny_snapshot)

    def boom(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        export_video(snap.nerf, cp.orbit_path(4), ours, 8, 8, progress=boom)
    assert folder_bytes(ours) == old
    export_video(snap.nerf, cp.orbit_path(4), ours, 8, 8)
    assert sorted(p.name for p in ours.glob("*.png")) == [f"{i:05d}.png" for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp or old folders


def test_video_replaces_only_a_file_it_wrote(tiny_snapshot: Path, tmp_path: Path) -> None:
    """Issue 22: an existing .mp4/.gif is replaced only when the marker beside it holds its digest (a video this
    program wrote, unchanged since); the user's own clip of that name, or our video after the user edited it, is
    refused before any rendering and left byte for byte. A kill during the swap leaves either content accepted."""
    import json

    from ngp_app.export.video import _digest, video_file_problem, video_marker
    from ngp_app.snapshot import load_snapshot

    nerf = load_snapshot(tiny_snapshot).nerf
    cams = cp.orbit_path(3)
    for name in ("v.mp4", "v.gif"):
        ours = export_video(nerf, cams, tmp_path / name, 8, 8)
        first = ours.read_bytes()
        export_video(nerf, cp.orbit_path(4), ours, 8, 8)  # ours: replaced
        assert ours.read_bytes() != first
        assert json.loads(video_marker(ours).read_text())["sha256"] == [_digest(ours)]
        ours.write_bytes(ours.read_bytes() + b"edited")  # the user changed it
        with pytest.raises(NgpError, match="has changed since ngp video wrote it"):
            export_video(nerf, cams, ours, 8, 8)
        users = tmp_path / f"phone{Path(name).suffix}"  # the user's clip, same kind of name
        users.write_bytes(b"a user's video")
        with pytest.raises(NgpError, match="exists and was not written by ngp video"):
            export_video(nerf, cams, users, 8, 8)
        assert users.read_bytes() == b"a user's video"
    # the marker written just before the rename accepts the old and the new content
    a, b = tmp_path / "a.gif", tmp_path / "b.gif"
    a.write_bytes(b"old")
    b.write_bytes(b"new")
    video_marker(a).write_text(json.dumps({"written_by": "ngp video", "sha256": [_digest(a), _digest(b)]}))
    assert video_file_problem(a) is None
    a.write_bytes(b"new")
    assert video_file_problem(a) is None
    a.write_bytes(b"other")
    assert "has changed" in (video_file_problem(a) or "")


def test_failed_export_leaves_no_file(tiny_snapshot: Path, tmp_path: Path) -> None:
    from ngp_app.snapshot import load_snapshot

    snap = load_snapshot(tiny_snapshot)
    cams = cp.orbit_path(5)

    def boom(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("interrupted")

    for name in ("v.mp4", "v.gif", "frames"):
        with pytest.raises(RuntimeError, match="interrupted"):
            export_video(snap.nerf, cams, tmp_path / name, 16, 16, progress=boom)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--out", "{tmp}/v.avi"], "unsupported video format"),
        (["--out", "{tmp}/v.mp4", "--path", "{tmp}/nope.json"], "not orbit, train"),
        (["--out", "{tmp}/v.mp4", "--path", "{tmp}/bad.json"], "malformed JSON"),
        (["--out", "{tmp}/notes"], "was not written by ngp video"),
        (["--out", "{tmp}/notes/keep.txt/v.gif"], "keep.txt: not a folder"),
    ],
)
def test_video_errors_are_one_line(
    tiny_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    (tmp_path / "bad.json").write_text("{ nope")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    argv = ["video", str(tiny_snapshot), "--frames", "2", "--width", "8", "--height", "8", "--quiet"]
    code = main(argv + [a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and needle in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_missing_snapshot_and_output_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["video", str(tmp_path / "none.npz"), "--out", str(tmp_path / "v.gif"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert check_output(tmp_path / "a.mp4") == "mp4" and check_output(tmp_path / "f") == "frames"
    assert even_size(33, 19, "mp4") == (34, 20) and even_size(33, 19, "gif") == (33, 19)
    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(NgpError, match="is a folder"):
        check_output(tmp_path / "x.mp4")


def test_default_orbit_sweeps_over_a_frontal_capture() -> None:
    def ring(azimuths_deg: np.ndarray) -> dict:
        c2ws = [
            cp.orbit_path(1, radius=2.0, elevation_deg=10.0, start_azimuth_deg=float(a))[0].c2w.tolist()
            for a in azimuths_deg
        ]
        return {"c2w": c2ws}

    frontal = ring(np.linspace(-60.0, 60.0, 25))  # a 120 degree arc, like a phone capture in front of an object
    start, width = cp.covered_arc(np.asarray(frontal["c2w"]))
    assert math.isclose(width, 120.0, abs_tol=1e-4) and math.isclose(start, 300.0, abs_tol=1e-4)
    cams = cp.default_orbit(frontal, 40)
    az = np.array([math.degrees(math.atan2(c.c2w[0, 3] - 0.5, c.c2w[2, 3] - 0.5)) for c in cams])
    assert az.min() >= -54.0 - 1e-4 and az.max() <= 54.0 + 1e-4  # the central 90% of the arc
    assert az.max() - az.min() > 100.0  # and it does sweep
    assert np.allclose([np.linalg.norm(c.c2w[:, 3] - 0.5) for c in cams], 2.0)
    around = ring(np.arange(0.0, 360.0, 15.0))
    assert cp.covered_arc(np.asarray(around["c2w"]))[1] > 340.0
    full = cp.default_orbit(around, 36)
    az = np.degrees(np.unwrap([math.atan2(c.c2w[0, 3] - 0.5, c.c2w[2, 3] - 0.5) for c in full]))
    assert az[-1] - az[0] > 340.0  # all the way round
    custom = cp.default_orbit(frontal, 4, fov_y_deg=30.0, radius=3.0, elevation_deg=40.0)
    assert math.isclose(custom[0].fov_y_deg, 30.0) and math.isclose(
        np.linalg.norm(custom[0].c2w[:, 3] - 0.5), 3.0, rel_tol=1e-6
    )


def test_bad_orbit_elevation_is_refused_by_the_parser(
    tiny_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["video", str(tiny_snapshot), "--out", str(tmp_path / "v.gif"), "--elevation", "nan"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ngp: error:") and "in -89..89" in err[0]


def test_normals_mode_in_render_and_video(tiny_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import imageio.v3 as iio

    png = tmp_path / "n.png"
    assert (
        main(
            [
                "render",
                str(tiny_snapshot),
                "--mode",
                "normals",
                "--camera",
                "train:0",
                "--width",
                "24",
                "--height",
                "24",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    img = iio.imread(png)
    assert img.shape == (24, 24, 3) and int(img[0, 0].sum()) < 30  # corners see the black background
    assert float(img.reshape(-1, 3).std(axis=0).mean()) > 3.0  # normals vary over the object
    frames = tmp_path / "nf"
    assert (
        main(
            [
                "video",
                str(tiny_snapshot),
                "--out",
                str(frames),
                "--frames",
                "2",
                "--width",
                "12",
                "--height",
                "12",
                "--mode",
                "normals",
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list(frames.glob("*.png"))) == 2
    capsys.readouterr()


def test_an_export_removes_what_a_killed_export_left_and_nothing_else(tmp_path: Path) -> None:
    """A kill -9 during ``ngp video`` leaves its hidden partial file; the next export to that target removes it, but
    not a partial whose writer still runs, nor a hidden file of the user's (issue 22 item 19)."""
    import os
    import subprocess
    import sys

    from ngp_app.export.video import PARTIAL, write_video

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    target = tmp_path / "v.gif"
    killed = tmp_path / f".v.gif.{PARTIAL}-{dead_pid}-abc123.gif"
    killed_frames = tmp_path / f".v.gif.{PARTIAL}-{dead_pid}-xyz"
    running = tmp_path / f".v.gif.{PARTIAL}-{os.getpid()}-def456.gif"  # this process: alive
    users = tmp_path / ".v.gif.backup.gif"
    for f in (killed, running, users):
        f.write_bytes(b"partial")
    killed_frames.mkdir()
    (killed_frames / "00000.png").write_bytes(b"x")
    write_video([np.zeros((8, 8, 3), np.uint8)] * 2, target, fps=10)
    assert target.is_file() and not killed.exists() and not killed_frames.exists()
    assert running.read_bytes() == b"partial" and users.read_bytes() == b"partial"
