"""Render a camera path of a trained model into a video (mp4 through ffmpeg, gif) or a folder of PNG frames.

Files are written to a temporary name next to the target and renamed when complete, so an interrupted export
never leaves a truncated video under the requested name. A frames folder gets a marker file (``.ngp-video``, listing
its frames); an existing folder is replaced only when it holds that marker and nothing but the frames it lists (or
is empty), and only after the new frames are all written. A video file gets a marker beside it
(``.<name>.ngp-video``, the digest of what was written); an existing file is replaced only when its digest is there.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data.cameras import Camera
from ..errors import NgpError
from ..fileio import atomic_write_text, default_file_mode
from ..nerf_model import NerfModel
from ..outputs import disk_full_error
from .camera_path import PathCamera

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".gif")
MODES = ("rgb", "depth", "normals")
#: The file that marks a frames folder as written by this program (JSON: ``{"written_by", "frames"}``).
FRAMES_MARKER = ".ngp-video"


def frames_folder_problem(folder: Path) -> str | None:
    """Why the existing ``folder`` must not be replaced by a frames export (None: it is empty, or holds exactly what
    an earlier export wrote, by its marker file; file names are never taken as proof)."""
    try:
        entries = set(os.listdir(folder))
    except OSError as exc:
        return f"{folder}: cannot read the folder ({exc.strerror or exc})"
    if not entries:
        return None
    try:
        listed = json.loads((folder / FRAMES_MARKER).read_text(encoding="utf-8"))["frames"]
        ours = {str(name) for name in listed} | {FRAMES_MARKER}
    except (OSError, ValueError, KeyError, TypeError):
        return (
            f"{folder}: exists and was not written by ngp video (no valid {FRAMES_MARKER} inside); not replacing "
            f"it: choose a new or empty folder"
        )
    others = sorted(entries - ours)
    if others:
        return (
            f"{folder}: holds {others[0]}, which ngp video did not write; not replacing the folder: move it "
            f"or choose another folder"
        )
    return None


def video_marker(target: Path) -> Path:
    """The file beside a video this program wrote that says so: ``.<name>.ngp-video`` (JSON: ``written_by`` and
    ``sha256``, the digests of the contents it counts as its own)."""
    return target.with_name(f".{target.name}{FRAMES_MARKER}")


def _digest(path: Path) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def video_file_problem(target: Path) -> str | None:
    """Why the existing file ``target`` must not be replaced by a video export (None: it does not exist, or it is
    byte for byte what an earlier export wrote, by the marker beside it; its name is never taken as proof)."""
    if not target.exists() and not target.is_symlink():
        return None
    if target.is_symlink() or not target.is_file():
        return f"{target}: exists and is not a plain file; not replacing it: choose another name"
    marker = video_marker(target)
    try:
        digests = json.loads(marker.read_text(encoding="utf-8"))["sha256"]
        if not isinstance(digests, list):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return (
            f"{target}: exists and was not written by ngp video (no valid {marker.name} beside it); not replacing "
            f"it: choose another name or move it"
        )
    try:
        ours = _digest(target) in digests
    except OSError as exc:
        return f"{target}: cannot read the file ({exc.strerror or exc}); not replacing it"
    if not ours:
        return f"{target}: has changed since ngp video wrote it; not replacing it: choose another name or move it"
    return None


def check_output(path: str | Path) -> str:
    """The kind of output ``path`` asks for: ``mp4``, ``gif`` or ``frames`` (a folder); raises NgpError early (before
    any rendering) when it can't be written."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise NgpError(
                "writing mp4 needs imageio-ffmpeg: pip install 'ngp-app[video]' (or write .gif / a folder)"
            ) from None
        kind = "mp4"
    elif suffix == ".gif":
        kind = "gif"
    elif suffix == "":
        kind = "frames"
    else:
        raise NgpError(f"{p}: unsupported video format {suffix!r} (use .mp4, .gif, or a folder for PNG frames)")
    if p.parent.exists() and not p.parent.is_dir():
        raise NgpError(f"{p.parent}: not a folder")
    if kind == "frames" and p.exists():
        problem = f"{p}: exists and is not a folder; not overwriting it" if not p.is_dir() else frames_folder_problem(p)
        if problem:
            raise NgpError(problem)
    if kind != "frames" and p.is_dir():
        raise NgpError(f"{p}: is a folder")
    if kind != "frames":
        problem = video_file_problem(p)
        if problem:
            raise NgpError(problem)
    return kind


def check_video_target(path: str | Path, n_frames: int, width: int, height: int, kept_frames: bool = False) -> str:
    """``check_output`` plus the checks every output gets before any work (``outputs``): a writable place and
    free space for ``n_frames`` frames of ``width`` x ``height`` (PNG frames up to 3 bytes a pixel, a gif 1, an mp4
    far less; ``kept_frames``: plus the PNG frames a resumable render keeps). Returns the kind; ``ngp video`` and
    the app's video export call it."""
    from ..outputs import check_output_dir, check_output_file

    kind = check_output(path)
    per_pixel = {"frames": 3, "gif": 1}.get(kind, 0.2) + (3 if kept_frames else 0)
    expected = int(n_frames * width * height * per_pixel)
    if kind == "frames":
        check_output_dir(path, expected, contents="the PNG frames")
    else:
        check_output_file(path, None, expected, "video")
    return kind


def path_camera(cam: PathCamera, width: int, height: int) -> Camera:
    """A pinhole camera of ``width`` x ``height`` from a path camera (square pixels, centred principal point)."""
    fy = 0.5 * height / math.tan(0.5 * math.radians(cam.fov_y_deg))
    return Camera(torch.tensor(cam.c2w, dtype=torch.float32), fy, fy, width / 2.0, height / 2.0, width, height)


class FrameRenderer:
    """Frame ``i`` of ``nerf`` along ``cameras`` as a (height, width, 3) uint8 picture, for any ``i`` in any order:
    ``depth`` uses the first frame's range for the whole path (so it does not flicker; rendered once when needed);
    ``spp`` jittered samples per pixel (``render.supersample``)."""

    def __init__(
        self,
        nerf: NerfModel,
        cameras: Sequence[PathCamera],
        width: int,
        height: int,
        background: tuple[float, float, float] = (1.0, 1.0, 1.0),
        mode: str = "rgb",
        spp: int = 1,
        depth: DepthFrames | None = None,
        camera_model: str = "pinhole",
    ) -> None:
        from ..render.pictures import shaded_field

        if mode not in MODES:
            raise NgpError(f"unknown video mode {mode!r} (choose from {', '.join(MODES)})")
        field, self.background = shaded_field(nerf.field, mode, background)
        self.nerf, self.shaded = nerf, nerf.with_field(field)
        self.cameras, self.width, self.height, self.mode, self.spp = cameras, width, height, mode, spp
        self.depth, self.camera_model = depth, camera_model
        self.near_far: tuple[float, float] | None = None

    def key(self) -> str:
        """What the frames depend on, as a digest (``frame_cache.render_key``): a rerun with the same key may reuse
        frames rendered before."""
        from .frame_cache import render_key

        depth = None if self.depth is None else [self.depth.kind, self.depth.scale]
        settings = {
            "size": [self.width, self.height],
            "mode": self.mode,
            "background": [float(c) for c in self.background],
            "spp": self.spp,
            "camera_model": self.camera_model,
            "depth": depth,
        }
        return render_key(self.nerf, self.cameras, settings)

    def _camera(self, i: int) -> Camera:
        camera = path_camera(self.cameras[i], self.width, self.height)
        return camera.panorama() if self.camera_model == "equirectangular" else camera

    def __call__(self, i: int, chunk: Callable[[int, int], None] | None = None) -> Any:
        """Frame ``i``; ``chunk(done, total)`` after each render pass. With ``depth``: (picture, metric depth)."""
        from ..render.pictures import FLOAT_MODES, depth_range, picture

        camera = self._camera(i)
        if self.mode not in FLOAT_MODES:  # colours (or normals) rendered straight into uint8
            out = self.shaded.render_rgba(
                camera, self.background, spp=self.spp, progress=chunk, floats=self.depth is not None
            )
            pixels = out["rgba"][..., :3].cpu().numpy()
        else:
            out = self.shaded.render(camera, self.background, spp=self.spp, progress=chunk)
            if self.near_far is None:
                first = out if i == 0 else self.shaded.render(self._camera(0), self.background, spp=self.spp)
                self.near_far = depth_range(first["depth"], first["opacity"])
            pixels = picture(self.mode, out, self.near_far)
        return pixels if self.depth is None else (pixels, self.depth.of(out, camera))


class DepthFrames:
    """Each frame's metric depth (``export.depth``): computed with the frame, kept with it (``frame_cache``) and
    written into a folder, one file a frame (``00000.exr`` ...), once the video is written (by rank 0 under
    ``torchrun``)."""

    def __init__(self, folder: str | Path, fmt: str, kind: str, scale: float) -> None:
        self.folder, self.fmt, self.kind, self.scale = Path(folder), fmt, kind, scale

    def of(self, out: dict[str, Any], camera: Camera) -> np.ndarray:
        from .depth import metric_depth

        return metric_depth(out, camera, self.scale, self.kind)

    def write(self, depths: Iterable[np.ndarray]) -> Path:
        """Write ``depths`` (frame order) into the folder (``frame_cache.write_depth_folder``)."""
        from .frame_cache import write_depth_folder

        return write_depth_folder(depths, self.folder, self.fmt, {"kind": self.kind, "units": "scene"})


def check_depth_folder(folder: str | Path, fmt: str) -> str:
    """Before any work: a depth format we can write (``exr``, ``npy``, ``png``) and a new or empty folder."""
    from ..outputs import check_output_dir
    from .depth import depth_format

    suffix = depth_format(f"depth.{fmt}")
    p = check_output_dir(folder, 0, "--depth-out", "one depth file a frame")
    if p.is_dir() and any(p.iterdir()):
        raise NgpError(f"{p}: is not empty; --depth-out needs a new or empty folder (nothing in it is replaced)")
    return suffix


def render_frames(
    render: FrameRenderer,
    indices: Sequence[int],
    fraction: Callable[[float], None] | None = None,
) -> Iterator[Any]:
    """Yield ``render``'s frames ``indices`` in that order; ``fraction(f)`` after each render pass with the share of
    the whole path done, counting the frames before ``indices[k]`` as done (it may raise to stop: a long frame can
    be cancelled part-way)."""
    n = len(render.cameras)
    for i in indices:
        chunk = None if fraction is None else (lambda done, total, i=i: fraction((i + done / max(total, 1)) / n))
        yield render(i, chunk)


def ticked(frames: Iterable[Any], n: int, progress: Callable[[int, int], None] | None) -> Iterator[Any]:
    """``frames``, calling ``progress(done, n)`` after each (it may raise to stop)."""
    for done, frame in enumerate(frames, 1):
        yield frame
        if progress is not None:
            progress(done, n)


def write_video(frames, path: str | Path, fps: float = 30.0, quality: int = 8, spherical: bool = False) -> Path:
    """Write an iterable of (h, w, 3) uint8 frames to ``path`` (.mp4, .gif, or a folder of PNGs) atomically;
    ``spherical``: the frames are equirectangular panoramas (an mp4 says so in its metadata)."""

    p = Path(path)
    kind = check_output(p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=p.parent)
    except OSError as exc:  # fail before rendering, naming the file asked for
        raise OSError(exc.errno, exc.strerror, str(p)) from None
    os.close(probe[0])
    os.unlink(probe[1])
    remove_dead_partials(p)
    try:
        return _write(frames, p, kind, fps, quality, spherical)
    except (OSError, RuntimeError, ValueError) as exc:  # ffmpeg and imageio report a full disk in their own ways
        full = disk_full_error(p, exc, "the frames" if kind == "frames" else f"the {kind}")
        if full is not None:
            raise full from None
        raise


def _write(frames, p: Path, kind: str, fps: float, quality: int, spherical: bool = False) -> Path:
    """``write_video``'s work once the target is checked: frames to a partial file or folder, then the swap."""
    import imageio.v2 as iio2
    import imageio.v3 as iio

    if kind == "frames":
        tmp_dir = Path(tempfile.mkdtemp(prefix=partial_prefix(p), dir=p.parent))
        os.chmod(tmp_dir, default_file_mode() | 0o111)  # a folder: searchable like a plain mkdir's
        try:
            names = []
            for n, frame in enumerate(frames):
                names.append(f"{n:05d}.png")
                iio.imwrite(tmp_dir / names[-1], frame)
            (tmp_dir / FRAMES_MARKER).write_text(
                json.dumps({"written_by": "ngp video", "frames": names}) + "\n", encoding="utf-8"
            )
            _replace_folder(tmp_dir, p)
        finally:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir, ignore_errors=True)
        return p
    fd, tmp_name = tempfile.mkstemp(prefix=partial_prefix(p), suffix=p.suffix, dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, default_file_mode())
    try:
        if kind == "mp4":
            writer = iio2.get_writer(
                tmp,
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                quality=quality,
                pixelformat="yuv420p",
                macro_block_size=2,
                ffmpeg_log_level="error",
            )
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
            if spherical:
                from .spherical import with_spherical_metadata

                tmp.write_bytes(with_spherical_metadata(tmp.read_bytes()))
        else:
            images = list(frames)
            if not images:
                raise NgpError("no frames to write")
            # encoded in memory, then written as plain bytes: a full disk is one clean OSError (Pillow's writer
            # retries its flush when collected and prints the failure again)
            data = iio.imwrite("<bytes>", np.stack(images), extension=".gif", duration=1000.0 / fps, loop=0)
            tmp.write_bytes(data)
        _replace_file(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


PARTIAL = "ngp-partial"  # in the names of the files and folders an export writes before it is complete


def partial_prefix(target: Path) -> str:
    """Name prefix of an unfinished export to ``target``: hidden, marked as ours, with the writer's process id (so
    a later export can tell the leftovers of a killed one from another export still running)."""
    return f".{target.name}.{PARTIAL}-{os.getpid()}-"


def remove_dead_partials(target: Path) -> list[Path]:
    """Remove what exports to ``target`` left behind when they were killed (their process is gone); returns them.
    Only names ``partial_prefix`` makes are touched."""
    removed = []
    for entry in target.parent.glob(f".{glob.escape(target.name)}.{PARTIAL}-*-*"):
        pid_text = entry.name[len(f".{target.name}.{PARTIAL}-") :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        log.info("removed %s, left by an export that was killed", entry)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``; an existing ``target`` (checked again now: it may have changed
    since the export began) is moved aside first and deleted only once ``new`` is in its place."""
    if not target.exists():
        os.replace(new, target)
        return
    problem = frames_folder_problem(target)
    if problem:
        raise NgpError(problem)
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _replace_file(new: Path, target: Path) -> None:
    """Put the complete video ``new`` at ``target``, marked as ours; an existing ``target`` is checked again (it may
    have changed since the export began). While the rename happens the marker accepts the old and the new digest,
    so a kill at any point leaves a file the next export may replace."""
    problem = video_file_problem(target)
    if problem:
        raise NgpError(problem)
    old = [_digest(target)] if target.exists() else []
    new_digest = _digest(new)
    marker = video_marker(target)
    atomic_write_text(marker, json.dumps({"written_by": "ngp video", "sha256": old + [new_digest]}) + "\n")
    os.replace(new, target)
    atomic_write_text(marker, json.dumps({"written_by": "ngp video", "sha256": [new_digest]}) + "\n")


def even_size(width: int, height: int, kind: str) -> tuple[int, int]:
    """H.264 with 4:2:0 chroma needs even sizes: round odd ones up for mp4 (logged)."""
    if kind != "mp4" or (width % 2 == 0 and height % 2 == 0):
        return width, height
    w, h = width + width % 2, height + height % 2
    log.warning("mp4 needs even frame sizes: rendering %dx%d instead of %dx%d", w, h, width, height)
    return w, h


def export_video(
    nerf: NerfModel,
    cameras: Sequence[PathCamera],
    out: str | Path,
    width: int,
    height: int,
    fps: float = 30.0,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    mode: str = "rgb",
    progress: Callable[[int, int], None] | None = None,
    quality: int = 8,
    fraction: Callable[[float], None] | None = None,
    spp: int = 1,
    camera_model: str = "pinhole",
    resume: bool = False,
    reused: Callable[[int], None] | None = None,
) -> Path:
    """Render ``nerf`` along ``cameras`` and write them to ``out`` (``quality``: the mp4 encoder's, 1..10;
    ``progress(done, total)`` after each frame, ``fraction`` as ``render_frames``; ``spp`` samples per pixel);
    returns the written path. ``resume``: finished frames are kept (``frame_cache``) when it stops, and a later call
    with the same model and settings renders only the others (``reused(k)`` is told how many frames it found kept);
    without it nothing is left behind when it raises."""
    kind = check_output(out)
    if not cameras:
        raise NgpError("the camera path has no frames")
    width, height = even_size(width, height, kind)
    render = FrameRenderer(nerf, cameras, width, height, background, mode, spp, camera_model=camera_model)
    spherical, n = camera_model == "equirectangular", len(cameras)
    if not resume:
        frames = ticked(render_frames(render, range(n), fraction), n, progress)
        return write_frames(frames, n, out, width, height, fps, quality, spherical)
    from .frame_cache import FrameCache

    with FrameCache(out, render.key(), n, width, height) as cache:
        if cache.done and reused is not None:
            reused(len(cache.done))
        with kept_on_failure(cache):
            frames = cache.merged(render_frames(render, cache.todo(), fraction), with_depth=False)
            path = write_frames(ticked(frames, n, progress), n, out, width, height, fps, quality, spherical)
    return path


@contextlib.contextmanager
def kept_on_failure(cache: Any) -> Iterator[None]:
    """Around the writing of a resumable render: when it stops, say how many frames are kept for a rerun (or
    remove the folder when none are); when it ends, remove the folder (the output is written)."""
    try:
        yield
    except BaseException:
        kept = cache.kept()
        if kept:
            log.warning(
                "kept %d of %d finished frames in %s: the same render again resumes from them",
                kept,
                cache.n,
                cache.folder,
            )
        else:
            cache.remove()
        raise
    cache.remove()


def write_frames(
    frames: Iterable[np.ndarray],
    n: int,
    out: str | Path,
    width: int,
    height: int,
    fps: float,
    quality: int = 8,
    spherical: bool = False,
) -> Path:
    """``write_video`` of ``n`` frames of ``width`` x ``height`` that are rendered as they are drawn (by
    ``render_frames``, or gathered from several ranks), with the time it took logged."""
    t = time.perf_counter()
    path = write_video(frames, out, fps, quality, spherical)
    log.info("wrote %d frames of %dx%d to %s in %.1f s", n, width, height, path, time.perf_counter() - t)
    return path
