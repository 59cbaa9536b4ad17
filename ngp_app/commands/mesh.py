"""``ngp mesh SNAPSHOT --out MESH``: the density iso-surface as a coloured .ply or .obj."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from .. import cli_args as types

log = logging.getLogger("ngp_app")


def register(sub: Any, options: Any) -> None:
    """Add the command's parser to ``sub`` (``options``: the shared option groups, ``commands.options``)."""
    me = sub.add_parser("mesh", help="export the density iso-surface as a coloured mesh (.ply or .obj)")
    me.add_argument("snapshot")
    me.add_argument("--out", required=True, help="output file, .ply or .obj")
    me.add_argument("--resolution", type=types.positive_int, default=256, help="lattice points per axis")
    me.add_argument("--threshold", type=types.finite_float, default=2.5, help="density (sigma) of the surface")
    me.add_argument("--crop", default=None, help="x0,y0,z0,x1,y1,z1 box in ngp coordinates (default: the scene box)")
    me.add_argument(
        "--space",
        choices=["nerf", "ngp"],
        default="nerf",
        help="output coordinates: nerf (the scene's transforms.json) or ngp (internal)",
    )
    options.common(me)
    me.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Body of ``ngp mesh``: load the snapshot, export, print the path and a summary."""
    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..export.mesh import check_mesh_target, export_mesh, parse_crop
    from ..train.run_files import load_run_snapshot

    out = check_mesh_target(args.out, args.resolution)
    crop = parse_crop(args.crop) if args.crop is not None else None
    t = time.perf_counter()
    device = resolve_device(args.device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    mesh = export_mesh(
        snap.nerf, snap.scene, out, args.resolution, args.threshold, crop, args.space, progress=not args.quiet
    )
    log.info("exported the mesh in %.2f s", time.perf_counter() - t)
    print(str(out))
    print(f"{mesh.n_vertices} vertices, {mesh.n_faces} faces")
    return 0
