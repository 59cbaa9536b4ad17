"""A folded camera path (issue 18 item 7): frames in time order whose poses jump between neighbours. The check on
hand-made paths; the beer capture's own COLMAP model flagged (both it and an all-pairs import fold the 1.5 turns the
phone made around the can onto ~150 degrees); and (slow) ``ngp import`` of its frames mapping again from
neighbouring frames only, which gives a continuous path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ngp_app.cli import main
from ngp_app.data.importer.verdict import assess, path_jumps, turns
from tests.conftest import ROOT

BEER = ROOT.parent / "shared" / "data" / "beer"
needs_beer = pytest.mark.skipif(not (BEER / "sparse" / "0").is_dir(), reason="needs ../shared/data/beer")


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A NeRF/OpenGL camera-to-world (4, 4) at ``eye`` looking at ``target``, z up."""
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, :3] = np.stack([right, up, back], axis=1)
    m[:3, 3] = eye
    return m


def orbit(n: int, degrees_per_frame: float, start: float = 0.0) -> np.ndarray:
    a = np.radians(start + degrees_per_frame * np.arange(n))
    eyes = np.stack([4 * np.cos(a), 4 * np.sin(a), np.full(n, 1.0)], axis=1)
    return np.stack([look_at(e, np.zeros(3)) for e in eyes])


def test_turns_by_hand() -> None:
    path = orbit(5, 7.0)
    np.testing.assert_allclose(turns(path), [7.0] * 4, atol=1e-6)  # the camera turns with the orbit
    path[3, :3, :3] = path[3, :3, :3] @ np.diag([-1.0, -1.0, 1.0])  # frame 3 rolled 180 degrees
    t = turns(path)
    assert t[2] == pytest.approx(180.0, abs=1e-3) or t[2] > 170.0
    assert t[3] > 170.0


def test_a_folded_orbit_jumps_and_a_smooth_or_shuffled_one_does_not() -> None:
    smooth = orbit(40, 8.0)
    assert path_jumps(smooth)[0] == []
    folded = smooth.copy()
    folded[14:] = orbit(26, 8.0, start=8.0 * 14 - 150.0)  # from frame 14 on, 150 degrees back round the object
    jumps, median = path_jumps(folded)
    assert jumps == [13] and median == pytest.approx(8.0, abs=0.01)
    # photos in no particular order: their neighbours turn far apart, there is no path to check
    shuffled = smooth[np.random.default_rng(0).permutation(40)]
    assert path_jumps(shuffled)[0] == []
    assert path_jumps(folded[:6])[0] == []  # too few frames
    names = [f"{i:04d}" for i in range(40)]
    v = assess(
        40, folded[:, :3, 3], np.random.default_rng(1).normal(size=(500, 3)), np.full(500, 4), None, folded, names
    )
    assert v.verdict == "doubtful" and "0013/0014" in v.problems[0] and "folded" in v.problems[0]
    assert v.checks["path_jumps"] == [13]
    good = assess(40, smooth[:, :3, 3], np.random.default_rng(1).normal(size=(500, 3)), np.full(500, 4), None, smooth)
    assert good.verdict == "good" and good.checks["path_jumps"] == []


@needs_beer
def test_the_beer_captures_own_model_is_flagged(tmp_path: Path) -> None:
    out = tmp_path / "beer"
    assert main(["import", str(BEER), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "transforms.json").read_text())["ngp_import"]
    assert summary["verdict"] == "doubtful"
    assert summary["checks"]["path_jumps"] == [13, 34, 52]  # 0013/0014, 0034/0035, 0052/0053: ~170 degrees each
    assert any("folded" in p for p in summary["verdict_problems"])


@pytest.mark.slow
@needs_beer
def test_importing_the_beer_frames_unfolds_the_path(tmp_path: Path) -> None:
    """All pairs fold the path (jumps between neighbours); mapping from neighbouring frames only does not, and is
    kept: its cameras turn ~1.5 times round the can, continuously."""
    out = tmp_path / "beer"
    assert main(["import", str(BEER / "images"), "--out", str(out), "--max-size", "960", "--quiet"]) == 0
    data = json.loads((out / "transforms.json").read_text())
    summary = data["ngp_import"]
    unfold = summary["unfold"]
    assert unfold["jumps_all_pairs"] and unfold["kept"] == "neighbours only"
    assert unfold["jumps_neighbours_only"] == [] and summary["checks"]["path_jumps"] == []
    assert summary["verdict"] == "good" and summary["registered"] == 71
    frames = sorted(data["frames"], key=lambda f: f["file_path"])
    c2w = np.array([f["transform_matrix"] for f in frames])
    assert float(turns(c2w).max()) < 45.0
    # the azimuth of the cameras round the point their optical axes pass closest to grows by more than a turn
    centres, axes = c2w[:, :3, 3], -c2w[:, :3, 2]
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    target = np.linalg.solve(proj.sum(0), np.einsum("nij,nj->i", proj, centres))
    up = c2w[:, :3, 1].mean(0)
    up /= np.linalg.norm(up)
    e1 = np.cross(up, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    v = centres - target
    azimuth = np.degrees(np.unwrap(np.arctan2(v @ e2, v @ e1)))
    assert abs(azimuth[-1] - azimuth[0]) > 360.0
