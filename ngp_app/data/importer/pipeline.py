"""``import_scene``: a folder of photos, a video or a COLMAP project -> a scene folder the loader reads
(``transforms.json``, ``images/`` at full resolution, ``sparse_points.ply``, the COLMAP model in ``sparse/0``).

Nothing a user made is lost (docs/reliability.md): the inputs are read and checked before ``--out`` is touched,
and ``--out`` may not be (or lie inside) an input, nor hold one where the import writes. The import holds the
run-folder lock ``ngp train`` takes (``.ngp-lock``) and builds the whole new scene in a staging folder inside
``--out`` (``.ngp-import-*``); only when it is complete are its files moved into place, transforms.json last, after
an earlier import's files (``--overwrite``) were moved aside. A failed or cancelled import removes only its staging
folder and the folders it created, so an earlier import stays as it was. The staging folder's name holds the
importing process's id: the next import into ``--out`` removes those of killed runs (their process gone) and says so.

pycolmap is never imported in this process: reading a COLMAP project, SfM and the conversion of its model run in a
worker process (``sfm``, ``sfm_worker``), whose C-level signal handlers cannot replace ours.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...errors import ImportFailed, NgpError
from ...fileio import atomic_write_text
from ...outputs import RUN_LOCK_NAME, ClaimedFolder
from .convert import IMAGES_DIR, POINTS_FILE
from .progress import ProgressCallback, Reporter
from .sfm import SfmOptions, convert_model, require_pycolmap, run_sfm
from .sources import Source, check_photos, detect_source, stage_images

log = logging.getLogger(__name__)

#: What an import writes into its output folder (and what --overwrite replaces).
OUTPUTS = ("transforms.json", IMAGES_DIR, POINTS_FILE, "sparse")
#: Prefixes of what an import keeps inside --out while it runs (the staging folder, an earlier import moved aside).
STAGING_PREFIX, OLD_PREFIX = ".ngp-import-", ".ngp-replaced-"
#: Fewer input images than this cannot make a scene.
MIN_IMAGES = 3
DEFAULT_FRAMES = 100


@dataclass
class ImportOptions:
    """Options of an import. frames: frames taken from a video (None: ``DEFAULT_FRAMES``; set for another source,
    an error); images: the images folder of a COLMAP project (default: found beside its model; set for another
    source, an error); overwrite: replace an earlier import in the output folder; aabb_scale: the box to write
    instead of the one the sparse points suggest."""

    frames: int | None = None
    images: Path | None = None
    overwrite: bool = False
    sfm: SfmOptions = field(default_factory=SfmOptions)
    aabb_scale: int | None = None  # the scene box (a power of two); None: the smallest that holds the sparse points


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

    in_place = _in_place(source, out)
    try:
        check_output_dir(
            out, 0 if in_place else _image_bytes(source), "--out", "transforms.json, images/ and the sparse points"
        )
    except NgpError as exc:
        raise ImportFailed(str(exc)) from None
    if out.is_dir():
        entries = sorted(
            e for e in os.listdir(out) if not (in_place and e == IMAGES_DIR) and not _ours_while_running(e)
        )
        ours = all(e in OUTPUTS for e in entries)
        if entries and not (overwrite and ours):
            hint = "pass --overwrite to replace the earlier import" if ours else "choose an empty or new folder"
            raise ImportFailed(f"{out}: not empty (holds {entries[0]}); {hint}")


def _in_place(source: Source, out: Path) -> bool:
    """The source's images already are ``out/images`` (``ngp import SCENE/images --out SCENE``): used as they are."""
    return source.images is not None and source.images.resolve() == (out / IMAGES_DIR).resolve()


def _ours_while_running(name: str) -> bool:
    """An entry an import (or a training run) keeps in its folder only while it runs: its lock, staging folder or an
    earlier import moved aside; left behind only by a killed run, and removed by the next import under the lock."""
    return name == RUN_LOCK_NAME or name.startswith((STAGING_PREFIX, OLD_PREFIX))


def check_apart(given: Path, source: Source, out: Path) -> None:
    """Refuse an ``out`` that is an input of the import or lies inside one, and one where the import would write
    over an input (a COLMAP model in ``out/sparse``): an import never writes into what it reads. ``given``: the
    path as the user gave it (a COLMAP project's folder)."""
    inputs = [source.path] + ([source.images] if source.images is not None else [])
    if source.kind == "colmap":
        inputs.append(given)
    in_place = _in_place(source, out)
    target = out.resolve()
    for inp in inputs:
        r = inp.resolve()
        if target == r or r in target.parents:
            where = "is" if target == r else "is inside"
            raise ImportFailed(f"{out}: --out {where} the import's input {inp}; choose a folder outside it")
    for inp in inputs:
        r = inp.resolve()
        for name in OUTPUTS:
            written = (out / name).resolve()
            if not (in_place and name == IMAGES_DIR) and (written == r or written in r.parents):
                raise ImportFailed(
                    f"{inp}: the import's input is in {out / name}, which the import writes; choose another --out"
                )


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


def import_scene(
    source: str | Path,
    out: str | Path,
    options: ImportOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ImportResult:
    """Import ``source`` into the scene folder ``out`` (see the module docstring).

    progress: called with ImportProgress (stage, fraction, overall, message) from this and a helper thread;
    cancel: set it to stop (ImportCancelled is raised, the partial output removed). Raises ImportFailed
    with a one-line reason for bad input or a failed reconstruction.
    """
    opts = options or ImportOptions()
    out = Path(out)
    src = detect_source(source, opts.images)
    what = {"images": "a folder of photos", "video": "a video", "colmap": "a COLMAP project"}[src.kind]
    if opts.frames is not None and src.kind != "video":
        raise ImportFailed(f"--frames applies to a video; {source} is {what}")
    if opts.images is not None and src.kind != "colmap":
        raise ImportFailed(f"--images applies to a COLMAP project; {source} is {what}")
    if src.kind == "video" and opts.frames is None:
        opts = replace(opts, frames=DEFAULT_FRAMES)
    if src.kind == "video" and opts.frames < MIN_IMAGES:
        raise ImportFailed(f"--frames must be at least {MIN_IMAGES}, got {opts.frames}")
    if src.kind == "images" and len(src.names) < MIN_IMAGES:
        raise ImportFailed(
            f"{src.path}: too few images ({len(src.names)}; need at least {MIN_IMAGES}, "
            f"better 30-150 overlapping views)"
        )
    check_apart(Path(source), src, out)
    check_output(out, src, opts.overwrite)
    require_pycolmap()
    report = Reporter(progress, cancel, skip=("features", "matching", "mapping") if src.kind == "colmap" else ())
    report.check()
    # read the inputs before --out is touched; a COLMAP project's model is converted into a temporary folder
    n_video_frames = None
    model: Path | None = None
    try:
        if src.kind == "video":  # an unreadable video fails here, before anything is written
            from .video import count_frames

            n_video_frames = count_frames(src.path)
        elif src.kind == "colmap":
            model = Path(tempfile.mkdtemp(prefix="ngp-import-model-"))
            _read_model(src, model, report)
        report.check()
        notes: dict[str, Any] = {}
        if src.kind == "images":
            src, opts, notes = _check_photos(src, opts, report)
        folder = ClaimedFolder(out)
        try:
            folder.claim()  # the lock ngp train takes: one run (import or training) at a time in a folder
        except NgpError as exc:
            raise ImportFailed(str(exc)) from None
        try:
            _remove_leftovers(out)
            check_output(out, src, opts.overwrite)  # again, under the lock: another run may have finished meanwhile
            stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
            try:
                result = _run(src, out, stage, opts, report, n_video_frames, model)
                result.summary.update(notes)
                _swap_in(stage, out, [n for n in OUTPUTS if (stage / n).exists()])
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        finally:
            folder.release()  # unlock; a folder this import created goes again unless the scene is in it
    finally:
        if model is not None:
            shutil.rmtree(model, ignore_errors=True)
    return result


def _check_photos(src: Source, opts: ImportOptions, report: Reporter) -> tuple[Source, ImportOptions, dict[str, Any]]:
    """Decode every photo as training will (before ``--out`` is touched): unreadable ones are skipped and named with
    the reason; photos of several sizes get a camera each (one shared camera cannot fit them; COLMAP would register
    only the photos of one size). Returns the source, options and notes for the summary."""
    photos = check_photos(src.path, src.names, report)
    for name, reason in photos.skipped:
        log.warning("%s: skipped: %s", src.path / name, reason)
    if len(photos.kept) < MIN_IMAGES:
        named = ", ".join(f"{n} ({r})" for n, r in photos.skipped[:3])
        raise ImportFailed(
            f"{src.path}: only {len(photos.kept)} readable photos (need at least {MIN_IMAGES}); skipped {named}"
            + (f" and {len(photos.skipped) - 3} more" if len(photos.skipped) > 3 else "")
        )
    notes: dict[str, Any] = {}
    if photos.skipped:
        notes["skipped"] = [{"file": n, "reason": r} for n, r in photos.skipped]
    sizes = photos.distinct_sizes()
    if len(sizes) > 1 and opts.sfm.shared_camera:
        listed = ", ".join(f"{w}x{h}: {n}" for (w, h), n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        log.warning("%s: photos of %d sizes (%s): fitting a camera per photo", src.path, len(sizes), listed)
        opts = replace(opts, sfm=replace(opts.sfm, shared_camera=False))
        notes["camera_per_photo"] = f"photos of {len(sizes)} sizes ({listed})"
    return replace(src, names=photos.kept), opts, notes


def _read_model(src: Source, into: Path, report: Reporter) -> None:
    """Read and convert a COLMAP project's model in the worker process (refusing unreadable models and unsupported
    cameras): ``into/scene`` gets the scene's sparse files and ``conversion.json``."""
    convert_model(src.path, into / "scene", into / "work", report, shown=src.path)


def _leftover_pid(name: str, prefix: str) -> int | None:
    """The process id in the name of a folder an import keeps while it runs (``<prefix><pid>-*``: staging,
    ``.ngp-import-``, or an earlier import moved aside, ``.ngp-replaced-``), None without one."""
    pid = name[len(prefix) :].split("-", 1)[0] if name.startswith(prefix) else ""
    return int(pid) if pid.isdigit() else None


def _dead_leftovers(out: Path, prefix: str) -> list[tuple[Path, int | None]]:
    """The folders named ``<prefix>*`` in ``out`` whose import is gone, with its process id (None: an older
    version's name; we hold the folder's lock, so no run of it is alive)."""
    found = []
    for entry in sorted(out.iterdir()):
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        pid = _leftover_pid(entry.name, prefix)
        if pid is None or (pid != os.getpid() and not _alive(pid)):
            found.append((entry, pid))
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(out: Path) -> list[Path]:
    """Clean up after imports killed here (their process gone), under the folder's lock; a running import's folders
    are never touched. An earlier import a killed ``--overwrite`` had moved aside (``.ngp-replaced-<pid>-*``) is put
    back when the new one never got its transforms.json in (it goes in last), else deleted; staging folders are
    removed. Says what it did; returns the folders it removed."""
    removed = []
    for entry, pid in _dead_leftovers(out, OLD_PREFIX):
        who = f"process {pid}" if pid is not None else "an earlier run"
        if not (out / "transforms.json").exists() and any(entry.iterdir()):
            for moved in sorted(entry.iterdir()):
                there = out / moved.name
                if there.is_dir() and not there.is_symlink():  # the unfinished new import's: put in after the old
                    shutil.rmtree(there)
                elif there.exists() or there.is_symlink():
                    there.unlink()
                os.replace(moved, there)
            log.warning(
                "restored the earlier import from %s, where an import killed while replacing it (%s is gone) had "
                "moved it",
                entry,
                who,
            )
        else:
            log.warning("removed %s, the earlier import that a killed import (%s is gone) had replaced", entry, who)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    for entry, pid in _dead_leftovers(out, STAGING_PREFIX):
        shutil.rmtree(entry, ignore_errors=True)
        who = f"process {pid}" if pid is not None else "an earlier run"
        log.warning("removed %s, the leftover of an import that was killed (%s is gone)", entry, who)
        removed.append(entry)
    return removed


def _swap_in(stage: Path, out: Path, names: list[str]) -> None:
    """Move the finished import's ``names`` from ``stage`` into ``out``, transforms.json last; an earlier import's
    files are moved aside first (transforms.json first) and deleted only once the new ones are all in place."""
    aside = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{os.getpid()}-", dir=out))
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for name in sorted(names, key=lambda n: n != "transforms.json"):  # transforms.json first out...
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, aside / name)
                moved_old.append(name)
        for name in sorted(names, key=lambda n: n == "transforms.json"):  # ...and last in
            os.replace(stage / name, out / name)
            moved_new.append(name)
    except BaseException:  # put everything back: the earlier import stays as it was
        for name in reversed(moved_new):
            os.replace(out / name, stage / name)
        for name in reversed(moved_old):
            os.replace(aside / name, out / name)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _run(
    src: Source,
    out: Path,
    stage: Path,
    opts: ImportOptions,
    report: Reporter,
    n_video_frames: int | None,
    model: Path | None,
) -> ImportResult:
    """Build the scene in ``stage`` (SfM's work files in ``stage/work``); ``out/images`` is used as it is for an
    import in place. ``model``: a COLMAP project's model as ``_read_model`` converted it."""
    in_place = _in_place(src, out)
    images = src.images if in_place else stage / IMAGES_DIR
    extra: dict[str, dict[str, Any]] = {}
    if src.kind == "colmap":
        assert model is not None
        conv = json.loads((model / "scene" / "conversion.json").read_text())
        stage_images(src.images, conv["names"], images, report)  # type: ignore[arg-type]
        for name in ("sparse", POINTS_FILE):
            shutil.move(model / "scene" / name, stage / name)
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
        work = stage / "work"
        work.mkdir()
        ordered = src.kind == "video"
        conv = run_sfm(images, names, work, opts.sfm, report, ordered=ordered, convert_to=stage, extra=extra)
        assert conv is not None
        shutil.rmtree(work, ignore_errors=True)
    report("writing", 0.0, "transforms.json", force=True)
    summary = conv["summary"]
    summary["source"] = str(src.path)
    if opts.aabb_scale is not None and opts.aabb_scale != summary["aabb_scale"]:
        log.info(
            "aabb_scale %d as --aabb-scale asks (the sparse points suggest %d)", opts.aabb_scale, summary["aabb_scale"]
        )
        summary["aabb_scale_suggested"] = summary["aabb_scale"]
        summary["aabb_scale"] = conv["transforms"]["aabb_scale"] = opts.aabb_scale
    conv["transforms"]["ngp_import"] = summary
    atomic_write_text(stage / "transforms.json", json.dumps(conv["transforms"], indent=2) + "\n")
    report.check()  # the last moment a cancel counts: from here the new scene replaces the old one
    report("writing", 1.0, "done")
    log.info(
        "imported %s: %d of %d images registered, %d points, reprojection error %.2f px, aabb_scale %d",
        src.path,
        summary["registered"],
        summary["images"],
        summary["points"],
        summary["reprojection_error_px"],
        summary["aabb_scale"],
    )
    for problem in summary.get("verdict_problems", []):
        log.warning("poses doubtful: %s", problem)
    return ImportResult(out, src, {**summary, "seconds": report.seconds()})  # timings: the result only


def rebox_import(scene: str | Path, aabb_scale: int) -> int:
    """Give a scene that ``ngp import`` made another box: its transforms.json's ``aabb_scale`` (and the summary's)
    becomes ``aabb_scale`` (a power of two 1..128), poses and sparse points kept, written atomically. Returns the box
    it had. Raises NgpError for a scene the import did not make (its own file stays the user's)."""
    from ...errors import SceneError
    from ...schema import read_json, validate
    from ...schema.transforms import Transforms
    from .conventions import AABB_MAX, AABB_MIN

    if not (AABB_MIN <= aabb_scale <= AABB_MAX and aabb_scale & (aabb_scale - 1) == 0):
        raise NgpError(f"aabb_scale must be a power of two in {AABB_MIN}..{AABB_MAX}, not {aabb_scale}")
    path = Path(scene)
    path = path if path.suffix == ".json" else path / "transforms.json"
    data = read_json(path, SceneError)
    validate(Transforms, data, str(path), SceneError)
    summary = data.get("ngp_import")
    if not isinstance(summary, dict):
        raise NgpError(f"{path}: not made by ngp import; its aabb_scale is left as it is")
    before = int(data.get("aabb_scale", 1))
    summary.setdefault("aabb_scale_suggested", summary.get("aabb_scale", before))
    data["aabb_scale"] = summary["aabb_scale"] = int(aabb_scale)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    log.info("%s: aabb_scale %d (was %d), poses and sparse points kept", path, aabb_scale, before)
    return before
