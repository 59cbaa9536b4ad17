"""Frames from a video: N evenly spaced windows over the clip, the sharpest frame of each (variance of the
Laplacian, so motion-blurred frames are dropped), written as full-resolution JPEGs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import ImportFailed, NgpError
from .progress import Reporter

log = logging.getLogger(__name__)

#: Sharpness is measured on a copy shrunk (by an integer factor) to at most this many pixels on its longer side,
#: so sensor noise counts less and long 4K clips stay quick.
SHARPNESS_SIZE = 640
JPEG_QUALITY = 95


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the luminance of ``rgb`` (H, W, 3) uint8: high for crisp, low for blurred."""
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    k = max(1, int(np.ceil(max(grey.shape) / SHARPNESS_SIZE)))
    if k > 1:
        h, w = grey.shape[0] // k * k, grey.shape[1] // k * k
        grey = grey[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    lap = 4.0 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var()) if lap.size else 0.0


def _ffmpeg():  # type: ignore[no-untyped-def]
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportFailed("reading videos needs imageio-ffmpeg: pip install 'ngp-app[video]'") from None
    return imageio_ffmpeg


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def count_frames(path: Path) -> int:
    """Frames in the video (from ffmpeg's stream copy; raises ImportFailed for an unreadable file)."""
    ffmpeg = _ffmpeg()
    try:
        n, _ = ffmpeg.count_frames_and_secs(str(path))
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError/IOError with ffmpeg's output
        raise ImportFailed(f"{path}: cannot read the video ({_reason(exc)})") from None
    if n <= 0:
        raise ImportFailed(f"{path}: the video has no frames")
    return int(n)


def window_of(index: int, total: int, n_windows: int) -> int:
    """The window (0..n_windows-1) frame ``index`` of ``total`` falls in; windows split the clip evenly."""
    return min(n_windows - 1, index * n_windows // max(total, 1))


def extract_frames(
    path: Path, dest: Path, n_frames: int, report: Reporter, total: int | None = None
) -> list[tuple[str, float]]:
    """Write the sharpest frame of each of ``n_frames`` even windows of the video to ``dest`` as
    frame_00001.jpg, ... (names sort in time order). ``total``: its frame count, when already known.
    Returns (name, sharpness) per written frame."""
    import imageio.v3 as iio

    ffmpeg = _ffmpeg()
    total = total or count_frames(path)
    n_windows = min(n_frames, total)
    if n_windows < n_frames:
        log.warning("%s has only %d frames; using all of them", path, total)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, float]] = []
    best: tuple[float, np.ndarray | None] = (-1.0, None)
    window = 0
    reader = None

    def flush() -> None:
        score, frame = best
        if frame is None:
            return
        name = f"frame_{len(written) + 1:05d}.jpg"
        iio.imwrite(dest / name, frame, extension=".jpg", quality=JPEG_QUALITY)
        written.append((name, score))

    try:
        reader = ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        for index, raw in enumerate(reader):
            report.check()
            w = window_of(index, total, n_windows)
            if w != window:
                flush()
                best, window = (-1.0, None), w
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            score = sharpness(frame)
            if score > best[0]:
                best = (score, frame.copy())
            report("images", min(index + 1, total) / total, f"frame {index + 1}/{total}")
        flush()
    except NgpError:  # cancelled
        raise
    except Exception as exc:  # a truncated or corrupt stream
        if not written and best[1] is None:
            raise ImportFailed(f"{path}: cannot read the video ({_reason(exc)})") from None
        log.warning(
            "%s: stopped reading at a damaged frame (%s); keeping %d frames",
            path,
            _reason(exc),
            len(written) + (best[1] is not None),
        )
        flush()
    finally:
        if reader is not None:
            reader.close()
    if not written:
        raise ImportFailed(f"{path}: no frames could be decoded")
    return written
