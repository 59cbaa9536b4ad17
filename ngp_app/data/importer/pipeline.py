"""``import_scene``: a folder of photos, a video or a COLMAP project -> a scene folder the loader reads
(``transforms.json``, ``images/`` at full resolution, ``sparse_points.ply``, the COLMAP model in ``sparse/0``).

Everything is written into the output folder and transforms.json last (atomically), so a folder with a
transforms.json is a finished import; a failed or cancelled import removes what it created.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ...errors import ImportFailed, NgpError
from ...fileio import atomic_write_text
from .convert import IMAGES_DIR, POINTS_FILE, convert, registered_images
from .points import write_points_ply
from .progress import ProgressCallback, Reporter
from .sfm import SfmOptions, require_pycolmap, run_sfm
from .sources import Source, detect_source, stage_images

log = logging.getLogger(__name__)

#: What an import writes into its output folder (and what --overwrite replaces).
OUTPUTS = ("transforms.json", IMAGES_DIR, POINTS_FILE, "sparse")
#: Fewer input images than this cannot make a scene.
MIN_IMAGES = 3
DEFAULT_FRAMES = 100


@dataclass
class ImportOptions:
    """Options of an import. frames: frames taken from a video; images: the images folder of a COLMAP project
    (default: found beside its model); overwrite: replace an earlier import in the output folder."""

    frames: int = DEFAULT_FRAMES
    images: Optional[Path] = None
    overwrite: bool = False
    sfm: SfmOptions = field(default_factory=SfmOptions)


@dataclass
class ImportResult:
    """Where the scene went and the conversion summary (images, registered, points, reprojection error, ...)."""

    scene: Path
    source: Source
    summary: dict[str, Any]

    @property
    def transforms(self) -> Path:
        return self.scene / "transforms.json"


def check_output(out: Path, source: Source, overwrite: bool) -> None:
    """Refuse an output folder that can't or shouldn't be written, before any work: what every command checks
    (``outputs.check_output_dir``: a folder, writable, room for the copied images), then a folder that holds
    something else (an earlier import needs ``overwrite``). The source's own images may already sit in
    ``out/images`` (import in place)."""
    from ...outputs import check_output_dir

    in_place = source.images is not None and source.images.resolve() == (out / IMAGES_DIR).resolve()
    try:
        check_output_dir(out, 0 if in_place else _image_bytes(source), "--out",
                         "transforms.json, images/ and the sparse points")
    except NgpError as exc:
        raise ImportFailed(str(exc)) from None
    if out.is_dir():
        entries = sorted(e for e in os.listdir(out) if not (in_place and e == IMAGES_DIR))
        ours = all(e in OUTPUTS for e in entries)
        if entries and not (overwrite and ours):
            hint = "pass --overwrite to replace the earlier import" if ours else "choose an empty or new folder"
            raise ImportFailed(f"{out}: not empty (holds {entries[0]}); {hint}")


def _image_bytes(source: Source) -> int:
    """At most the bytes of the photos an import copies (or links) into the scene; 0 for a video (its frames are
    not known yet)."""
    total = 0
    for name in source.names if source.images is not None else ():
        try:
            total += (source.images / name).stat().st_size
        except OSError:
            pass
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def import_scene(source: str | Path, out: str | Path, options: Optional[ImportOptions] = None,
                 progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None) -> ImportResult:
    """Import ``source`` into the scene folder ``out`` (see the module docstring).

    progress: called with ImportProgress (stage, fraction, overall, message) from this and a helper thread;
    cancel: set it to stop (ImportCancelled is raised, the partial output removed). Raises ImportFailed
    with a one-line reason for bad input or a failed reconstruction.
    """
    opts = options or ImportOptions()
    out = Path(out)
    src = detect_source(source, opts.images)
    if src.kind == "video" and opts.frames < MIN_IMAGES:
        raise ImportFailed(f"--frames must be at least {MIN_IMAGES}, got {opts.frames}")
    if src.kind == "images" and len(src.names) < MIN_IMAGES:
        raise ImportFailed(f"{src.path}: too few images ({len(src.names)}; need at least {MIN_IMAGES}, "
                           f"better 30-150 overlapping views)")
    check_output(out, src, opts.overwrite)
    pycolmap = require_pycolmap()
    n_video_frames = None
    if src.kind == "video":  # an unreadable video fails here, before anything is written
        from .video import count_frames

        n_video_frames = count_frames(src.path)
    report = Reporter(progress, cancel, skip=("features", "matching", "mapping") if src.kind == "colmap" else ())
    report.check()
    existed = out.exists()
    in_place = src.images is not None and src.images.resolve() == (out / IMAGES_DIR).resolve()
    if opts.overwrite:
        for name in OUTPUTS:
            if not (in_place and name == IMAGES_DIR):
                _remove(out / name)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".ngp-import-", dir=out))
    try:
        result = _run(pycolmap, src, out, work, opts, report, n_video_frames)
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for name in OUTPUTS:
                if not (in_place and name == IMAGES_DIR):
                    _remove(out / name)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _run(pycolmap: Any, src: Source, out: Path, work: Path, opts: ImportOptions, report: Reporter,
         n_video_frames: int | None) -> ImportResult:
    images = out / IMAGES_DIR
    extra: dict[str, dict[str, Any]] = {}
    conv = None
    if src.kind == "colmap":
        try:
            rec = pycolmap.Reconstruction(src.path)
        except Exception as exc:  # pycolmap raises ValueError/RuntimeError for unreadable models
            raise ImportFailed(f"{src.path}: cannot read the COLMAP model ({exc})") from None
        names = [im.name for im in registered_images(rec)]
        n_input = len(names)
        conv = convert(rec, n_input)  # refuses unsupported cameras before any copying
        stage_images(src.images, names, images, report)  # type: ignore[arg-type]
    else:
        if src.kind == "video":
            from .video import extract_frames

            report("images", 0.0, f"reading {src.path.name}", force=True)
            frames = extract_frames(src.path, images, opts.frames, report, n_video_frames)
            names = [name for name, _ in frames]
            extra = {name: {"sharpness": round(score, 3)} for name, score in frames}
            if len(names) < MIN_IMAGES:
                raise ImportFailed(f"{src.path}: too few frames ({len(names)}; need at least {MIN_IMAGES})")
        else:
            names = src.names
            stage_images(src.path, names, images, report)
        n_input = len(names)
        rec = run_sfm(images, names, work, opts.sfm, report, ordered=src.kind == "video")
    report("writing", 0.0, "transforms.json", force=True)
    conv = conv or convert(rec, n_input, extra)
    rec.write(_fresh_dir(out / "sparse" / "0"))
    write_points_ply(out / POINTS_FILE, conv.points, conv.colors)
    conv.summary["source"] = str(src.path)
    atomic_write_text(out / "transforms.json", json.dumps(conv.transforms, indent=2) + "\n")
    report("writing", 1.0, "done")
    summary = {**conv.summary, "seconds": report.seconds()}  # timings: the result only, not transforms.json
    log.info("imported %s: %d of %d images registered, %d points, reprojection error %.2f px, aabb_scale %d",
             src.path, conv.summary["registered"], conv.summary["images"], conv.summary["points"],
             conv.summary["reprojection_error_px"], conv.summary["aabb_scale"])
    return ImportResult(out, src, summary)


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
