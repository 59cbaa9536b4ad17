"""``ngp eval SNAPSHOT [SCENE]``: PSNR and SSIM of a snapshot on a scene's held-out views."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import cli_args as types


def register(sub: Any, options: Any) -> None:
    """Add the command's parser to ``sub`` (``options``: the shared option groups, ``commands.options``)."""
    e = sub.add_parser(
        "eval",
        help="PSNR (mean over images, pooled, and NeRF-W's right halves)/SSIM of a snapshot on a scene's held-out "
        "views",
    )
    e.add_argument("snapshot")
    e.add_argument("scene", nargs="?", help="scene folder or transforms.json (default: the snapshot's own scene)")
    e.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    e.add_argument("--background", type=types.background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    e.add_argument("--save-images", default=None, help="write rendered views here")
    e.add_argument("--per-image", action="store_true", help="include per-image metrics in the JSON")
    options.common(e)
    options.scene(e)
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import torch

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..data.loaders import load_scene
    from ..errors import NgpError
    from ..fileio import atomic_write_bytes
    from ..outputs import check_output_dir
    from ..snapshot import resolve_snapshot_path, snapshot_scene_path
    from ..train.appearance_fit import fit_settings
    from ..train.evaluate import evaluate
    from ..train.run_files import load_run_snapshot

    option, contents = "--save-images", "the rendered views"
    save_dir = check_output_dir(args.save_images, 0, option, contents) if args.save_images else None
    device = resolve_device(args.device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    scene_path = args.scene
    if scene_path is None:  # the scene the snapshot was trained on
        scene_path = snapshot_scene_path(snap.scene, resolve_snapshot_path(args.snapshot))
        if scene_path is None:
            raise NgpError(
                f"{args.snapshot}: its scene ({snap.scene.get('path') or 'unknown'}) is not on disk; "
                "name the scene: ngp eval SNAPSHOT SCENE"
            )
    scene = load_scene(scene_path, args.split, args.downscale, args.max_size)
    if save_dir is not None:
        pixels = int((scene.widths.long() * scene.heights.long()).sum())
        check_output_dir(save_dir, pixels * 3, option, contents)  # free space, now that the sizes are known

    def on_image(i: int, pred: torch.Tensor, gt: torch.Tensor) -> None:
        if save_dir is not None:
            img = (pred.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
            atomic_write_bytes(save_dir / f"{i:04d}.png", iio.imwrite("<bytes>", img, extension=".png"))

    fit = fit_settings(snap.config)
    res = evaluate(snap.nerf, scene, args.background, on_image, progress=not args.quiet, fit=fit)
    res.pop("images") if not args.per_image else None
    res.update({"split": args.split, "snapshot": str(args.snapshot), "step": snap.step})
    print(json.dumps(res))
    return 0
