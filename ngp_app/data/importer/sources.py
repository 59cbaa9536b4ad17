"""What ``ngp import`` was given: a folder of images, a video file, or an existing COLMAP project; and staging
the images of a folder into the scene (hard links where possible, else copies; full resolution always)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ImportFailed
from .progress import Reporter

#: Image files COLMAP reads (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: Video files (read with imageio-ffmpeg, which reads far more; these are the ones we recognise by name).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".wmv", ".mpg", ".mpeg", ".3gp")
#: Where a COLMAP model may sit below the folder given, in the order tried.
MODEL_DIRS = (".", "sparse/0", "sparse", "colmap/sparse/0", "distorted/sparse/0")
KINDS = ("images", "video", "colmap")


@dataclass
class Source:
    """A recognised import source. kind: 'images', 'video' or 'colmap'; path: the image folder, the video file or
    the model folder; images: the folder the images are in (None for a video); names: image files relative to
    ``images`` in natural order (for 'colmap' the model lists its own)."""

    kind: str
    path: Path
    images: Path | None = None
    names: list[str] = field(default_factory=list)


def natural_key(name: str) -> list[object]:
    """Sort key that orders 'img2' before 'img10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[str]:
    """Image files directly in ``folder`` (no hidden files, no sub-folders), in natural order."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise ImportFailed(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
    names = [
        e.name
        for e in entries
        if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file()
    ]
    return sorted(names, key=natural_key)


def find_model(folder: Path) -> Path | None:
    """The folder holding a COLMAP model (cameras, images and points3D as .bin or .txt) at or below ``folder``."""
    for sub in MODEL_DIRS:
        cand = folder / sub
        for ext in (".bin", ".txt"):
            if all((cand / f"{name}{ext}").is_file() for name in ("cameras", "images", "points3D")):
                return cand.resolve()
    return None


def _model_images(folder: Path, model: Path) -> Path | None:
    """The images folder of a COLMAP project: ``images`` beside the model or in a folder above it."""
    for cand in (folder / "images", *[p / "images" for p in model.parents][:4]):
        if cand.is_dir():
            return cand
    return None


def detect_source(path: str | Path, images: str | Path | None = None) -> Source:
    """Classify ``path`` (raises ImportFailed with a one-line reason). ``images`` overrides the images folder of a
    COLMAP project."""
    p = Path(path)
    if not p.exists():
        raise ImportFailed(f"{p}: no such file or folder")
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return Source("video", p)
        if suffix in IMAGE_SUFFIXES:
            raise ImportFailed(f"{p}: a single image; give the folder that holds the photos")
        raise ImportFailed(f"{p}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image folder or a COLMAP project")
    model = find_model(p)
    if model is not None:
        folder = Path(images) if images is not None else _model_images(p, model)
        if folder is None or not folder.is_dir():
            raise ImportFailed(f"{model}: a COLMAP model but no images folder beside it (pass --images DIR)")
        return Source("colmap", model, folder)
    names = list_images(p)
    if not names and (p / "images").is_dir():  # a capture folder with its photos in images/
        p = p / "images"
        names = list_images(p)
    if not names:
        raise ImportFailed(f"{p}: no images found (looked for {', '.join(IMAGE_SUFFIXES)}) and no COLMAP model")
    return Source("images", p, p, names)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk space, survives the source being deleted), or copy it when the
    two are on different file systems or links are not allowed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stage_images(folder: Path, names: list[str], dest: Path, report: Reporter) -> None:
    """Put ``names`` (relative to ``folder``) into ``dest`` under the same names, full resolution."""
    if folder.resolve() == dest.resolve():
        report("images", 1.0, "images already in place")
        return
    for i, name in enumerate(names):
        report.check()
        src = folder / name
        if not src.is_file():
            raise ImportFailed(f"{src}: image is missing")
        link_or_copy(src, dest / name)
        report("images", (i + 1) / len(names), f"{i + 1}/{len(names)} images")


@dataclass
class PhotoCheck:
    """What decoding every photo found: the readable ``kept`` names, the ``skipped`` ones as (name, reason), and
    each kept photo's (width, height)."""

    kept: list[str]
    skipped: list[tuple[str, str]]
    sizes: dict[str, tuple[int, int]]

    def distinct_sizes(self) -> dict[tuple[int, int], int]:
        """How many kept photos have each (width, height)."""
        out: dict[tuple[int, int], int] = {}
        for size in self.sizes.values():
            out[size] = out.get(size, 0) + 1
        return out


def check_photos(folder: Path, names: list[str], report: Reporter) -> PhotoCheck:
    """Decode every photo with the trainer's decoder (``data.images.load_image``), so a photo SfM would read but
    training would refuse (truncated, not an image) is found now; returns what was kept, skipped and why."""
    from ...errors import SceneError
    from ..images import load_image

    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(names):
        report.check()
        try:
            img = load_image(folder / name)
        except (SceneError, OSError) as exc:
            reason = str(exc).split(": ", 1)[-1] if isinstance(exc, SceneError) else (exc.strerror or str(exc))
            skipped.append((name, reason))
        else:
            kept.append(name)
            sizes[name] = (int(img.shape[1]), int(img.shape[0]))
        report("images", (i + 1) / max(len(names), 1), f"checked {i + 1}/{len(names)} photos")
    return PhotoCheck(kept, skipped, sizes)
