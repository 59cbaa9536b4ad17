"""Command-line argument types and the parser class of ``ngp``: every value is type- and range-checked while the
arguments are parsed, and every usage error ends as one ``ngp: error:`` line with exit status 2.

Types raise :class:`argparse.ArgumentTypeError` with a message that says what was expected and what was given;
:class:`NgpArgumentParser` turns argparse's own usage errors into the same one-line form.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Callable, NoReturn

MAX_IMAGE_SIDE = 16384  # pixels per side of any rendered image or video frame
MAX_SEED = 2**63 - 1
MAX_THREADS = 4096
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d{1,3})?)$")


class NgpArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``ngp: error: <message> (see <prog> --help)``, exit 2.
    Subparsers inherit the class (argparse creates them with ``type(parent)``)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # one line whatever argparse put in it
        sys.stderr.write(f"ngp: error: {message} (see {self.prog} --help)\n")
        self.exit(2)


def _bad(expected: str, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def _parse_int(text: str, expected: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _bad(expected, text) from None


def _parse_float(text: str, expected: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise _bad(expected, text) from None
    if not math.isfinite(value):
        raise _bad(expected, text)
    return value


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``lo..hi`` (no upper bound when ``hi`` is None)."""
    expected = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"

    def parse(text: str) -> int:
        value = _parse_int(text, expected)
        if value < lo or (hi is not None and value > hi):
            raise _bad(expected, text)
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``lo..hi`` (``lo`` excluded when ``lo_open``)."""
    if hi is not None and not lo_open:
        expected = f"a number in {lo:g}..{hi:g}"
    else:
        expected = f"a number {'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")

    def parse(text: str) -> float:
        value = _parse_float(text, expected)
        if (value <= lo if lo_open else value < lo) or (hi is not None and value > hi):
            raise _bad(expected, text)
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_in(1)
positive_float = float_in(0.0, lo_open=True)
image_side = int_in(1, MAX_IMAGE_SIDE)
seed = int_in(0, MAX_SEED)
threads = int_in(1, MAX_THREADS)


def finite_float(text: str) -> float:
    """An argparse type: any finite number (no nan, no inf)."""
    return _parse_float(text, "a finite number")


def device(text: str) -> str:
    """An argparse type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. Whether CUDA exists is checked when the device
    is resolved (``backends.resolve_device``), with the same one-line error."""
    value = text.strip().lower()
    if not _DEVICE.match(value):
        raise _bad("cpu, cuda or cuda:N", text)
    return value


def device_list(text: str) -> list[str]:
    """An argparse type: comma-separated devices (``cpu,cuda``)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise _bad("comma-separated devices such as cpu,cuda", text)
    return [device(item) for item in items]


def minutes_list(text: str) -> list[float]:
    """An argparse type: comma-separated positive numbers of minutes (``1,2,5``), at most a week each."""
    expected = "comma-separated minutes such as 1,2,5 (each > 0 and <= 10080)"
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise _bad(expected, text)
    values = [_parse_float(item, expected) for item in items]
    if any(not 0 < v <= 10080 for v in values):
        raise _bad(expected, text)
    return values


def window_size(text: str) -> tuple[int, int]:
    """An argparse type: ``WIDTHxHEIGHT`` with each side in 16..MAX_IMAGE_SIDE."""
    expected = f"WIDTHxHEIGHT such as 1920x1080 (each side 16..{MAX_IMAGE_SIDE})"
    parts = text.lower().split("x")
    if len(parts) != 2:
        raise _bad(expected, text)
    w, h = (_parse_int(p, expected) for p in parts)
    if not (16 <= w <= MAX_IMAGE_SIDE and 16 <= h <= MAX_IMAGE_SIDE):
        raise _bad(expected, text)
    return w, h


def background(text: str) -> tuple[float, float, float]:
    """An argparse type: ``white``, ``black`` or ``R,G,B`` with each channel in [0, 1]."""
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    if text in named:
        return named[text]
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(0.0 <= v <= 1.0 for v in parts):
        raise _bad("white, black or R,G,B in [0, 1]", text)
    return parts  # type: ignore[return-value]


MIN_FPS, MAX_FPS = 0.1, 240.0  # --fps, and the fps a camera-path file may say (schema/camera_path.py)
MAX_VIDEO_FRAMES = 100_000  # ~55 minutes at 30 fps: more is a typo, and would take days to render
MAX_SPP = 1024  # samples per pixel of a final render (render/supersample.py)
video_side = int_in(2, MAX_IMAGE_SIDE)
video_frames = int_in(1, MAX_VIDEO_FRAMES)
fps = float_in(MIN_FPS, MAX_FPS)
fov = float_in(0.0, 179.0, lo_open=True)
elevation = float_in(-89.0, 89.0)


AABB_SCALES = tuple(2**k for k in range(8))  # instant-ngp's: a power of two, 1 (an object) to 128 (outdoors)


def aabb_scale(text: str) -> int:
    """``--aabb-scale``: a power of two from 1 to 128 (the scene box's side in ngp units, as instant-ngp's)."""
    value = _parse_int(text, "a power of two from 1 to 128")
    if value not in AABB_SCALES:
        raise _bad("a power of two from 1 to 128", text)
    return value
