"""EXIF orientation (issue 18 item 7): SfM (pycolmap's image reader) and training (``data.images.load_image``)
read a photo with an orientation tag the same way, as its pixels are stored, so poses and pixels agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngp_app.data.images import load_image

ORIENTATION = 0x0112  # EXIF tag: 6 = the stored image must be turned 90 degrees clockwise to be upright


def tagged_photo(path: Path, orientation: int) -> np.ndarray:
    """A 60x40 (landscape as stored) JPEG whose left half is white, tagged with ``orientation``; returns its pixels."""
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :30] = 255
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[ORIENTATION] = orientation
    im.save(path, exif=exif.tobytes(), quality=95)
    return pixels


@pytest.mark.parametrize("orientation", [1, 6, 8, 3])
def test_training_and_sfm_read_a_tagged_photo_as_stored(tmp_path: Path, orientation: int) -> None:
    pycolmap = pytest.importorskip("pycolmap")
    path = tmp_path / "photo.jpg"
    stored = tagged_photo(path, orientation)
    assert Image.open(path).getexif()[ORIENTATION] == orientation  # the tag is there
    trained = load_image(path)
    bitmap = pycolmap.Bitmap.read(str(path), as_rgb=True)
    sfm = bitmap.to_array()
    assert trained.shape[:2] == sfm.shape[:2] == stored.shape[:2] == (40, 60)  # neither turns the image
    assert (bitmap.width, bitmap.height) == (60, 40)
    for img in (trained, sfm):  # the same pixels: white on the left, black on the right (JPEG's error aside)
        assert img[:, :25].mean() > 245 and img[:, 35:].mean() < 10
    assert np.abs(trained[..., :3].astype(int) - sfm.astype(int)).max() <= 2
