"""``ngp video SNAPSHOT --out FILE``: render a camera path (orbit, training-camera tour or keyframe file)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from .. import cli_args as types


log = logging.getLogger(__name__)


def add_parser(subparsers: Any, common: Any) -> None:
    """Register ``video`` (``common`` adds --device/--backend/--quiet, as for the other commands)."""
    v = subparsers.add_parser("video", help="render a camera path of a snapshot to .mp4, .gif or PNG frames")
    v.add_argument("snapshot")
    v.add_argument("--out", required=True, help="video.mp4, video.gif, or a folder (PNG frames)")
    v.add_argument("--path", default="orbit",
                   help="orbit (around the scene; a sweep over the covered arc for captures that don't go all round), train (a tour of the training cameras), or a keyframe JSON file "
                        "in transforms.json convention (the app's 'Save path' writes one)")
    v.add_argument("--frames", type=types.positive_int, default=120)
    v.add_argument("--fps", type=types.fps, default=30.0, help="frames per second (0.1..240)")
    v.add_argument("--width", type=types.video_side, default=None, help="default: 1920 on CUDA, 640 on CPU")
    v.add_argument("--height", type=types.video_side, default=None, help="default: 1080 on CUDA, 360 on CPU")
    v.add_argument("--fov", type=types.fov, default=None, help="vertical field of view in degrees (orbit)")
    v.add_argument("--radius", type=types.positive_float, default=None, help="orbit radius (default: the training cameras')")
    v.add_argument("--elevation", type=types.elevation, default=None, help="orbit elevation in degrees (-89..89)")
    v.add_argument("--loop", action="store_true", help="close a keyframe path back to its first key")
    v.add_argument("--mode", choices=["rgb", "depth", "normals"], default="rgb")
    v.add_argument("--background", type=types.background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    common(v)
    v.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..limits import check_render_memory
    from ..outputs import check_output_dir, check_output_file
    from ..snapshot import load_snapshot
    from .camera_path import path_cameras
    from .video import check_output, export_video

    kind = check_output(args.out)  # fail before loading anything
    device = resolve_device(args.device)
    width = args.width or (1920 if device.type == "cuda" else 640)
    height = args.height or (1080 if device.type == "cuda" else 360)
    # free space: PNG frames up to 3 bytes a pixel, a gif 1, an mp4 far less
    expected = args.frames * width * height * {"frames": 3, "gif": 1}.get(kind, 0.2)
    if kind == "frames":
        check_output_dir(args.out, int(expected), contents="the PNG frames")
    else:
        check_output_file(args.out, None, int(expected), "video")
    check_render_memory(width, height, device, "rendering frames of")
    snap = load_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
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
