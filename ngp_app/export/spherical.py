"""Spherical-video metadata for 360° mp4s (Google's Spherical Video V2, which YouTube, VLC and ffmpeg read).

An equirectangular video says what it is with an ``sv3d`` box (``svhd``: who wrote it; ``proj``: ``prhd`` with the
pose, ``equi`` with the projection bounds) and an ``st3d`` box (mono) inside its video sample entry
(``moov/trak/mdia/minf/stbl/stsd/avc1``). :func:`with_spherical_metadata` adds them to an mp4 written by ffmpeg:
the sizes of every enclosing box grow by what was added, and when ``moov`` comes before the media data the chunk
offsets (``stco``/``co64``) move by as much.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..errors import NgpError

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
SAMPLE_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"mp4v"}
VISUAL_ENTRY_HEADER = 8 + 78  # box header + the VisualSampleEntry fields before its child boxes


def box(kind: bytes, payload: bytes) -> bytes:
    """An ISO base media box: 32-bit size, 4-character type, payload."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    """A box with a version byte and 24 bits of flags before its payload."""
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def spherical_boxes(writer: str = "ngp-app") -> bytes:
    """``st3d`` (mono) and ``sv3d`` (equirectangular, no rotation, full sphere)."""
    st3d = full_box(b"st3d", b"\x00")  # stereo mode 0: mono
    svhd = full_box(b"svhd", writer.encode("utf-8") + b"\x00")
    prhd = full_box(b"prhd", struct.pack(">iii", 0, 0, 0))  # yaw, pitch, roll (16.16 degrees)
    equi = full_box(b"equi", struct.pack(">IIII", 0, 0, 0, 0))  # crop bounds top, bottom, left, right
    return st3d + box(b"sv3d", svhd + box(b"proj", prhd + equi))


def children(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """The boxes in ``data[start:end]``: (type, offset, header size, total size)."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise NgpError(f"mp4: a {kind!r} box at byte {at} runs past its parent")
        yield kind, at, header, size
        at += size


def _sample_entry_path(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, header size) of each box from ``moov`` down to the video sample entry."""
    path: list[tuple[bytes, int, int]] = []

    def walk(start: int, end: int) -> bool:
        for kind, at, header, size in children(data, start, end):
            if kind in CONTAINERS:
                path.append((kind, at, header))
                if walk(at + header, at + size):
                    return True
                path.pop()
            elif kind == b"stsd":  # full box + entry count, then the sample entries
                for entry, e_at, e_header, _ in children(data, at + header + 8, at + size):
                    if entry in SAMPLE_ENTRIES:
                        path.extend([(kind, at, header), (entry, e_at, e_header)])
                        return True
        return False

    if not walk(0, len(data)):
        raise NgpError("mp4: no video sample entry (moov/trak/mdia/minf/stbl/stsd/avc1) to mark as 360")
    return path


def with_spherical_metadata(data: bytes) -> bytes:
    """``data`` (an mp4 file's bytes) with the spherical boxes at the end of its video sample entry."""
    path = _sample_entry_path(data)
    extra = spherical_boxes()
    entry_kind, entry_at, entry_header = path[-1]
    entry_size = struct.unpack(">I", data[entry_at : entry_at + 4])[0]
    if entry_header != 8:
        raise NgpError("mp4: a 64-bit sample entry size is not supported")
    insert_at = entry_at + entry_size
    out = bytearray(data[:insert_at] + extra + data[insert_at:])
    for _kind, at, header in path:  # every enclosing box grows
        if header == 16:
            size = struct.unpack(">Q", out[at + 8 : at + 16])[0]
            out[at + 8 : at + 16] = struct.pack(">Q", size + len(extra))
        else:
            size = struct.unpack(">I", out[at : at + 4])[0]
            out[at : at + 4] = struct.pack(">I", size + len(extra))
    moov_at = path[0][1]
    media = [at for kind, at, _h, _s in children(bytes(out), 0, len(out)) if kind == b"mdat"]
    if media and moov_at < media[0]:  # the media data moved: shift the chunk offsets
        _shift_chunk_offsets(out, path[0], len(extra))
    return bytes(out)


def _shift_chunk_offsets(out: bytearray, moov: tuple[bytes, int, int], delta: int) -> None:
    """Add ``delta`` to every ``stco``/``co64`` entry inside ``moov``."""
    data = bytes(out)
    _kind, at, header = moov
    size = struct.unpack(">I", data[at : at + 4])[0] if header == 8 else struct.unpack(">Q", data[at + 8 : at + 16])[0]

    def walk(start: int, end: int) -> None:
        for kind, b_at, b_header, b_size in children(data, start, end):
            if kind in CONTAINERS:
                walk(b_at + b_header, b_at + b_size)
            elif kind in (b"stco", b"co64"):
                count = struct.unpack(">I", data[b_at + b_header + 4 : b_at + b_header + 8])[0]
                width, fmt = (4, ">I") if kind == b"stco" else (8, ">Q")
                first = b_at + b_header + 8
                for k in range(count):
                    pos = first + k * width
                    out[pos : pos + width] = struct.pack(fmt, struct.unpack(fmt, data[pos : pos + width])[0] + delta)

    walk(at + header, at + size)
