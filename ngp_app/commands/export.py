"""``ngp export pointcloud|cameras|bundle SNAPSHOT``: what a capture is for, beside ``ngp mesh`` and videos."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from .. import cli_args as types

log = logging.getLogger("ngp_app")


def _frame_list(text: str) -> list[int]:
    """``0,3,5`` -> [0, 3, 5] (whole numbers >= 0)."""
    parse = types.int_in(0)
    return [parse(part) for part in text.split(",")]


def register(sub: Any, options: Any) -> None:
    """Add ``export`` and its sub-commands to ``sub`` (``options``: the shared option groups)."""
    ex = sub.add_parser("export", help="export a snapshot's point cloud or training cameras")
    esub = ex.add_subparsers(dest="export", required=True)

    pc = esub.add_parser("pointcloud", help="the surface the training cameras see, as a coloured .ply point cloud")
    pc.add_argument("snapshot")
    pc.add_argument("--out", required=True, help="output file, .ply")
    pc.add_argument("--points", type=types.positive_int, default=1_000_000, help="points to cast (default 1000000)")
    pc.add_argument(
        "--frames", type=_frame_list, default=None, help="training frames to cast from, e.g. 0,4,9 (default: all)"
    )
    pc.add_argument("--crop", default=None, help="x0,y0,z0,x1,y1,z1 box in ngp coordinates (default: the scene box)")
    pc.add_argument("--keep-outliers", action="store_true", help="skip the statistical outlier filter")
    pc.add_argument("--seed", type=types.int_in(0), default=0, help="ray positions' seed (same seed, same cloud)")
    pc.add_argument(
        "--space",
        choices=["nerf", "ngp"],
        default="nerf",
        help="output coordinates: nerf (the scene's transforms.json) or ngp (internal)",
    )
    options.common(pc)
    pc.set_defaults(func=run_pointcloud)

    bu = esub.add_parser(
        "bundle", help="a clean GLB (floaters removed, decimated) and a fly-through mp4 with its camera path"
    )
    bu.add_argument("snapshot")
    bu.add_argument("--out", default=None, help="folder (default: <scene>/ngp-exports)")
    bu.add_argument("--faces", type=types.int_in(4), default=200_000, help="the GLB's face budget (default 200000)")
    bu.add_argument(
        "--min-piece",
        type=types.float_in(0.0, 1.0),
        default=0.01,
        help="remove disconnected pieces with fewer than this share of the faces (default 0.01)",
    )
    bu.add_argument("--resolution", type=types.int_in(8, 1024), default=256, help="mesh lattice points per axis")
    bu.add_argument("--threshold", type=types.finite_float, default=2.5, help="density of the surface")
    bu.add_argument("--frames", type=types.video_frames, default=120, help="fly-through frames (default 120)")
    bu.add_argument("--width", type=types.video_side, default=640)
    bu.add_argument("--height", type=types.video_side, default=360)
    bu.add_argument("--fps", type=types.fps, default=30.0)
    options.common(bu)
    bu.set_defaults(func=run_bundle)

    cam = esub.add_parser(
        "cameras", help="the training cameras (refined poses when pose refinement ran) as a transforms.json"
    )
    cam.add_argument("snapshot")
    cam.add_argument("--out", required=True, help="output file, .json (loadable by ngp train)")
    cam.add_argument("--quiet", action="store_true", help="print only the output path")
    cam.set_defaults(func=run_cameras)


def run_pointcloud(args: argparse.Namespace) -> int:
    """Body of ``ngp export pointcloud``: check the output, load the snapshot, cast, filter, write."""
    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..export.mesh import parse_crop
    from ..export.pointcloud import check_pointcloud_target, export_pointcloud
    from ..train.run_files import load_run_snapshot

    out = check_pointcloud_target(args.out, args.points)
    crop = parse_crop(args.crop) if args.crop is not None else None
    t = time.perf_counter()
    device = resolve_device(args.device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    cloud = export_pointcloud(
        snap.nerf,
        snap.scene,
        out,
        n_points=args.points,
        frames=args.frames,
        crop=crop,
        keep_outliers=args.keep_outliers,
        space=args.space,
        seed=args.seed,
        progress=not args.quiet,
    )
    log.info("exported the point cloud in %.2f s", time.perf_counter() - t)
    print(str(out))
    print(f"{len(cloud)} points")
    return 0


def run_cameras(args: argparse.Namespace) -> int:
    """Body of ``ngp export cameras``: the snapshot's training cameras as a transforms.json."""
    from ..export.training_cameras import check_cameras_target, export_cameras
    from ..snapshot import read_snapshot_meta

    out = check_cameras_target(args.out)
    meta = read_snapshot_meta(args.snapshot)
    data = export_cameras(meta["scene"], out)
    print(str(out))
    refined = "refined" if data["ngp_export"]["extrinsics_refined"] else "as loaded"
    print(f"{len(data['frames'])} cameras, poses {refined}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    """Body of ``ngp export bundle``: the GLB, the fly-through and its path into one folder."""
    import json
    from pathlib import Path

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..export.bundle import bundle_targets, export_bundle
    from ..snapshot import read_snapshot_meta, resolve_snapshot_path, snapshot_scene_path
    from ..train.run_files import load_run_snapshot

    folder = args.out
    if folder is None:
        meta = read_snapshot_meta(args.snapshot)
        scene = snapshot_scene_path(meta["scene"], resolve_snapshot_path(args.snapshot))
        base = Path(scene) if scene is not None else resolve_snapshot_path(args.snapshot).parent
        folder = (base.parent if base.suffix.lower() == ".json" else base) / "ngp-exports"
    bundle_targets(folder)
    device = resolve_device(args.device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    info = export_bundle(
        snap.nerf,
        snap.scene,
        folder,
        args.faces,
        args.min_piece,
        args.resolution,
        args.threshold,
        args.frames,
        args.width,
        args.height,
        args.fps,
    )
    for path in info["files"].values():
        print(path)
    print(json.dumps({k: v for k, v in info.items() if k != "files"}))
    return 0
