"""Inter-process locks on files, with an owner record (PID, host, start time, command) for messages.

The lock itself is an OS lock on the file (``flock`` on POSIX, ``msvcrt.locking`` on Windows), which the kernel
releases when its process dies however it dies: a lock file left behind by a killed process is stale by
construction and is simply taken over (logged once). The record inside only says who holds a live lock, so a
second writer is told "busy: pid 1234 on host h since 12:00:03" at once instead of waiting or clobbering.

Used for output folders (``ngp train --out``) and the native build folder (``native/loader.py``).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def owner_record() -> dict[str, Any]:
    """Who we are, as written into a lock file we hold."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:300],
    }


def describe_owner(owner: dict[str, Any] | None) -> str:
    """``pid 1234 on host h since 2026-01-01T12:00:03`` (or ``an unknown process``)."""
    if not owner:
        return "an unknown process"
    return f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')} since {owner.get('started', '?')}"


class FileLock:
    """An exclusive lock on ``path`` (created if missing, removed on release). Not re-entrant.

    ``acquire(timeout)`` returns False when another process holds it after ``timeout`` seconds (0: try once);
    ``owner()`` then tells who. Usable as a context manager that raises :class:`LockBusy`."""

    def __init__(self, path: str | Path, poll_seconds: float = 0.2) -> None:
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def owner(self) -> dict[str, Any] | None:
        """The record in the lock file (the holder's, while it is held), or None."""
        try:
            text = self.path.read_text(encoding="utf-8")
            record = json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def acquire(self, timeout: float = 0.0) -> bool:
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._try_once():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_seconds)

    def _try_once(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _lock_fd(fd):
                os.close(fd)
                return False
            # The holder before us may have removed the file between our open and our lock: then we locked an
            # orphan inode, not the path. Only a lock on the file the path names now counts.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                _unlock_fd(fd)
                os.close(fd)
                return False if fcntl is None else self._try_once()
        except BaseException:
            os.close(fd)
            raise
        previous = self.owner()
        if previous and previous.get("pid") != os.getpid():
            log.info("took over the lock %s left by %s (that process is gone)", self.path, describe_owner(previous))
        data = json.dumps(owner_record()).encode("utf-8")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)
        self._fd = fd
        return True

    def release(self) -> None:
        """Remove the lock file and unlock (in that order, so a waiter never locks a file about to vanish
        unnoticed: it re-checks the path after locking)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                os.ftruncate(fd, 0)
            _unlock_fd(fd)
        finally:
            os.close(fd)
        if fcntl is None:  # Windows: an open file can't be removed, so remove it after closing (best effort)
            try:
                self.path.unlink()
            except OSError:
                pass

    def __enter__(self) -> FileLock:
        if not self.acquire():
            raise LockBusy(self.path, self.owner())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class LockBusy(Exception):
    """Another live process holds the lock."""

    def __init__(self, path: Path, owner: dict[str, Any] | None) -> None:
        super().__init__(f"{path}: held by {describe_owner(owner)}")
        self.path = path
        self.lock_owner = owner


def _lock_fd(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    import msvcrt

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


def _unlock_fd(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    import msvcrt

    try:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass
