"""``ngp video SNAPSHOT --out FILE``: render a camera path (orbit, training-camera tour or keyframe file)."""

from __future__ import annotations

import argparse
import logging
from typing import Any


log = logging.getLogger(__name__)


def _size(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 16384:
        raise argparse.ArgumentTypeError(f"must be in 2..16384, got {value}")
    return value


def _elevation(text: str) -> float:
    value = float(text)
    if not -89.0 <= value <= 89.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in -89..89 degrees, got {text}")
    return value


def add_parser(subparsers: Any, common: Any, background: Any, positive_int: Any, positive_float: Any) -> None:
    """Register ``video`` (``common`` adds --device/--backend/--quiet, as for the other commands)."""
    v = subparsers.add_parser("video", help="render a camera path of a snapshot to .mp4, .gif or PNG frames")
    v.add_argument("snapshot")
    v.add_argument("--out", required=True, help="video.mp4, video.gif, or a folder (PNG frames)")
    v.add_argument("--path", default="orbit",
                   help="orbit (around the scene; a sweep over the covered arc for captures that don't go all round), train (a tour of the training cameras), or a keyframe JSON file "
                        "in transforms.json convention (the app's 'Save path' writes one)")
    v.add_argument("--frames", type=positive_int, default=120)
    v.add_argument("--fps", type=positive_float, default=30.0)
    v.add_argument("--width", type=_size, default=None, help="default: 1920 on CUDA, 640 on CPU")
    v.add_argument("--height", type=_size, default=None, help="default: 1080 on CUDA, 360 on CPU")
    v.add_argument("--fov", type=positive_float, default=None, help="vertical field of view in degrees (orbit)")
    v.add_argument("--radius", type=positive_float, default=None, help="orbit radius (default: the training cameras')")
    v.add_argument("--elevation", type=_elevation, default=None, help="orbit elevation in degrees (-89..89)")
    v.add_argument("--loop", action="store_true", help="close a keyframe path back to its first key")
    v.add_argument("--mode", choices=["rgb", "depth", "normals"], default="rgb")
    v.add_argument("--background", type=background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    common(v)
    v.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..snapshot import load_snapshot
    from .camera_path import path_cameras
    from .video import check_output, export_video

    check_output(args.out)  # fail before loading anything
    device = resolve_device(args.device)
    snap = load_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    width = args.width or (1920 if device.type == "cuda" else 640)
    height = args.height or (1080 if device.type == "cuda" else 360)
    cams = path_cameras(args.path, snap.scene, args.frames, args.loop, None, args.fov, args.radius, args.elevation)
    log.info("rendering %d frames of %dx%d on %s (%s path)", len(cams), width, height, device, args.path)
    bar = tqdm(total=len(cams), unit="frame", desc="video", dynamic_ncols=True, disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        path = export_video(snap.model, snap.grid, snap.march, snap.model.aabb, cams, args.out, width, height,
                            args.fps, args.background, args.mode, progress)
    finally:
        bar.close()
    print(str(path))
    return 0
