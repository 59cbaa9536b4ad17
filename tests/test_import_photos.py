"""Photos are read as training reads them before an import touches ``--out`` (issue 22 items 13, 14, 19): unreadable
ones are skipped and named with the reason, photos of several sizes get a camera each, too few readable photos is
one line. No structure from motion runs here (the SfM itself is tested in test_import.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ngp_app.data.importer.pipeline import ImportOptions, _check_photos
from ngp_app.data.importer.progress import Reporter
from ngp_app.data.importer.sources import Source, check_photos
from ngp_app.errors import ImportFailed


def photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    iio.imwrite(path, rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half: its header reads, its pixels do not (COLMAP decodes such files; training refuses)."""
    whole = photo(path, 64, 48, 9).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def folder_of_photos(root: Path) -> list[str]:
    names = []
    for i in range(4):
        names.append(photo(root / f"land_{i}.jpg", 64, 48, i).name)  # landscape
    for i in range(2):
        names.append(photo(root / f"port_{i}.jpg", 48, 64, 10 + i).name)  # portrait: another size
    names.append(truncated_jpeg(root / "cut.jpg").name)
    (root / "notes.jpg").write_text("not a photo\n")
    names.append("notes.jpg")
    return names


def test_unreadable_photos_are_skipped_with_their_reason(tmp_path: Path) -> None:
    names = folder_of_photos(tmp_path)
    check = check_photos(tmp_path, names, Reporter())
    assert check.kept == [n for n in names if n not in ("cut.jpg", "notes.jpg")]
    reasons = dict(check.skipped)
    assert set(reasons) == {"cut.jpg", "notes.jpg"}
    assert "corrupt" in reasons["cut.jpg"] and "not a PNG or JPEG file" in reasons["notes.jpg"]
    assert check.distinct_sizes() == {(64, 48): 4, (48, 64): 2}


def test_photos_of_two_sizes_get_a_camera_each_and_the_summary_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = folder_of_photos(tmp_path)
    src = Source("images", tmp_path, tmp_path, names)
    opts = ImportOptions()
    assert opts.sfm.shared_camera
    with caplog.at_level(logging.WARNING):
        src2, opts2, notes = _check_photos(src, opts, Reporter())
    assert not opts2.sfm.shared_camera and opts.sfm.shared_camera  # the caller's options are left as they were
    assert src2.names == [n for n in names if n.startswith(("land", "port"))]
    assert [s["file"] for s in notes["skipped"]] == ["cut.jpg", "notes.jpg"]
    assert "64x48: 4, 48x64: 2" in notes["camera_per_photo"]
    warned = caplog.text
    assert str(tmp_path / "cut.jpg") in warned and str(tmp_path / "notes.jpg") in warned and "2 sizes" in warned
    # one size: the shared camera stays
    same = Source("images", tmp_path, tmp_path, [n for n in names if n.startswith("land")])
    _, kept_opts, kept_notes = _check_photos(same, opts, Reporter())
    assert kept_opts.sfm.shared_camera and kept_notes == {}


def test_too_few_readable_photos_is_one_line_naming_them(tmp_path: Path) -> None:
    names = [truncated_jpeg(tmp_path / f"cut_{i}.jpg").name for i in range(4)]
    with pytest.raises(ImportFailed) as info:
        _check_photos(Source("images", tmp_path, tmp_path, names), ImportOptions(), Reporter())
    text = str(info.value)
    assert "\n" not in text and "only 0 readable photos" in text and "cut_0.jpg (" in text and "and 1 more" in text
