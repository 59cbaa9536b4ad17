"""Per-image masks: which pixels of a frame count. Masked pixels are never drawn as training rays and are left out
of evaluation (PSNR, SSIM) and of the per-image loss table; an image's alpha channel keeps its own meaning
(compositing over the background) and is not a mask.

- nerfstudio's per-frame ``mask_path`` (relative to the transforms file): a single-channel or RGB(A) image where
  0 ignores the pixel and non-zero keeps it;
- instant-ngp's ``dynamic_mask_<name>.png`` beside image ``<name>.<ext>``: non-zero marks a moving (dynamic) pixel,
  which is ignored.

Only colour channels are read (a mask's alpha is not). A frame with both keeps the pixels both keep. A mask must
have its image's full size; it is shrunk with the image (``--downscale``/``--max-size``), a shrunk pixel kept only
when the full-size pixels under it are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SceneError
from .images import find_image, is_file, load_nonzero, resize_rows

DYNAMIC_PREFIX = "dynamic_mask_"


def dynamic_mask_path(image: Path) -> Path | None:
    """instant-ngp's dynamic mask of ``image`` (``dynamic_mask_<stem>.png`` in its folder), when there is one."""
    candidate = image.with_name(f"{DYNAMIC_PREFIX}{image.stem}.png")
    return candidate if is_file(candidate) else None


def mask_files(root: Path, image: Path, meta: dict[str, Any], where: str) -> list[tuple[Path, bool]]:
    """The mask files of a frame as (file, whether non-zero keeps the pixel); a ``mask_path`` naming no file is an
    error (training on the pixels it masks would be silent)."""
    found: list[tuple[Path, bool]] = []
    if meta.get("mask_path") is not None:
        path = find_image(root, meta["mask_path"])
        if path is None:
            raise SceneError(f"{where}: mask_path {meta['mask_path']!r}: no such file")
        found.append((path, True))
    dynamic = dynamic_mask_path(image)
    if dynamic is not None:
        found.append((dynamic, False))
    return found


def load_keep_mask(
    files: list[tuple[Path, bool]], image: Path, full: tuple[int, int], size: tuple[int, int]
) -> np.ndarray | None:
    """(height, width) bool of ``size``: the pixels of ``image`` (``full`` size on disk) its masks keep; None
    without masks."""
    keep: np.ndarray | None = None
    for path, nonzero_keeps in files:
        marked = load_nonzero(path)
        if (marked.shape[1], marked.shape[0]) != tuple(full):
            raise SceneError(
                f"{path}: mask is {marked.shape[1]}x{marked.shape[0]} but its image {image.name} is {full[0]}x{full[1]}"
            )
        kept = marked if nonzero_keeps else ~marked
        keep = kept if keep is None else keep & kept
    if keep is None or tuple(size) == tuple(full):
        return keep
    bits = keep.astype(np.uint8) * 255
    shrunk = resize_rows(lambda r0, r1: bits[r0:r1, :, None], full[0], full[1], size[0], size[1])
    return shrunk[..., 0] == 255
