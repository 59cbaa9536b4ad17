"""Option groups several commands share (device/backend/quiet, image size on load) and the default scene."""

from __future__ import annotations

import argparse
from typing import Any

from .. import cli_args as types
from .. import resources

DEFAULT_SCENE = resources.demo_scene()


def common(sp: argparse.ArgumentParser) -> None:
    """``--device``, ``--backend`` (not for ``train``, which declares its own) and ``--quiet``."""
    sp.add_argument("--device", type=types.device, default=None, help="cpu or cuda (default: cuda when available)")
    if sp.prog.split()[-1] != "train":
        sp.add_argument("--backend", default="auto", help="auto | torch | native | tcnn")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def scene(sp: argparse.ArgumentParser) -> None:
    """``--downscale`` and ``--max-size``: the size training images load at."""
    sp.add_argument("--downscale", type=types.positive_int, default=1, help="shrink images by this factor")
    sp.add_argument(
        "--max-size", type=types.positive_int, default=None, help="shrink so the longer image side is at most this"
    )


def look(sp: argparse.ArgumentParser) -> None:
    """``--look FRAME``: render with a training frame's appearance instead of the default look."""
    sp.add_argument(
        "--look",
        type=types.int_in(0),
        default=None,
        metavar="FRAME",
        help="render with training frame FRAME's look (its appearance code and exposure; models trained with "
        "per-image appearance); default: the mean look, no exposure change",
    )


def spp(sp: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--spp N``: jittered sub-pixel rays per pixel, averaged (sharp final renders; 1 for previews)."""
    sp.add_argument(
        "--spp",
        type=types.int_in(1, types.MAX_SPP),
        default=default,
        help=f"samples per pixel, 1..{types.MAX_SPP}: jittered sub-pixel rays averaged, for sharp edges and fine "
        "texture (instant-ngp's --video_spp; time grows with it; default 1)",
    )


def camera_model(sp: argparse.ArgumentParser, default: str | None = "pinhole") -> None:
    """``--camera-model pinhole|equirectangular``: a perspective picture or a 360-degree panorama (2:1 frames)."""
    sp.add_argument(
        "--camera-model",
        choices=["pinhole", "equirectangular"],
        default=default,
        help="equirectangular: a 360 x 180 degree panorama from the camera's place (width = 2 x height; mp4s get "
        "the spherical-video metadata players need); default: pinhole",
    )


def check_panorama_size(model: str | None, width: int, height: int) -> None:
    """An equirectangular picture is twice as wide as it is high; anything else is a one-line error."""
    from ..errors import NgpError

    if model == "equirectangular" and width != 2 * height:
        raise NgpError(f"--camera-model equirectangular needs a 2:1 size (width = 2 x height), got {width}x{height}")


def depth_out(sp: argparse.ArgumentParser, what: str) -> None:
    """``--depth-out`` (``what``: where the depth goes) and ``--depth-kind ray|z``: metric depth beside the picture."""
    sp.add_argument(
        "--depth-out",
        default=None,
        metavar="PATH",
        help=f"also write the depth in the scene's units to {what}: .exr (32-bit float), .npy, or .png (16-bit, "
        "its scale in a .json beside it); 0 where nothing is hit (docs/export.md)",
    )
    depth_kind(sp)


def depth_kind(sp: argparse.ArgumentParser) -> None:
    """``--depth-kind ray|z`` for commands that write metric depth."""
    sp.add_argument(
        "--depth-kind",
        choices=["ray", "z"],
        default="ray",
        help="ray: distance from the camera along the ray; z: along the camera's viewing axis (default: ray)",
    )


def with_look(nerf: Any, frame: int | None) -> Any:
    """``nerf`` (a ``NerfModel``) with ``--look FRAME`` applied; a frame it cannot show is a one-line error."""
    from ..errors import NgpError

    try:
        return nerf.with_look(frame)
    except ValueError as exc:
        raise NgpError(f"--look {frame}: {exc}") from None
