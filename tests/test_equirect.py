"""360 renders: equirectangular pixels look the right way, panoramas need 2:1 frames, and an mp4 of them carries the
spherical-video metadata that ffmpeg (and so players) read, without changing a frame."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.data.cameras import Camera, camera_rays

ROOT = Path(__file__).resolve().parents[1]


def ngp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def ffmpeg_says(path: Path) -> str:
    import imageio_ffmpeg

    return subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr


def test_equirectangular_pixels_map_to_the_right_directions() -> None:
    angle = np.radians(30.0)  # a camera turned about ngp y, placed anywhere
    rot = torch.tensor(
        [[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]],
        dtype=torch.float32,
    )
    c2w = torch.cat([rot, torch.tensor([[0.3], [0.5], [0.7]])], dim=1)
    w, h = 8, 4
    cam = Camera(c2w, 1.0, 1.0, 0.0, 0.0, w, h).panorama()
    o, d = camera_rays(cam)
    d = d.view(h, w, 3)
    right, down, forward = rot[:, 0], rot[:, 1], rot[:, 2]
    # pixel centres: column j at longitude (j + 0.5 - 4) / 8 * 360, row i at latitude -(i + 0.5 - 2) / 4 * 180
    lon = lambda j: np.radians((j + 0.5 - w / 2) / w * 360.0)  # noqa: E731
    lat = lambda i: np.radians(-(i + 0.5 - h / 2) / h * 180.0)  # noqa: E731
    for i in range(h):
        for j in range(w):
            expect = (
                np.cos(lat(i)) * np.sin(lon(j)) * right
                - np.sin(lat(i)) * down
                + np.cos(lat(i)) * np.cos(lon(j)) * forward
            )
            assert torch.allclose(d[i, j], expect.float(), atol=1e-6), (i, j)
    assert torch.allclose(o, c2w[:, 3].expand_as(o))
    # the middle of the image looks forward, a quarter to the right looks right, the top row looks up
    assert float(d[1, 4] @ forward) > 0.8 and float(d[1:3, 5:7].mean((0, 1)) @ right) > 0.5
    assert float(d[0].mean(0) @ -down) > 0.9


def test_panoramas_need_two_to_one(tiny_snapshot: Path, tmp_path: Path) -> None:
    bad = ngp("render", str(tiny_snapshot), "--camera-model", "equirectangular", "--width", "64", "--height", "40",
              "--out", str(tmp_path / "p.png"))  # fmt: skip
    assert bad.returncode == 2 and "2:1" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


def test_a_360_mp4_says_so_and_keeps_its_frames(tiny_snapshot: Path, tmp_path: Path) -> None:
    import imageio.v2 as iio2

    args = ["video", str(tiny_snapshot), "--frames", "3", "--width", "48", "--height", "24", "--quiet"]
    assert ngp(*args, "--camera-model", "equirectangular", "--out", str(tmp_path / "pano.mp4")).returncode == 0
    assert ngp(*args, "--camera-model", "equirectangular", "--out", str(tmp_path / "frames")).returncode == 0
    assert ngp(*args, "--out", str(tmp_path / "flat.mp4")).returncode == 0
    assert "Spherical Mapping: equirectangular" in ffmpeg_says(tmp_path / "pano.mp4")
    assert "Spherical" not in ffmpeg_says(tmp_path / "flat.mp4")
    frames = list(iio2.get_reader(tmp_path / "pano.mp4", format="FFMPEG").iter_data())
    assert len(frames) == 3 and frames[0].shape == (24, 48, 3)
    png = iio2.imread(tmp_path / "frames" / "00000.png")
    assert np.abs(frames[0].astype(int) - png.astype(int)).mean() < 8  # the same panorama, through the codec


def test_spherical_boxes_survive_a_moov_before_the_media(tmp_path: Path) -> None:
    import imageio.v2 as iio2
    import imageio_ffmpeg

    from ngp_app.export.spherical import children, with_spherical_metadata

    plain = tmp_path / "plain.mp4"
    writer = iio2.get_writer(plain, format="FFMPEG", mode="I", fps=10, codec="libx264", macro_block_size=2,
                             ffmpeg_log_level="error")  # fmt: skip
    for k in range(4):
        writer.append_data(np.full((16, 32, 3), 50 * k, np.uint8))
    writer.close()
    fast = tmp_path / "fast.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(plain), "-c", "copy", "-movflags",
                    "+faststart", str(fast)], check=True)  # fmt: skip
    data = fast.read_bytes()
    assert [k for k, *_ in children(data, 0, len(data))].index(b"moov") < [
        k for k, *_ in children(data, 0, len(data))
    ].index(b"mdat")
    marked = tmp_path / "marked.mp4"
    marked.write_bytes(with_spherical_metadata(data))
    assert "Spherical Mapping: equirectangular" in ffmpeg_says(marked)
    before = list(iio2.get_reader(fast, format="FFMPEG").iter_data())
    after = list(iio2.get_reader(marked, format="FFMPEG").iter_data())
    assert len(after) == 4 and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_not_an_mp4_is_one_clear_error() -> None:
    from ngp_app.errors import NgpError
    from ngp_app.export.spherical import with_spherical_metadata

    with pytest.raises(NgpError, match="no video sample entry"):
        with_spherical_metadata(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00")
