"""``ngp video SNAPSHOT --out FILE``: render a camera path (orbit, training-camera tour or camera-path file)."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import cli_args as types

log = logging.getLogger(__name__)


def register(subparsers: Any, options: Any) -> None:
    """Add ``video``'s parser to ``subparsers`` (``options.common``: --device/--backend/--quiet, as for the others)."""
    v = subparsers.add_parser("video", help="render a camera path of a snapshot to .mp4, .gif or PNG frames")
    v.add_argument("snapshot", nargs="?", help="the snapshot (optional with --job when the job names one)")
    v.add_argument(
        "--out",
        default=None,
        help="video.mp4, video.gif, or a folder (PNG frames); finished frames are kept beside it (.NAME.ngp-frames) "
        "until it is written, so the same command again after an interruption resumes",
    )
    v.add_argument(
        "--job",
        default=None,
        metavar="JOB.json",
        help="render the job this file describes (written by --write-job; docs/scaling.md); options given as well "
        "fill in what the job leaves out, and one that differs from the job's is an error",
    )
    v.add_argument(
        "--write-job",
        default=None,
        metavar="JOB.json",
        help="write these arguments as a render job instead of rendering (file names relative to the job's folder; "
        "an ngp-app camera path file goes inside it)",
    )
    v.add_argument(
        "--path",
        default=None,
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
        "--loop",
        action="store_true",
        default=None,
        help="close a keyframe path back to its first key (a file may say so)",
    )
    v.add_argument("--mode", choices=["rgb", "depth", "normals"], default=None, help="default: rgb")
    v.add_argument("--background", type=types.background, default=None, help="white | black | R,G,B (default: white)")
    options.spp(v)
    options.camera_model(v, default=None)
    v.add_argument(
        "--depth-out",
        default=None,
        metavar="FOLDER",
        help="also write each frame's depth in the scene's units into this new or empty folder (00000.exr, ...)",
    )
    v.add_argument("--depth-format", choices=["exr", "npy", "png"], default="exr", help="depth files (default: exr)")
    options.depth_kind(v)
    options.look(v)
    options.common(v)
    v.set_defaults(func=run, sharded=True)


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
    from ..export.path_files import inline_path, load_path, path_format

    width, height = (1920, 1080) if device_type == "cuda" else (640, 360)
    fps = 30.0
    check_options_apply(args)
    if args.path in ("orbit", "train"):
        cams = path_cameras(args.path, scene_meta, args.frames, args.loop, None, args.fov, args.radius, args.elevation)
    else:
        inline = getattr(args, "camera_path", None)  # a job's camera path, held in the job file
        if inline is None and not Path(args.path).is_file():
            raise NgpError(f"--path {args.path}: not orbit, train or an existing camera path file")
        # dense: a nerfstudio export renders its own frames, exactly
        if args.dataparser_transforms is not None and (inline is not None or path_format(args.path) != "nerfstudio"):
            raise NgpError(f"--dataparser-transforms applies to nerfstudio camera paths; {args.path} is not one")
        if inline is not None:
            path = inline_path(inline, scene_meta, args.path)
        else:
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
    """``ngp video``: one process, or under ``torchrun`` the frames shared by the ranks (rank 0 writes)."""
    from ..distributed import joined

    with joined() as ranks:
        return render_video(args, ranks)


def render_video(args: argparse.Namespace, ranks: Any) -> int:
    """The body of ``ngp video`` with ``ranks`` (a ``distributed.Ranks``, or None for one process)."""
    from tqdm import tqdm

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..distributed import agreed
    from ..errors import NgpError
    from ..export.video import check_depth_folder, check_output, check_video_target
    from ..limits import check_render_memory
    from ..train.run_files import load_run_snapshot
    from .options import check_panorama_size, with_look

    first = ranks is None or ranks.first
    with agreed(ranks):
        if args.job is not None:
            apply_job(args)
        if args.write_job is not None:
            if first:
                print(str(write_job(args)))
            return 0
        fill_defaults(args)
        if first:
            check_output(args.out)  # fail before anything else
            if args.depth_out is not None:
                check_depth_folder(args.depth_out, args.depth_format)
    with agreed(ranks):
        device = resolve_device(args.device)
        device = ranks.device(device) if ranks is not None else device
        snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
        nerf = with_look(snap.nerf, args.look)
        plan = plan_video(args, snap.scene, device.type)  # a path file may set the size and frame count
        if first:
            check_video_target(args.out, len(plan.cameras), plan.width, plan.height, kept_frames=True)
        check_render_memory(plan.width, plan.height, device, "rendering frames of")
        check_panorama_size(args.camera_model, plan.width, plan.height)
        if not plan.cameras:
            raise NgpError("the camera path has no frames")
    n = len(plan.cameras)
    shared = f" over {ranks.world} ranks" if ranks is not None else ""
    log.info(
        "rendering %d frames of %dx%d at %g fps on %s%s (%s path)",
        n,
        plan.width,
        plan.height,
        plan.fps,
        device,
        shared,
        args.path,
    )
    bar = tqdm(total=n, unit="frame", desc="video", dynamic_ncols=True, disable=args.quiet or not first)
    try:
        path = render_resumable(args, nerf, plan, snap.scene["scale"], ranks, bar)
    finally:
        bar.close()
    if path is None:  # a rank other than 0: its share is rendered
        return 0
    print(str(path))
    return 0


def render_resumable(
    args: argparse.Namespace, nerf: Any, plan: VideoPlan, scale: float, ranks: Any, bar: Any
) -> Path | None:
    """Render ``plan``'s frames that are not kept from an interrupted run of the same render
    (``export.frame_cache``), over ``ranks`` when given, and write the video (and depth folder) on rank 0; returns
    its path (None on the other ranks). Frames are kept as they finish, until the video is written."""
    from ..distributed import agreed
    from ..export.frame_cache import FrameCache
    from ..export.video import (
        DepthFrames,
        FrameRenderer,
        check_output,
        even_size,
        kept_on_failure,
        render_frames,
        write_frames,
    )

    first = ranks is None or ranks.first
    n = len(plan.cameras)
    width, height = even_size(plan.width, plan.height, check_output(args.out))
    depth = None
    if args.depth_out is not None:
        depth = DepthFrames(args.depth_out, f".{args.depth_format}", args.depth_kind, scale)
    render = FrameRenderer(
        nerf, plan.cameras, width, height, args.background, args.mode, args.spp, depth, args.camera_model
    )
    with contextlib.ExitStack() as stack:
        cache = None
        with agreed(ranks):
            if first:
                cache = stack.enter_context(FrameCache(args.out, render.key(), n, width, height))
        todo = cache.todo() if cache is not None else None
        if ranks is not None:
            todo = ranks.broadcast(todo)
        rendered: Iterable[Any]
        if ranks is None:
            rendered = render_frames(render, todo)
        else:
            rendered = stack.enter_context(ranks.shards(len(todo), lambda j: render(todo[j])))
            if not first:
                for _ in rendered:  # this rank's share; rank 0 gathers, keeps and writes
                    pass
                return None
        assert cache is not None
        with kept_on_failure(cache):
            frames = cache.merged(rendered, with_depth=depth is not None)
            pictures = frames if depth is None else (picture for picture, _ in frames)
            spherical = args.camera_model == "equirectangular"
            path = write_frames(counted(pictures, bar), n, args.out, width, height, plan.fps, spherical=spherical)
            if depth is not None:
                log.info("wrote the depth of each frame to %s", depth.write(cache.depths()))
    return path


def counted(items: Iterable[Any], bar: Any) -> Iterator[Any]:
    """``items``, ticking ``bar`` after each."""
    for item in items:
        yield item
        bar.update(1)


# ------------------------------------------------------------------------------------------------ render jobs
VIDEO_DEFAULTS = {
    "path": "orbit",
    "mode": "rgb",
    "background": (1.0, 1.0, 1.0),
    "loop": False,
    "spp": 1,
    "camera_model": "pinhole",
}


def apply_job(args: argparse.Namespace) -> None:
    """Fill ``args`` from the job file ``args.job`` (schema-checked); an option given on the command line as well
    must say the same (file names compared as the files they name), else it is an error."""
    from ..errors import NgpError
    from ..export.render_job import JOB_OPTIONS, is_file_option
    from ..schema import read_json, validate
    from ..schema.job import RenderJob

    if args.write_job is not None:
        raise NgpError("--job and --write-job: give one (a job is rendered or written, not both)")
    job = validate(RenderJob, read_json(args.job), args.job)
    folder = Path(args.job).parent
    for name in JOB_OPTIONS:
        value = getattr(job, name)
        if value is None:
            continue
        if is_file_option(name, value):
            value = str(folder / value)
        elif name == "background":
            value = tuple(value)
        given = getattr(args, name)
        if given is None:
            setattr(args, name, value)
        elif not same_option(name, given, value):
            option = name if name == "snapshot" else f"--{name.replace('_', '-')}"
            raise NgpError(
                f"{option} {given} differs from {args.job}'s {name} ({value}): drop the option or edit the job"
            )
    if job.camera_path is not None:
        if args.path is not None:
            raise NgpError(f"--path {args.path}: {args.job} holds its camera path (camera_path); drop --path")
        args.camera_path, args.path = job.camera_path, f"{args.job}:camera_path"
    if args.snapshot is None:
        raise NgpError(f"{args.job}: names no snapshot; give one: ngp video SNAPSHOT --job {args.job}")


def same_option(name: str, given: Any, value: Any) -> bool:
    """Whether a command-line option and a job's value of it agree (file names: the same file)."""
    from ..export.render_job import is_file_option

    if is_file_option(name, given) and is_file_option(name, value):
        return Path(given).resolve() == Path(value).resolve()
    return given == value


def fill_defaults(args: argparse.Namespace) -> None:
    """The defaults of the options a job may set, once the job (if any) is applied; ``--out`` is needed by then."""
    from ..errors import NgpError

    for name, value in VIDEO_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.snapshot is None:
        raise NgpError("give a snapshot: ngp video SNAPSHOT --out FILE (or --job JOB.json)")
    if args.out is None:
        raise NgpError("--out is required (video.mp4, video.gif or a folder), unless the job (--job) names it")


def write_job(args: argparse.Namespace) -> Path:
    """Write the options given as a render job at ``args.write_job`` (``export.render_job``); returns its path."""
    from ..errors import NgpError
    from ..export.render_job import JOB_OPTIONS, write_render_job
    from ..outputs import check_output_file

    check_output_file(args.write_job, (".json",), 1 << 20, "job file")
    if args.snapshot is None:
        raise NgpError("--write-job needs the snapshot: ngp video SNAPSHOT ... --write-job JOB.json")
    check_options_apply(argparse.Namespace(**{**vars(args), "path": args.path or "orbit"}))
    return write_render_job(args.write_job, {name: getattr(args, name) for name in JOB_OPTIONS})
