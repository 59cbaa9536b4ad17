"""Reading ``.npz`` files (zips of ``.npy`` entries) that may be corrupt or hostile, one entry at a time.

``numpy.load`` allocates whatever shape an entry's header claims before reading a byte of it, so a few corrupt
header bytes become a terabyte allocation ("out of memory" instead of "corrupt file"), and a small file of
compressed zeros becomes gigabytes. Here every entry's header is read first and checked against the zip directory
(the header's shape must account for exactly the entry's declared size, and that size for a possible compression
ratio of its stored bytes) and against the shape the caller expects, before any data is allocated; data is then read
straight into the caller's buffer.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NgpError

MAX_DEFLATE_RATIO = 1100  # DEFLATE cannot expand data more than ~1032x
CHUNK = 1 << 22
# what reading a damaged zip raises: zlib.error is a corrupt deflate stream (a flipped byte of data is a CRC error)
_READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, zlib.error)


class CorruptNpz(NgpError):
    """An entry that is missing, unreadable, or not what its header or the caller says."""


@dataclass(frozen=True)
class Entry:
    """What an entry's ``.npy`` header declares (nothing of its data is read)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    header_size: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class NpzReader:
    """An open ``.npz``: entry names, declared headers, and checked reads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._infos = {
                i.filename[: -len(".npy")] if i.filename.endswith(".npy") else i.filename: i
                for i in self._zip.infolist()
            }
        except _READ_ERRORS as exc:
            raise CorruptNpz(f"not a readable npz file ({type(exc).__name__}: {str(exc)[:120]})") from None
        self._headers: dict[str, Entry] = {}

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        return list(self._infos)

    def header(self, name: str) -> Entry:
        """The declared dtype and shape of entry ``name``, checked against the zip's sizes."""
        if name in self._headers:
            return self._headers[name]
        info = self._infos.get(name)
        if info is None:
            raise CorruptNpz(f"entry {name} is missing")
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"npy format version {version}")
                header_size = f.tell()
        except _READ_ERRORS as exc:
            raise CorruptNpz(f"entry {name}: unreadable header ({type(exc).__name__}: {str(exc)[:120]})") from None
        if dtype.hasobject or dtype.itemsize == 0:
            raise CorruptNpz(f"entry {name}: unsupported dtype {dtype}")
        entry = Entry(name, tuple(int(s) for s in shape), dtype, bool(fortran), header_size)
        if entry.nbytes + header_size != info.file_size:
            raise CorruptNpz(
                f"entry {name}: its header declares shape {entry.shape} ({entry.nbytes} bytes) but the "
                f"entry holds {info.file_size - header_size} bytes"
            )
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
            raise CorruptNpz(f"entry {name}: declares {info.file_size} bytes stored in {info.compress_size}")
        self._headers[name] = entry
        return entry

    def read(
        self,
        name: str,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        max_bytes: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Entry ``name`` as an array, after checking its header against ``shape``/``dtype`` (when given) and its
        size against ``max_bytes``. ``out``: a C-contiguous array of the entry's shape and dtype to read into
        (no second copy)."""
        entry = self.header(name)
        if shape is not None and entry.shape != tuple(shape):
            raise CorruptNpz(f"entry {name} has shape {entry.shape}, expected {tuple(shape)}")
        if dtype is not None and entry.dtype != np.dtype(dtype):
            raise CorruptNpz(f"entry {name} has dtype {entry.dtype}, expected {np.dtype(dtype)}")
        if max_bytes is not None and entry.nbytes > max_bytes:
            raise CorruptNpz(f"entry {name} declares {entry.nbytes} bytes, more than the {max_bytes} it may hold")
        if out is None:
            out = np.empty(entry.shape, entry.dtype, order="F" if entry.fortran_order else "C")
        elif out.shape != entry.shape or out.dtype != entry.dtype or not out.flags.c_contiguous or entry.fortran_order:
            raise CorruptNpz(f"entry {name}: {entry.shape} {entry.dtype} does not fit the buffer")
        view = memoryview(out.reshape(-1, order="A").view(np.uint8)) if out.size else memoryview(b"")
        try:
            with self._zip.open(self._infos[name]) as f:
                f.seek(entry.header_size) if f.seekable() else f.read(entry.header_size)
                done = 0
                while done < entry.nbytes:
                    n = f.readinto(view[done : done + CHUNK])
                    if not n:
                        raise EOFError(f"{entry.nbytes - done} bytes missing")
                    done += n
                if f.read(1):
                    raise ValueError("more data than its header declares")
        except _READ_ERRORS as exc:
            raise CorruptNpz(f"entry {name}: {type(exc).__name__}: {str(exc)[:120]}") from None
        return out
