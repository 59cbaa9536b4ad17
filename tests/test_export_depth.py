"""Metric depth out (``--depth-out``): the depth of known pixels matches the ray-surface distance of the bundled
scene, z-depth is the ray distance times the angle to the viewing axis, and EXR, .npy and 16-bit PNG say the same;
``ngp video`` writes one file a frame into a new folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ngp_app.data import synthetic
from ngp_app.export.depth import read_depth_png

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scenes" / "demo"
W = 64
# Measured (session 13) on the 300-step 1/4-size snapshot, 64x64 view of training camera 0, pixels away from depth
# edges: median 0.057 scene units from the ray-traced distance (~4 units away; p90 0.18). Forgetting the scene's
# scale (0.33) would be off by ~8 units.
MEDIAN_BOUND = 0.1


def ngp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def render_depth(snapshot: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    size = ["--camera", "train:0", "--width", str(W), "--height", str(W), "--quiet"]
    result = ngp(
        "render", str(snapshot), *size, "--out", str(out.with_suffix(".rgb.png")), "--depth-out", str(out), *extra
    )
    assert result.returncode == 0, result.stderr
    return result


def test_depth_matches_the_ray_surface_distance(demo_trained: Path, tmp_path: Path) -> None:
    from scipy.ndimage import maximum_filter, minimum_filter

    render_depth(demo_trained, tmp_path / "ray.npy")
    render_depth(demo_trained, tmp_path / "z.npy", "--depth-kind", "z")
    ray, z = np.load(tmp_path / "ray.npy"), np.load(tmp_path / "z.npy")
    meta = json.loads((DEMO / "transforms_train.json").read_text())
    c2w = np.asarray(meta["frames"][0]["transform_matrix"])
    v, u = np.meshgrid(np.arange(W) + 0.5, np.arange(W) + 0.5, indexing="ij")
    o, d = synthetic.pixel_rays(c2w, u.reshape(-1), v.reshape(-1), W, W, meta["camera_angle_x"])
    _, hit, t = synthetic.trace_rays(o, d)
    hit, t = hit.reshape(W, W), t.reshape(W, W)
    assert ((ray > 0) == hit).mean() > 0.9  # 0 where nothing is hit
    near, far = minimum_filter(np.where(hit, t, 1e9), 3), maximum_filter(np.where(hit, t, 0.0), 3)
    smooth = hit & (far - near < 0.1) & (ray > 0)  # away from depth edges
    assert smooth.sum() > 300
    assert np.median(np.abs(ray[smooth] - t[smooth])) < MEDIAN_BOUND
    cos = (d @ -c2w[:3, 2]).reshape(W, W)  # a Blender camera looks along its -z
    assert np.allclose(z, ray * cos, rtol=1e-4, atol=1e-5)
    assert np.abs(z - ray)[smooth].max() > 0.05  # the two kinds differ off the axis


def test_exr_npy_and_png_hold_the_same_depth(demo_trained: Path, tmp_path: Path) -> None:
    OpenEXR = pytest.importorskip("OpenEXR")  # the export extra

    printed = render_depth(demo_trained, tmp_path / "d.png").stdout.split()
    assert printed[-2:] == [str(tmp_path / "d.png"), str(tmp_path / "d.png.json")]
    render_depth(demo_trained, tmp_path / "d.npy")
    render_depth(demo_trained, tmp_path / "d.exr")
    ref = np.load(tmp_path / "d.npy")
    with OpenEXR.File(str(tmp_path / "d.exr")) as f:
        exr = f.channels()["Z"].pixels
    # separate renders agree to float rounding (CPU matmuls may split their sums differently from run to run: a CI
    # run once differed by 2.9e-6 at 420 pixels); a half-float or lossy EXR would be ~1e-3 off
    assert exr.dtype == np.float32 and exr.shape == ref.shape
    np.testing.assert_allclose(exr, ref, rtol=1e-5, atol=1e-6)
    scale = json.loads((tmp_path / "d.png.json").read_text())["scale"]
    assert np.abs(read_depth_png(tmp_path / "d.png") - ref).max() <= scale / 2 + 1e-6


def test_video_writes_one_depth_file_a_frame(tiny_snapshot: Path, tmp_path: Path) -> None:
    args = ["video", str(tiny_snapshot), "--frames", "3", "--width", "24", "--height", "16", "--quiet"]
    depth = tmp_path / "depth"
    result = ngp(*args, "--out", str(tmp_path / "v.gif"), "--depth-out", str(depth), "--depth-format", "npy")
    assert result.returncode == 0, result.stderr
    files = sorted(depth.iterdir())
    assert [f.name for f in files] == ["00000.npy", "00001.npy", "00002.npy"]
    assert all(np.load(f).shape == (16, 24) for f in files)
    again = ngp(*args, "--out", str(tmp_path / "w.gif"), "--depth-out", str(depth))
    assert again.returncode == 2 and "is not empty" in again.stderr and not (tmp_path / "w.gif").exists()


@pytest.mark.parametrize("name, message", [("d.tif", "unknown depth format '.tif'"), ("d.exr/", "")])
def test_bad_depth_targets_are_one_line(tiny_snapshot: Path, tmp_path: Path, name: str, message: str) -> None:
    target = tmp_path / name
    if name.endswith("/"):
        target.mkdir()
        message = "is a folder"
    result = ngp("render", str(tiny_snapshot), "--out", str(tmp_path / "a.png"), "--depth-out", str(target))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngp: error:") and message in lines[0], result.stderr
    assert not (tmp_path / "a.png").exists()


def test_eval_saves_each_views_depth(tiny_snapshot: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    out = tmp_path / "views"
    args = ["eval", str(tiny_snapshot), "--split", "test", "--downscale", "8", "--quiet", "--save-images", str(out)]
    result = ngp(*args, "--save-depth", "npy", "--depth-kind", "z")
    assert result.returncode == 0, result.stderr
    depths = sorted(out.glob("*.depth.npy"))
    assert len(depths) == len(sorted(out.glob("[0-9][0-9][0-9][0-9].png"))) > 0
    alpha = iio.imread(sorted((DEMO / "test").glob("*.png"))[0])[4::8, 4::8, 3] > 127  # view 0 is r_0
    d = np.load(out / "0000.depth.npy")
    assert d.shape == alpha.shape and ((d > 0) == alpha).mean() > 0.7
    bad = ngp("eval", str(tiny_snapshot), "--save-depth", "npy")
    assert bad.returncode == 2 and "--save-depth needs --save-images" in bad.stderr
