"""A disk that fills up while ``ngp video`` writes (issue 22 item 18): one line naming the file, the target left as
it was, no partial file. The disk is a real 2 MB tmpfs, filled by "another program" after the first frame; skipped
with the reason where this machine cannot mount one (not root, no CAP_SYS_ADMIN)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ngp_app.errors import NgpError
from ngp_app.export.video import write_video


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def frames_that_fill(disk: Path, n: int = 40) -> Iterator[np.ndarray]:
    """Noisy frames (they do not compress away); after the first, another program fills the disk."""
    rng = np.random.default_rng(0)
    for i in range(n):
        if i == 1:
            with open(disk / "filler.bin", "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
        yield rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "frames"])
def test_a_disk_filling_during_a_video_names_the_file_and_keeps_the_old_one(small_disk: Path, name: str) -> None:
    if name.endswith(".mp4"):
        pytest.importorskip("imageio_ffmpeg")
    target = small_disk / name
    with pytest.raises(NgpError) as err:
        write_video(frames_that_fill(small_disk), target, fps=10)
    msg = str(err.value)
    assert msg.startswith(f"{target}: the disk filled up while writing") and "free" in msg and "\n" not in msg
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]  # no target, no partial file


def test_the_full_disk_error_tells_a_full_disk_from_other_failures(tmp_path: Path, monkeypatch) -> None:
    """``outputs.disk_full_error``: an ENOSPC, a tool's own words for it, or almost nothing left free after the
    failure is a full disk (named with the free space); any other failure on a roomy disk is not."""
    import errno

    from ngp_app import outputs

    target = tmp_path / "sub" / "video.mp4"
    enospc = OSError(errno.ENOSPC, "No space left on device")
    assert str(outputs.disk_full_error(target, enospc, "the mp4")).startswith(f"{target}: the disk filled up")
    ffmpeg = RuntimeError("ffmpeg: av_interleaved_write_frame(): No space left on device")
    assert outputs.disk_full_error(target, ffmpeg, "the mp4") is not None
    assert outputs.disk_full_error(target, RuntimeError("the SfM process died (signal 6)"), "the model") is None
    assert outputs.disk_full_error(target, OSError(errno.EACCES, "Permission denied"), "the mp4") is None
    monkeypatch.setattr(outputs, "free_space", lambda folder: 4096)  # an abort with 4 kB left: the disk
    err = outputs.disk_full_error(target, RuntimeError("the SfM process died (signal 6)"), "the SfM database")
    assert err is not None and "4.0 KB free" in str(err) and str(tmp_path) in str(err)
