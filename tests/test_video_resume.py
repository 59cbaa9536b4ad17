"""A long video render keeps its finished frames (``export.frame_cache``): killed, it resumes from them and writes the
same frames; other settings or another model start again; a folder that is not ours or in use is left alone."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ngp_app.cli import main
from ngp_app.errors import NgpError
from ngp_app.export import camera_path as cp
from ngp_app.export.frame_cache import FrameCache, cache_folder, model_digest
from ngp_app.export.video import export_video

N = 10
SIZE = ["--width", "96", "--height", "64"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread while these tests render (and ``--threads 1`` for the processes they start): sums then
    split the same way in every render, so frames rendered apart compare exactly."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(iio.imread(p)) for p in sorted(folder.glob("*.png"))]


def _kept(out: Path) -> list[Path]:
    return sorted(cache_folder(out).glob("*.png"))


def test_killed_render_resumes_with_the_same_frames(
    tiny_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Kill ``ngp video`` (SIGKILL) once some frames are done; the same command again renders only the rest, and the
    frames equal those of an uninterrupted render."""
    args = [str(tiny_snapshot), "--frames", str(N), *SIZE, "--spp", "2", "--quiet"]
    reference = tmp_path / "reference"
    assert main(["--threads", "1", "video", *args, "--out", str(reference)]) == 0
    assert not cache_folder(reference).exists()  # removed once the output is written

    out = tmp_path / "frames"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "ngp_app", "--threads", "1", "video", *args, "--out", str(out)]
    proc = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 300
        while len(_kept(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    kept = len(_kept(out))
    assert 2 <= kept < N, f"the render was not killed part-way ({kept} of {N} frames kept)"
    assert not out.exists()  # nothing under the requested name until it is complete

    capsys.readouterr()
    assert main(["--threads", "1", "video", *args, "--out", str(out)]) == 0
    assert f"resuming: {kept} of {N} frames kept from an interrupted render" in capsys.readouterr().err
    ours, theirs = _frames(out), _frames(reference)
    assert len(ours) == N == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    assert not cache_folder(out).exists()


class Stop(Exception):
    pass


def _stop_after(k: int):
    def progress(done: int, total: int) -> None:
        if done == k:
            raise Stop

    return progress


def test_other_settings_or_model_discard_kept_frames(
    tiny_snapshot: Path, demo_trained: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ngp_app.snapshot import load_snapshot

    nerf = load_snapshot(tiny_snapshot).nerf
    cams = cp.orbit_path(5)
    out = tmp_path / "v"
    with caplog.at_level(logging.INFO, logger="ngp_app"), pytest.raises(Stop):
        export_video(nerf, cams, out, 16, 16, progress=_stop_after(3), resume=True)
    assert len(_kept(out)) == 3 and "kept 3 of 5 finished frames" in caplog.text
    caplog.clear()

    # another size: the kept frames are discarded, not mixed in
    with caplog.at_level(logging.INFO, logger="ngp_app"), pytest.raises(Stop):
        export_video(nerf, cams, out, 16, 12, progress=_stop_after(1), resume=True)
    assert "discarding them" in caplog.text and len(_kept(out)) == 1
    caplog.clear()

    # another model, same settings: discarded again; the result equals a render without resuming
    other = load_snapshot(demo_trained).nerf
    assert model_digest(other) != model_digest(nerf) == model_digest(load_snapshot(tiny_snapshot).nerf)
    with caplog.at_level(logging.INFO, logger="ngp_app"):
        export_video(other, cams, out, 16, 12, resume=True)
    assert "discarding them" in caplog.text and "resuming" not in caplog.text
    fresh = export_video(other, cams, tmp_path / "fresh", 16, 12)
    for a, b in zip(_frames(out), _frames(fresh), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not cache_folder(out).exists()


def test_depth_resumes_too(tiny_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted (Ctrl-C) after some frames, a render with ``--depth-out`` resumes; the depth folder is written
    whole once the video is, equal to an uninterrupted render's."""
    from ngp_app.export import video
    from tests.support.interrupt import interrupt_frames

    args = ["--threads", "1", "video", str(tiny_snapshot), "--frames", "4", "--width", "16", "--height", "16"]
    args += ["--quiet", "--depth-format", "npy"]
    assert main([*args, "--out", str(tmp_path / "ref.gif"), "--depth-out", str(tmp_path / "ref")]) == 0
    real, calls = video.FrameRenderer.__call__, interrupt_frames(monkeypatch, 3)
    out, depth = tmp_path / "v.gif", tmp_path / "depth"
    assert main([*args, "--out", str(out), "--depth-out", str(depth)]) == 128 + signal.SIGINT
    assert len(_kept(out)) == 2 and not depth.exists() and not out.exists()
    calls.clear()
    monkeypatch.setattr(video.FrameRenderer, "__call__", lambda self, i, chunk=None: calls.append(i) or real(self, i))
    assert main([*args, "--out", str(out), "--depth-out", str(depth)]) == 0
    assert calls == [2, 3]  # only the frames not kept
    for name in [f"{i:05d}.npy" for i in range(4)]:
        np.testing.assert_array_equal(np.load(depth / name), np.load(tmp_path / "ref" / name))
    np.testing.assert_array_equal(iio.imread(out, index=None), iio.imread(tmp_path / "ref.gif", index=None))


def test_foreign_or_busy_folder_is_left_alone(tiny_snapshot: Path, tmp_path: Path) -> None:
    from ngp_app.snapshot import load_snapshot

    nerf = load_snapshot(tiny_snapshot).nerf
    cams = cp.orbit_path(2)
    out = tmp_path / "v.gif"
    folder = cache_folder(out)
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(NgpError, match="notes.txt, which ngp video did not write"):
        export_video(nerf, cams, out, 8, 8, resume=True)
    assert (folder / "notes.txt").read_text() == "mine"

    busy = tmp_path / "w.gif"
    with FrameCache(busy, "k", 2, 8, 8):
        with pytest.raises(NgpError, match="another render to it is running"):
            export_video(nerf, cams, busy, 8, 8, resume=True)
    assert export_video(nerf, cams, busy, 8, 8, resume=True).is_file()
    assert not cache_folder(busy).exists()
