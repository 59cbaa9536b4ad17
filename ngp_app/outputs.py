"""Output paths checked before any work: every command that writes calls one of these first, so an unwritable,
mistyped, full or wrong target fails in a second with one line, not after minutes of training or rendering.

- :func:`check_output_dir` for folders we create or reuse (``train --out``, ``eval --save-images``, video frames,
  ``make-scene``, ``import``): never a file we would overwrite; a missing name that looks like a file
  (``x/model.npz``, ``notes.txt``) is refused rather than turned into a folder; other names (``run.v2``) are
  folders.
- :class:`ClaimedFolder`: an output folder written by one run at a time (``train``, ``import``), under its lock.
- :func:`check_output_file` for single files (``render --out x.png``, ``video --out x.mp4``, ``mesh --out x.ply``):
  a supported extension, not a folder, a writable parent folder.

Both probe writability by creating (and removing) a temp file in the nearest existing folder, compare the free
space there with the expected output size, and create nothing: a failing command leaves no trace.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import NgpError
from .limits import human_bytes
from .locks import FileLock, describe_owner

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Names that look like files: refused as a new output folder (probably a mistake).
FILE_SUFFIXES = frozenset(
    {
        ".npz",
        ".npy",
        ".json",
        ".txt",
        ".md",
        ".csv",
        ".log",
        ".yaml",
        ".yml",
        ".msgpack",
        ".ingp",
        ".pt",
        ".pth",
        ".ckpt",
        ".zip",
        ".tar",
        ".gz",
        ".py",
        ".ply",
        ".obj",
        ".mp4",
        ".gif",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        *IMAGE_SUFFIXES,
        ".exr",
        ".webp",
    }
)
FREE_SPACE_MARGIN = 16 << 20  # bytes kept free beyond the estimate (file system metadata, logs)
RUN_LOCK_NAME = ".ngp-lock"  # the lock of a folder one run writes (ngp train --out, ngp import --out)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing parent (the current folder for relative names)."""
    p = Path(path)
    while not p.exists():
        parent = p.parent
        if parent == p:
            break
        p = parent
    return p if str(p) else Path(".")


def _folder_to_write(path: Path, shown: Path) -> Path:
    """The existing folder under which ``path`` will be created; an existing file in the way is an error."""
    anc = existing_ancestor(path)
    if not anc.is_dir():
        raise NgpError(f"{shown}: cannot be created because {anc} is a file, not a folder")
    return anc


def probe_writable(folder: Path, shown: Path) -> None:
    """Create and remove a temp file in ``folder``; any failure is an NgpError naming ``shown``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ngp-probe.", suffix=".tmp", dir=folder)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise NgpError(f"{shown}: no space left on the disk of {folder}") from None
        raise NgpError(f"{shown}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def free_space(folder: Path) -> int | None:
    """Free bytes on the file system of ``folder`` (None when unknown)."""
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


LOW_SPACE = 1 << 20  # a write that failed with less than this free on its disk failed for lack of space


def disk_full_error(path: str | Path, exc: BaseException, what: str) -> NgpError | None:
    """The one-line error for a write of ``what`` to ``path`` that failed because its disk filled up (an ENOSPC, a
    tool's "No space left on device", or almost nothing free after the failure); None for other failures."""
    p = Path(path)
    folder = existing_ancestor(p.parent)
    free = free_space(folder)
    full = (
        (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))
        or "No space left on device" in str(exc)
        or (free is not None and free < LOW_SPACE)
    )
    if not full:
        return None
    left = f"{human_bytes(free)} free" if free is not None else "its free space unknown"
    return NgpError(
        f"{p}: the disk filled up while writing {what} ({left} on {folder}); nothing was replaced: free some space "
        "or write elsewhere"
    )


def check_free_space(path: str | Path, expected_bytes: int, what: str = "") -> None:
    """Refuse when the disk of ``path`` (or its nearest existing parent) has less than ``expected_bytes`` free
    (plus a margin). The message names the path and both sizes."""
    if expected_bytes <= 0:
        return
    p = Path(path)
    free = free_space(existing_ancestor(p))
    need = int(expected_bytes) + FREE_SPACE_MARGIN
    if free is not None and free < need:
        raise NgpError(
            f"{p}: not enough free space for {what or 'the output'} ({human_bytes(free)} free, about "
            f"{human_bytes(need)} needed)"
        )


def check_output_dir(path: str | Path, expected_bytes: int = 0, option: str = "--out", contents: str = "") -> Path:
    """Check that ``path`` is a folder we may create or reuse and write ``expected_bytes`` into; creates nothing.
    ``contents`` says what goes inside, for messages (``"snapshot.npz and metrics.json"``)."""
    p = Path(path)
    inside = f" ({contents} go inside)" if contents else ""
    if p.exists() and not p.is_dir():
        raise NgpError(f"{p}: exists and is not a folder; {option} names a folder{inside}; not overwriting it")
    if not p.exists() and p.suffix.lower() in FILE_SUFFIXES:
        raise NgpError(
            f"{p}: {option} names a folder{inside}, not a {p.suffix} file; use e.g. {option} {p.with_suffix('')}"
        )
    folder = _folder_to_write(p, p)
    probe_writable(folder, p)
    check_free_space(p, expected_bytes)
    return p


def check_output_file(
    path: str | Path, suffixes: Sequence[str] | None = None, expected_bytes: int = 0, kind: str = "output"
) -> Path:
    """Check that ``path`` can be written as one file of one of ``suffixes`` (None: any), with ``expected_bytes``
    of free space; an existing file is replaced atomically later, an existing folder is an error. Creates nothing."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffixes is not None and suffix not in suffixes:
        raise NgpError(f"{p}: unsupported {kind} format {p.suffix or '(no extension)'!r} (use {', '.join(suffixes)})")
    if p.is_dir():
        raise NgpError(f"{p}: is a folder; give a file name")
    folder = _folder_to_write(p.parent, p)
    probe_writable(folder, p)
    check_free_space(p, expected_bytes, f"the {kind}")
    return p


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Remove temp files that an interrupted atomic write of ``names`` left in ``folder`` (``.<name>.*.tmp``).
    Only call it while owning the folder (its lock), or another writer's temp file could go."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


class ClaimedFolder:
    """An output folder written by one run at a time: ``claim()`` creates it (remembering the folders it made) and
    takes its lock (``RUN_LOCK_NAME``, a ``locks.FileLock``: the kernel releases it when the process dies);
    ``release()`` unlocks and removes the folders it made, if they are empty."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(self.path / RUN_LOCK_NAME)
        self._created: list[Path] = []

    def claim(self) -> None:
        """Create the folder and lock it; NgpError, naming the holder, when another run holds it."""
        missing = []
        p = self.path
        while not p.exists() and p.parent != p:
            missing.append(p)
            p = p.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NgpError(f"{self.path}: cannot create the folder ({exc.strerror or exc})") from None
        self._created = list(reversed(missing))
        if not self.lock.acquire():
            owner = self.lock.owner()
            self.remove_created()
            raise NgpError(
                f"{self.path}: another ngp run is writing there ({describe_owner(owner)}); wait for it "
                "or choose another --out"
            )

    def release(self, remove_created: bool = True) -> None:
        """Unlock; then remove the folders ``claim`` created when they are empty (and ``remove_created``)."""
        self.lock.release()
        if remove_created:
            self.remove_created()

    def remove_created(self) -> None:
        for p in reversed(self._created):
            try:
                p.rmdir()  # only if empty
            except OSError:
                break
        self._created = []
