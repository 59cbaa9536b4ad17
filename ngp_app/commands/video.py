"""``ngp video SNAPSHOT --out FILE``: render a camera path (orbit, training-camera tour or camera-path file)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import cli_args as types

log = logging.getLogger(__name__)


def register(subparsers: Any, options: Any) -> None:
    """Add ``video``'s parser to ``subparsers`` (``options.common``: --device/--backend/--quiet, as for the others)."""
    v = subparsers.add_parser("video", help="render a camera path of a snapshot to .mp4, .gif or PNG frames")
    v.add_argument("snapshot")
    v.add_argument("--out", required=True, help="video.mp4, video.gif, or a folder (PNG frames)")
    v.add_argument(
        "--path",
        default="orbit",
        help="orbit (around the scene; a sweep over the covered arc for captures that don't go all round), "
        "train (a tour of the training cameras), or a camera-path file: ours (the app's 'Save path'), "
        "instant-ngp's base_cam.json, nerfstudio's camera path export, or keyframes in transforms.json "
        "convention (auto-detected; docs/export.md)",
    )
    v.add_argument(
        "--frames",
        type=types.video_frames,
        default=None,
        help=f"number of frames, at most {types.MAX_VIDEO_FRAMES} (default: 120 for orbit/train, the path's "
        "duration x fps for a path file)",
    )
    v.add_argument(
        "--fps", type=types.fps, default=None, help="frames per second, 0.1..240 (default: the path file's, or 30)"
    )
    v.add_argument(
        "--seconds",
        type=types.positive_float,
        default=None,
        help="stretch a path file to this duration, keeping its keys' relative timing",
    )
    v.add_argument(
        "--dataparser-transforms",
        default=None,
        metavar="JSON",
        help="nerfstudio paths: the run's dataparser_transforms.json (default: one next to the path file)",
    )
    v.add_argument(
        "--width", type=types.video_side, default=None, help="default: the path file's, else 1920 on CUDA, 640 on CPU"
    )
    v.add_argument(
        "--height", type=types.video_side, default=None, help="default: the path file's, else 1080 on CUDA, 360 on CPU"
    )
    v.add_argument("--fov", type=types.fov, default=None, help="vertical field of view in degrees (orbit)")
    v.add_argument(
        "--radius", type=types.positive_float, default=None, help="orbit radius (default: the training cameras')"
    )
    v.add_argument("--elevation", type=types.elevation, default=None, help="orbit elevation in degrees (-89..89)")
    v.add_argument(
        "--loop", action="store_true", help="close a keyframe path back to its first key (a file may say so)"
    )
    v.add_argument("--mode", choices=["rgb", "depth", "normals"], default="rgb")
    v.add_argument("--background", type=types.background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    options.look(v)
    options.common(v)
    v.set_defaults(func=run)


@dataclass
class VideoPlan:
    """What ``ngp video`` renders: the frames' cameras, frame rate and size."""

    cameras: list[Any]
    fps: float
    width: int
    height: int


def plan_video(args: argparse.Namespace, scene_meta: dict[str, Any], device_type: str) -> VideoPlan:
    """Resolve --path/--frames/--fps/--seconds/--loop/--width/--height against the path file's own settings."""
    from ..errors import NgpError
    from ..export.camera_path import path_cameras
    from ..export.path_files import load_path, path_format

    width, height = (1920, 1080) if device_type == "cuda" else (640, 360)
    fps = 30.0
    check_options_apply(args)
    if args.path in ("orbit", "train"):
        cams = path_cameras(args.path, scene_meta, args.frames, args.loop, None, args.fov, args.radius, args.elevation)
    else:
        if not Path(args.path).is_file():
            raise NgpError(f"--path {args.path}: not orbit, train or an existing camera path file")
        # dense: a nerfstudio export renders its own frames, exactly
        if args.dataparser_transforms is not None and path_format(args.path) != "nerfstudio":
            raise NgpError(f"--dataparser-transforms applies to nerfstudio camera paths; {args.path} is not one")
        path = load_path(args.path, scene_meta, args.dataparser_transforms, dense=True)
        if args.loop and len(path.keys) > 1:
            path.set_loop(True)
        if args.seconds:
            path.set_duration(args.seconds)
        if args.fps:
            path.fps = args.fps
        if path.resolution is not None:
            width, height = path.resolution
        fps = path.fps
        cams = path.cameras(args.frames)
    return VideoPlan(cams, args.fps or fps, args.width or width, args.height or height)


ORBIT_OPTIONS = ("fov", "radius", "elevation")  # options only the orbit path reads
FILE_OPTIONS = ("seconds", "dataparser_transforms")  # options only a camera-path file reads


def check_options_apply(args: argparse.Namespace) -> None:
    """An option set for a path that does not read it is an error, not ignored."""
    from ..errors import NgpError

    kind = args.path if args.path in ("orbit", "train") else "file"
    unused = {
        "orbit": FILE_OPTIONS + ("loop",),  # an orbit always closes
        "train": FILE_OPTIONS + ORBIT_OPTIONS,
        "file": ORBIT_OPTIONS,
    }[kind]
    for name in unused:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            what = "an orbit (it always loops)" if name == "loop" else f"--path {args.path}"
            reads = "a camera-path file" if name in FILE_OPTIONS else "the orbit path"
            if name == "loop":
                raise NgpError(f"--loop does not apply to {what}")
            raise NgpError(f"--{name.replace('_', '-')} applies to {reads}, not to {what}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..export.video import check_output, check_video_target, export_video
    from ..limits import check_render_memory
    from ..train.run_files import load_run_snapshot
    from .options import with_look

    check_output(args.out)  # fail before anything else
    device = resolve_device(args.device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    nerf = with_look(snap.nerf, args.look)
    plan = plan_video(args, snap.scene, device.type)  # a path file may set the size and frame count
    check_video_target(args.out, len(plan.cameras), plan.width, plan.height)
    check_render_memory(plan.width, plan.height, device, "rendering frames of")
    log.info(
        "rendering %d frames of %dx%d at %g fps on %s (%s path)",
        len(plan.cameras),
        plan.width,
        plan.height,
        plan.fps,
        device,
        args.path,
    )
    bar = tqdm(total=len(plan.cameras), unit="frame", desc="video", dynamic_ncols=True, disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        path = export_video(
            nerf,
            plan.cameras,
            args.out,
            plan.width,
            plan.height,
            plan.fps,
            args.background,
            args.mode,
            progress,
        )
    finally:
        bar.close()
    print(str(path))
    return 0
