"""``--spp N``: jittered sub-pixel samples per pixel (render/supersample.py): the offsets, the jittered rays, and
a render with 4 samples nearer a 16-sample reference than a plain one; the CLI and render jobs carry the option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.data.cameras import Camera, camera_rays, pixel_rays
from ngp_app.render.supersample import jittered, rgba8_of, subpixel_offsets

ROOT = Path(__file__).resolve().parents[1]


def ngp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.mark.parametrize("n", [1, 2, 4, 16, 64, 1024])
def test_offsets_are_centred_spread_and_inside_the_pixel(n: int) -> None:
    p = np.array(subpixel_offsets(n))
    assert p.shape == (n, 2) and np.allclose(p.mean(axis=0), 0.5)
    assert p.min() > -0.03 and p.max() < 1.03
    if n > 1:  # no two samples bunch up: nearest neighbours at least 0.6 / sqrt(n) apart (a grid has 1 / sqrt(n))
        d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(n) * 9
        assert d.min() > 0.6 / np.sqrt(n)
    assert subpixel_offsets(1) == [(0.5, 0.5)]
    with pytest.raises(ValueError):
        subpixel_offsets(0)


def test_a_jittered_camera_casts_rays_through_the_offset_positions() -> None:
    c2w = torch.tensor([[0.0, 0.6, 0.8, 0.1], [1.0, 0.0, 0.0, 0.2], [0.0, 0.8, -0.6, 0.3]])
    lens = (0.05, -0.01, 0.002, 0.0, 0.001, -0.002, 0.0)  # distorted: the lens must not move with the offset
    cam = Camera(c2w, 40.0, 42.0, 15.5, 11.0, 32, 24, lens)
    offset = (0.2, 0.9)
    o, d = camera_rays(jittered(cam, offset))
    v, u = torch.meshgrid(torch.arange(24.0) + offset[1], torch.arange(32.0) + offset[0], indexing="ij")
    intr = torch.tensor([40.0, 42.0, 15.5, 11.0])
    o2, d2 = pixel_rays(u.reshape(-1), v.reshape(-1), c2w, intr, torch.tensor(lens))
    assert torch.allclose(d, d2, atol=1e-6) and torch.allclose(o, o2)


def test_four_samples_come_nearer_a_sixteen_sample_reference(tiny_snapshot: Path) -> None:
    from ngp_app.compute import resolve_ops
    from ngp_app.render.cameras_cli import camera_from_spec
    from ngp_app.snapshot import load_snapshot

    snap = load_snapshot(tiny_snapshot, backend=resolve_ops("auto", torch.device("cpu")))
    cam = camera_from_spec("train:0", snap.scene, 40, 40, None)  # small: edges and texture alias
    ref = snap.nerf.render(cam, spp=16)["rgb"]
    err = {n: float(((snap.nerf.render(cam, spp=n)["rgb"] - ref) ** 2).mean()) for n in (1, 4)}
    assert err[4] < 0.5 * err[1], err
    plain = snap.nerf.render_rgba(cam)["rgba"]
    assert torch.equal(snap.nerf.render_rgba(cam, spp=1)["rgba"], plain)  # one sample: the plain render
    four = snap.nerf.render_rgba(cam, spp=4, floats=True)
    assert torch.equal(four["rgba"], rgba8_of(snap.nerf.render(cam, spp=4))) and four["depth"].shape == (40, 40)


def test_cli_spp_and_render_jobs_carry_it(tiny_snapshot: Path, tmp_path: Path) -> None:
    bad = ngp("render", str(tiny_snapshot), "--spp", "0", "--out", str(tmp_path / "a.png"))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("ngp: error:") and "--spp" in bad.stderr
    size = ["--width", "24", "--height", "16", "--quiet"]
    one = ngp("render", str(tiny_snapshot), "--out", str(tmp_path / "one.png"), *size)
    four = ngp("render", str(tiny_snapshot), "--spp", "4", "--out", str(tmp_path / "four.png"), *size)
    assert one.returncode == four.returncode == 0, four.stderr
    assert (tmp_path / "one.png").read_bytes() != (tmp_path / "four.png").read_bytes()
    job = tmp_path / "job.json"
    video = ["video", str(tiny_snapshot), "--frames", "2", "--spp", "2", *size, "--out", str(tmp_path / "v")]
    assert ngp(*video, "--write-job", str(job)).returncode == 0
    assert json.loads(job.read_text())["spp"] == 2
    assert ngp(*video).returncode == 0
    frames = {p.name: p.read_bytes() for p in (tmp_path / "v").glob("*.png")}
    assert len(frames) == 2
    assert ngp("video", "--job", str(job), "--quiet").returncode == 0  # replaces what ngp wrote there
    assert {p.name: p.read_bytes() for p in (tmp_path / "v").glob("*.png")} == frames
