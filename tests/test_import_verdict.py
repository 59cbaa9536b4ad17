"""The import's verdict on its poses (issue 18 item 7): hand-made point sets and cameras for each check, and real
SfM on frames of a flat textured plane, the degenerate capture, flagged as doubtful."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ngp_app.cli import main
from ngp_app.data.importer.verdict import FLAT, MAX_ASPECT, assess, spreads, verdict_line


def ring(n: int = 24, radius: float = 4.0, height: float = 1.5) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, height)], axis=1)


def blob(n: int = 2000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def test_spreads_are_the_principal_standard_deviations() -> None:
    # a box of axis spreads 3, 2, 0.5 turned by a rotation: the same spreads, largest first
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(20000, 3)) * np.array([3.0, 2.0, 0.5])
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    s = spreads(pts @ q.T)
    assert s[0] > s[1] > s[2]
    # the central 96 % by distance trims the tails a little: each spread within 15 % below the true one
    np.testing.assert_allclose(s, [3.0, 2.0, 0.5], rtol=0.15)


def test_an_object_circled_by_cameras_is_good() -> None:
    v = assess(24, ring(), blob(), np.full(2000, 5))
    assert v.verdict == "good" and v.problems == [] and verdict_line(v.summary()) == "poses look good"
    assert v.checks["registered_share"] == 1.0 and v.checks["points_seen_by_3_or_more"] == 1.0


def test_points_on_a_plane_are_doubtful() -> None:
    pts = blob()
    pts[:, 2] *= FLAT / 3  # a floor: the thickness well below the flatness limit
    v = assess(24, ring(), pts, np.full(2000, 5))
    assert v.verdict == "doubtful" and len(v.problems) == 1 and "plane" in v.problems[0]
    assert v.checks["flatness"] < FLAT
    assert verdict_line(v.summary()).startswith("poses doubtful: the points lie near one plane")


@pytest.mark.parametrize(
    "case, needle",
    [
        ("few registered", "only 12 of 24 frames registered"),
        ("few points", "only 50 sparse points"),
        ("short tracks", "seen by 3 or more frames"),
        ("no motion", "the cameras barely move"),
    ],
)
def test_each_check_says_what_is_wrong_and_what_to_try(case: str, needle: str) -> None:
    centres, pts, tracks = ring(), blob(), np.full(2000, 5)
    if case == "few registered":
        centres = centres[:12]
    elif case == "few points":
        pts, tracks = pts[:50], tracks[:50]
    elif case == "short tracks":
        tracks = np.where(np.arange(2000) % 10 == 0, 3, 2)
    else:
        centres = np.random.default_rng(3).normal(scale=0.01, size=(24, 3)) + np.array([4.0, 0.0, 1.5])
    v = assess(24, centres, pts, tracks)
    assert v.verdict == "doubtful" and len(v.problems) == 1 and needle in v.problems[0], v.problems
    assert "(" in v.problems[0]  # what to try, in brackets


def test_non_square_pixels_are_doubtful() -> None:
    v = assess(24, ring(), blob(), np.full(2000, 5), [(500.0, 500.0), (540.0, 500.0)])
    assert v.verdict == "doubtful" and v.checks["focal_aspect"] == pytest.approx(0.08)
    assert len(v.problems) == 1 and "focal lengths found differ by 8%" in v.problems[0]
    assert assess(24, ring(), blob(), np.full(2000, 5), [(500.0, 510.0)]).verdict == "good"  # 2 %: fine


def test_a_model_without_tracks_is_not_judged_on_them() -> None:
    v = assess(24, ring(), blob(), np.zeros(2000, dtype=np.int64))
    assert v.verdict == "good" and "points_seen_by_3_or_more" not in v.checks


# ------------------------------------------------------------------------------------------------ real SfM
def plane_views(folder: Path, n: int = 20, width: int = 240, height: int = 180) -> None:
    """``n`` photos of a flat textured floor (the plane z = 0, multi-scale noise) from cameras on an arc above it,
    looking at its middle: SfM registers them, and the points lie on one plane."""
    rng = np.random.default_rng(5)
    tex = np.zeros((512, 512, 3), np.float32)
    for cells, radius in ((16, 12), (64, 4), (256, 1)):  # smooth blotches at three scales: SIFT finds blobs
        coarse = rng.uniform(0, 1, size=(cells, cells, 3)).astype(np.float32)
        layer = np.kron(coarse, np.ones((512 // cells, 512 // cells, 1), np.float32))
        for _ in range(2):
            for axis in (0, 1):
                layer = sum(np.roll(layer, k, axis=axis) for k in range(-radius, radius + 1)) / (2 * radius + 1)
        tex += layer
    tex = (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.uint8)
    folder.mkdir(parents=True)
    focal = 0.9 * width
    for i, a in enumerate(np.linspace(-0.6, 0.6, n)):
        eye = np.array([3.0 * np.sin(a), -3.0 * np.cos(a), 2.2])
        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        u, v = np.meshgrid(np.arange(width) + 0.5 - width / 2, np.arange(height) + 0.5 - height / 2)
        d = forward[None, None] + (u[..., None] * right + v[..., None] * down) / focal
        t = -eye[2] / d[..., 2]
        hit = eye + t[..., None] * d  # on z = 0; the plane spans [-2, 2]^2 in texture space
        px = np.clip(((hit[..., :2] + 2.0) / 4.0 * 511).round().astype(int), 0, 511)
        iio.imwrite(folder / f"f{i:02d}.png", tex[px[..., 1], px[..., 0]])


def test_frames_of_a_flat_plane_import_with_a_doubtful_verdict(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("pycolmap")
    plane_views(tmp_path / "floor")
    out = tmp_path / "scene"
    assert main(["--threads", "1", "import", str(tmp_path / "floor"), "--out", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["registered"] >= 10 and summary["reprojection_error_px"] < 1.0, summary  # confident...
    # ... and wrong: a plane seen from an arc leaves the focal length free (truth: 216 px in x and y); the model
    # SfM settles on has non-square pixels and bends the floor (so the flatness check alone would miss it)
    assert summary["verdict"] == "doubtful" and summary["checks"]["focal_aspect"] > MAX_ASPECT, summary["checks"]
    assert any("focal lengths" in p for p in summary["verdict_problems"])
    written = json.loads((out / "transforms.json").read_text())["ngp_import"]  # kept with the scene, for the app
    assert written["verdict"] == "doubtful"
