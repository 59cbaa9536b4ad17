"""The frames a video render has finished, kept beside its output so that a rerun resumes where it stopped.

``ngp video`` keeps each finished frame in ``.<name>.ngp-frames/`` next to the output (``00000.png``, with
``00000.depth.npy`` when depth is asked for) under a key: the digest of everything the pictures depend on (the
model's tensors, the cameras, the size, mode, background, samples per pixel, camera model, backend). A rerun with the
same key renders only the missing frames; a different key discards the kept frames (logged). The folder is removed
once the output is written. While a render uses it the folder holds a lock (``locks.FileLock``), so two renders to
the same output don't mix their frames.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NgpError
from ..fileio import atomic_write_bytes, atomic_write_text, default_file_mode
from ..locks import FileLock, describe_owner

log = logging.getLogger(__name__)

MARKER = "frames.json"  # the key and size of the kept frames (JSON: written_by, key, n, width, height)
LOCK = ".lock"
_OURS = re.compile(r"^(\d{5}\.png|\d{5}\.depth\.npy|frames\.json|\.lock|\..*\.tmp)$")


def cache_folder(target: str | Path) -> Path:
    """Where the finished frames of a render to ``target`` are kept: ``.<name>.ngp-frames`` beside it."""
    p = Path(target)
    return p.with_name(f".{p.name}.ngp-frames")


def model_digest(nerf: Any) -> str:
    """sha256 of what a model renders from: its field's tensors (and look), occupancy grid, march parameters, box
    and backend (the same snapshot loaded twice gives the same digest; a training step changes it)."""
    import torch

    h = hashlib.sha256()

    def add(name: str, value: Any) -> None:
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(value).encode())

    for name, value in sorted(nerf.field.state_dict().items()):
        add(name, value)
    look = getattr(nerf.field, "look", None)
    if look is not None:
        add("look.latent", look.latent)
        add("look.exposure", look.exposure)
    for name, value in sorted(nerf.grid.state_dict().items()):
        add(f"grid.{name}", value)
    add("march", nerf.march)
    add("aabb", nerf.aabb)
    add("backend", nerf.backend)
    add("device", nerf.device.type)
    return h.hexdigest()


def render_key(nerf: Any, cameras: Sequence[Any], settings: dict[str, Any]) -> str:
    """The key of a render: ``model_digest``, every camera (pose and field of view) and ``settings`` (size, mode,
    background, spp, camera model, depth: whatever changes the pictures; not the fps or encoder quality)."""
    h = hashlib.sha256(model_digest(nerf).encode())
    for cam in cameras:
        h.update(np.asarray(cam.c2w, dtype=np.float64).tobytes())
        h.update(repr(float(cam.fov_y_deg)).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


class FrameCache:
    """The kept frames of one render to ``target`` (``n`` frames of ``width`` x ``height`` under ``key``); a context
    that holds the folder's lock. ``done``: the frames already there when it was opened."""

    def __init__(self, target: str | Path, key: str, n: int, width: int, height: int) -> None:
        self.target, self.key, self.n, self.width, self.height = Path(target), key, n, width, height
        self.folder = cache_folder(target)
        self.lock = FileLock(self.folder / LOCK)
        self.done: set[int] = set()

    def __enter__(self) -> FrameCache:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.lock.acquire():
            raise NgpError(
                f"{self.target}: another render to it is running ({describe_owner(self.lock.owner())}); wait for "
                f"it or choose another name"
            )
        try:
            self._open()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.lock.held:
            self.lock.release()

    def _open(self) -> None:
        """Check the folder is ours; keep its frames when their key is this render's, else empty it."""
        names = set(os.listdir(self.folder)) - {LOCK}
        others = sorted(name for name in names if not _OURS.match(name))
        if others:
            raise NgpError(
                f"{self.folder}: holds {others[0]}, which ngp video did not write; not using the folder: move it"
            )
        marker = self.folder / MARKER
        try:
            kept = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None
        except (OSError, ValueError) as exc:
            kept = None
            log.warning("%s: unreadable (%s); the frames kept there are rendered again", marker, exc)
        same = isinstance(kept, dict) and kept.get("key") == self.key and kept.get("n") == self.n
        frames = sorted(name for name in names if name != MARKER)
        if not same and frames:
            log.warning(
                "%s: %d files kept from an earlier render with other settings or another model; discarding them",
                self.folder,
                len(frames),
            )
            for name in frames:
                (self.folder / name).unlink(missing_ok=True)
        if not same:
            record = {"written_by": "ngp video", "key": self.key, "n": self.n, "width": self.width}
            atomic_write_text(marker, json.dumps({**record, "height": self.height}) + "\n")
            return
        self.done = {i for i in range(self.n) if self._picture(i).is_file()}
        if self.done:
            log.info(
                "resuming: %d of %d frames kept from an interrupted render (%s)", len(self.done), self.n, self.folder
            )

    def _picture(self, i: int) -> Path:
        return self.folder / f"{i:05d}.png"

    def _depth(self, i: int) -> Path:
        return self.folder / f"{i:05d}.depth.npy"

    def load(self, i: int, with_depth: bool) -> Any:
        """Kept frame ``i``: its picture (H, W, 3) uint8, or (picture, depth (H, W) float32) ``with_depth``."""
        import imageio.v3 as iio

        try:
            pixels = np.asarray(iio.imread(self._picture(i)))
            depth = np.load(self._depth(i)) if with_depth else None
        except (OSError, ValueError) as exc:
            raise NgpError(f"{self._picture(i)}: a kept frame is unreadable ({exc}); delete {self.folder}") from None
        if pixels.shape != (self.height, self.width, 3):
            raise NgpError(f"{self._picture(i)}: a kept frame of shape {pixels.shape}; delete {self.folder}")
        return pixels if depth is None else (pixels, depth)

    def store(self, i: int, frame: Any) -> None:
        """Keep frame ``i`` (a picture, or (picture, depth)); the depth first, so a kept picture has its depth."""
        import imageio.v3 as iio

        pixels, depth = frame if isinstance(frame, tuple) else (frame, None)
        if depth is not None:
            buf = _npy_bytes(depth)
            atomic_write_bytes(self._depth(i), buf)
        atomic_write_bytes(self._picture(i), iio.imwrite("<bytes>", np.ascontiguousarray(pixels), extension=".png"))

    def merged(self, rendered: Iterable[Any], with_depth: bool) -> Iterator[Any]:
        """All ``n`` frames in order: the kept ones read back, the others taken from ``rendered`` (the frames not in
        ``done``, in order) and kept as they pass."""
        new = iter(rendered)
        for i in range(self.n):
            if i in self.done:
                yield self.load(i, with_depth)
                continue
            frame = next(new)
            self.store(i, frame)
            yield frame

    def depths(self) -> Iterator[np.ndarray]:
        """The kept depth of every frame, in order (once all are kept)."""
        for i in range(self.n):
            yield np.load(self._depth(i))

    def todo(self) -> list[int]:
        """The frames still to render, in order."""
        return [i for i in range(self.n) if i not in self.done]

    def kept(self) -> int:
        """How many frames the folder holds now."""
        return sum(1 for i in range(self.n) if self._picture(i).is_file())

    def remove(self) -> None:
        """Delete the folder (the output is written); the lock goes with it."""
        self.lock.release()
        shutil.rmtree(self.folder, ignore_errors=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


def write_depth_folder(frames: Iterable[np.ndarray], folder: str | Path, suffix: str, info: dict[str, Any]) -> Path:
    """Each depth of ``frames`` (H, W) into a new folder ``folder`` (``00000<suffix>``, ... by ``export.depth``),
    written beside it first and renamed into place (an existing empty ``folder`` is replaced)."""
    from .depth import write_depth

    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.ngp-partial-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, default_file_mode() | 0o111)
    try:
        for i, depth in enumerate(frames):
            write_depth(tmp / f"{i:05d}{suffix}", depth, {**info, "frame": i})
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
