"""Scene images on disk: finding the file a frame names, checking it, decoding it and shrinking it.

Memory: an image is decoded once (Pillow's buffer) and copied or shrunk from it in bands of rows, so loading a
scene with ``--max-size``/``--downscale`` peaks near one full-size image, not at several float copies of it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SceneError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG: either may hide behind either extension
BAND_BYTES = 4 << 20  # working memory of one band of rows while copying or shrinking
# Pillow modes decoded directly (no imageio) -> the mode to convert to (None: as is); others go through imageio.
PIL_MODES: dict[str, str | None] = {
    "RGB": None,
    "RGBA": None,
    "L": None,
    "LA": None,
    "I;16": None,
    "1": "L",
    "P": "RGB",
    "PA": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
}
Rows = Callable[[int, int], np.ndarray]  # (first, end) -> rows (end - first, W, 3|4) uint8


# ------------------------------------------------------------------------------------------------ finding
def is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; a symbolic link loop is an error (not a missing image)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SceneError(f"{path}: symbolic link loop") from None
        return False
    except ValueError:  # an embedded NUL byte
        return False


def find_image(root: Path, file_path: str) -> Path | None:
    """The image a frame names, trying common extensions when it has none (Blender's './train/r_0'). Windows
    separators (``images\\000.png``, common in captures made on Windows) work everywhere."""
    names = [file_path]
    if "\\" in file_path and os.sep != "\\":
        names.append(file_path.replace("\\", "/"))
    for name in names:
        candidate = Path(os.path.abspath(root / name))
        if is_file(candidate):
            return candidate
        if not candidate.suffix or candidate.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            for ext in IMAGE_EXTENSIONS:
                alt = candidate.with_name(candidate.name + ext)
                if is_file(alt):
                    return alt
    return None


def check_image_file(path: Path) -> None:
    """Cheap checks before decoding: readable, not empty, and a ``.png``/``.jpg`` holds a PNG or a JPEG."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise SceneError(f"{path}: cannot read image: {exc.strerror or exc}") from None
    if not head:
        raise SceneError(f"{path}: cannot read image: the file is empty")
    if path.suffix.lower() in (".png", ".jpg", ".jpeg") and not head.startswith(SIGNATURES):
        raise SceneError(f"{path}: cannot read image: not a PNG or JPEG file (it starts with {head[:8]!r})")


# ------------------------------------------------------------------------------------------------ sizes
def shrink_range(declared: tuple[int, int], actual: tuple[int, int]) -> tuple[float, float] | None:
    """The factors f > 1 by which an image of size ``declared`` (width, height) may have been shrunk to ``actual``
    (each side rounded up or down): an interval, or None when the image is not smaller in both axes by one factor."""
    (jw, jh), (w, h) = declared, actual
    if not (jw > w and jh > h):
        return None
    lo = max(jw / (w + 1), jh / (h + 1), 1.0)
    hi = min(jw / (w - 1) if w > 1 else math.inf, jh / (h - 1) if h > 1 else math.inf)
    return (lo, hi) if lo <= hi else None


def common_shrink(declared: list[tuple[int, int]], actual: list[tuple[int, int]]) -> tuple[float, int | None]:
    """The one factor by which every image of size ``declared[i]`` became ``actual[i]`` (1.0: all as declared), and
    the index of the first image that does not fit the factor of those before it (None: all fit)."""
    if all(tuple(d) == tuple(a) for d, a in zip(declared, actual)):
        return 1.0, None
    lo, hi = 1.0, math.inf
    for i, (d, a) in enumerate(zip(declared, actual)):
        fit = (1.0, 1.0) if tuple(d) == tuple(a) else shrink_range(d, a)
        if fit is None or max(lo, fit[0]) > min(hi, fit[1]):
            return (lo if hi == math.inf else 0.5 * (lo + hi)), i
        lo, hi = max(lo, fit[0]), min(hi, fit[1])
    return min(max(declared[0][0] / actual[0][0], lo), hi), None


# ------------------------------------------------------------------------------------------------ decoding
def as_rgb8(img: np.ndarray, path: Path) -> np.ndarray:
    """(H, W[, 1|2|3|4]) of any dtype -> (H, W, 3|4) uint8 (grey replicated, 16-bit and float rescaled)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise SceneError(f"{path}: unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 2:  # grey + alpha
        img = np.concatenate([np.repeat(img[..., :1], 3, axis=2), img[..., 1:]], axis=2)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return img


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[tuple[int, int, Rows]]:
    """Decode ``path`` and yield its width, height and a function giving rows as (n, W, 3|4) uint8. Any decoding
    failure is one :class:`SceneError` line naming the file (not imageio's multi-line plugin advice)."""
    from PIL import Image

    check_image_file(path)
    try:
        im = Image.open(path)
        if im.mode in PIL_MODES:
            im.load()
            target = "RGBA" if im.mode == "P" and "transparency" in im.info else PIL_MODES[im.mode]
            if target:
                converted = im.convert(target)
                im.close()
                im = converted
            full = None
        else:  # rare modes (32-bit integer, float, ...): imageio knows them
            import imageio.v3 as iio

            im.close()
            im, full = None, as_rgb8(np.asarray(iio.imread(path)), path)
    except (MemoryError, SceneError):
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow and imageio raise many types for bad files
        log.debug("decoding %s failed: %s", path, exc)
        raise SceneError(
            f"{path}: cannot read image: corrupt or an unsupported format ({type(exc).__name__})"
        ) from None
    try:
        if full is not None:
            yield full.shape[1], full.shape[0], lambda r0, r1: full[r0:r1]
        else:
            w, h = im.size
            yield w, h, lambda r0, r1: as_rgb8(np.asarray(im.crop((0, r0, w, r1))), path)
    finally:
        if im is not None:
            im.close()


def load_image(path: Path, size: Callable[[int, int], tuple[int, int]] | None = None) -> np.ndarray:
    """Read an image as (H, W, 3|4) uint8, shrunk to ``size(width, height)`` when given (which may also check the
    size and raise)."""
    with open_image(path) as (w, h, rows):
        nw, nh = size(w, h) if size is not None else (w, h)
        return resize_rows(rows, w, h, nw, nh)


def load_nonzero(path: Path) -> np.ndarray:
    """(H, W) bool: the pixels of an image (a mask) with a non-zero colour channel (an alpha channel is not read),
    decoded in bands of rows."""
    with open_image(path) as (w, h, rows):
        out = np.empty((h, w), bool)
        for r0, r1 in _bands(h, w * 4):
            out[r0:r1] = rows(r0, r1)[..., :3].any(axis=-1)
        return out


# ------------------------------------------------------------------------------------------------ resizing
def _bands(total: int, bytes_per_unit: int) -> list[tuple[int, int]]:
    """Ranges covering ``0..total`` of about ``BAND_BYTES`` each, none one unit wide (torch's antialiased resize of a
    one-pixel-wide input along its other axis is wrong)."""
    step = max(2, BAND_BYTES // max(bytes_per_unit, 1))
    bands = [(s, min(s + step, total)) for s in range(0, total, step)]
    if len(bands) > 1 and bands[-1][1] - bands[-1][0] == 1:
        bands[-2:] = [(bands[-2][0], total)]
    return bands


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) float -> (H, W, C) uint8."""
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _chw(rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rows)).permute(2, 0, 1)[None].float()  # a writable band-sized copy


def resize_rows(rows: Rows, w0: int, h0: int, width: int, height: int) -> np.ndarray:
    """Area-style (antialiased) resize of an image given by ``rows`` (w0 x h0) to (height, width, C) uint8.

    A box filter when the factors are whole, else an antialiased bilinear filter applied along the width (bands of
    rows) and then along the height (bands of columns): the filter is separable, so this equals one 2-D pass, and the
    float copies stay near ``BAND_BYTES``. Same size: a plain copy, band by band."""
    c = rows(0, 1).shape[2]
    out = np.empty((height, width, c), np.uint8)
    if (w0, h0) == (width, height):
        for r0, r1 in _bands(h0, w0 * c):
            out[r0:r1] = rows(r0, r1)
        return out
    if h0 % height == 0 and w0 % width == 0:
        kh, kw = h0 // height, w0 // width
        for r0, r1 in _bands(height, kh * w0 * c * 4):
            out[r0:r1] = _to_uint8(F.avg_pool2d(_chw(rows(r0 * kh, r1 * kh)), kernel_size=(kh, kw)))
        return out

    def resample(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)

    mid = torch.empty(1, c, h0, width)
    for r0, r1 in _bands(h0, w0 * c * 4):
        mid[..., r0:r1, :] = resample(_chw(rows(r0, r1)), (r1 - r0, width))
    for c0, c1 in _bands(width, h0 * c * 4):
        out[:, c0:c1] = _to_uint8(resample(mid[..., c0:c1], (height, c1 - c0)))
    return out


def resize_image(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-style (antialiased) resize of (H, W, C) uint8 to (height, width, C) (see :func:`resize_rows`)."""
    if img.shape[:2] == (height, width):
        return img
    return resize_rows(lambda r0, r1: img[r0:r1], img.shape[1], img.shape[0], width, height)


def decode_workers(first_image: Path, resizing: bool, workers: int) -> int:
    """Images decode in parallel, except big ones that get shrunk: then one at a time, so the peak memory stays near
    one full-size image (the header gives the size without decoding)."""
    if not resizing or workers <= 1:
        return max(1, workers)
    try:
        from PIL import Image

        with Image.open(first_image) as im:
            w, h = im.size
    except Exception:  # noqa: BLE001 - load_image reports unreadable files properly
        return 1
    return 1 if w * h * 4 > BAND_BYTES else workers
