"""``ngp render SNAPSHOT --out IMAGE``: one image (rgb, depth, opacity or normals) from a snapshot."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from .. import cli_args as types
from ..errors import NgpError

log = logging.getLogger("ngp_app")


def register(sub: Any, options: Any) -> None:
    """Add the command's parser to ``sub`` (``options``: the shared option groups, ``commands.options``)."""
    r = sub.add_parser("render", help="render one image from a snapshot")
    r.add_argument("snapshot")
    r.add_argument("--width", type=types.image_side, default=800)
    r.add_argument("--height", type=types.image_side, default=800)
    r.add_argument(
        "--camera",
        default="train:0",
        help="train:N (a training camera), orbit:AZIMUTH,ELEVATION,RADIUS (degrees, ngp units), "
        "or a JSON file with a NeRF transform_matrix",
    )
    r.add_argument(
        "--fov", type=types.fov, default=None, help="horizontal field of view in degrees (orbit/JSON cameras)"
    )
    r.add_argument("--mode", choices=["rgb", "depth", "opacity", "normals"], default="rgb")
    r.add_argument("--background", type=types.background, default=(1.0, 1.0, 1.0))
    r.add_argument("--alpha", action="store_true", help="write an alpha channel (PNG)")
    r.add_argument("--out", required=True)
    options.look(r)
    options.spp(r, default=1)
    options.camera_model(r)
    options.depth_out(r, "this file")
    options.common(r)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import torch

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..export.depth import check_depth_target, metric_depth, write_depth
    from ..fileio import atomic_write_bytes
    from ..limits import check_render_memory
    from ..outputs import IMAGE_SUFFIXES, check_output_file
    from ..render.cameras_cli import camera_from_spec
    from ..render.pictures import FLOAT_MODES, picture, shaded_field
    from ..train.run_files import load_run_snapshot
    from .options import check_panorama_size, with_look

    path = check_output_file(args.out, IMAGE_SUFFIXES, args.width * args.height * 4, "image")
    check_panorama_size(args.camera_model, args.width, args.height)
    depth_path = check_depth_target(args.depth_out, args.width * args.height) if args.depth_out else None
    if args.alpha and path.suffix.lower() in (".jpg", ".jpeg", ".bmp"):
        raise NgpError(f"{path}: {path.suffix} has no alpha channel; write a .png (or .tif) with --alpha")
    device = resolve_device(args.device)
    check_render_memory(args.width, args.height, device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    looked = with_look(snap.nerf, args.look)
    camera = camera_from_spec(args.camera, snap.scene, args.width, args.height, args.fov)
    if args.camera_model == "equirectangular":
        camera = camera.panorama()
    t = time.perf_counter()
    field, background = shaded_field(looked.field, args.mode, args.background)
    nerf = looked.with_field(field)
    out = None
    if args.mode in FLOAT_MODES:
        out = nerf.render(camera, background, spp=args.spp)
        pixels = torch.from_numpy(picture(args.mode, out))  # as the app and ``ngp video`` draw it
        if args.alpha:
            pixels = torch.cat([pixels, (out["opacity"].cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8)[..., None]], -1)
    else:  # colours (or normals) straight into uint8 RGBA: alpha is the opacity
        out = nerf.render_rgba(camera, background, spp=args.spp, floats=depth_path is not None)
        pixels = out["rgba"] if args.alpha else out["rgba"][..., :3]
    log.info("rendered %dx%d in %.2f s", args.width, args.height, time.perf_counter() - t)
    atomic_write_bytes(path, iio.imwrite("<bytes>", pixels.cpu().numpy(), extension=path.suffix.lower()))
    print(str(path))
    if depth_path is not None:
        depth = metric_depth(out, camera, float(snap.scene.get("scale", 0.33)), args.depth_kind)
        for written in write_depth(depth_path, depth, {"kind": args.depth_kind, "units": "scene"}):
            print(str(written))
    return 0
