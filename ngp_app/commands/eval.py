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
    e.add_argument(
        "--save-depth",
        choices=["exr", "npy", "png"],
        default=None,
        help="with --save-images: also each view's depth in the scene's units (NNNN.depth.exr ...; png: 16-bit with "
        "its scale in a .json beside it)",
    )
    options.depth_kind(e)
    e.add_argument("--per-image", action="store_true", help="include per-image metrics in the JSON")
    options.common(e)
    options.scene(e)
    e.set_defaults(func=run, sharded=True)


def run(args: argparse.Namespace) -> int:
    """``ngp eval``: one process, or under ``torchrun`` the images shared by the ranks (rank 0 prints and saves)."""
    from ..distributed import joined

    with joined() as ranks:
        return evaluate_command(args, ranks)


def evaluate_command(args: argparse.Namespace, ranks: Any) -> int:
    """The body of ``ngp eval`` with ``ranks`` (a ``distributed.Ranks``, or None for one process)."""
    import imageio.v3 as iio
    import torch

    from ..backends import resolve_device
    from ..compute import resolve_ops
    from ..data.loaders import load_scene
    from ..distributed import agreed
    from ..errors import NgpError
    from ..export.depth import depth_format, write_depth
    from ..fileio import atomic_write_bytes
    from ..outputs import check_output_dir
    from ..snapshot import resolve_snapshot_path, snapshot_scene_path
    from ..train.appearance_fit import fit_settings
    from ..train.evaluate import evaluate, score_image, summarize
    from ..train.run_files import load_run_snapshot

    first = ranks is None or ranks.first
    option, contents = "--save-images", "the rendered views"
    with agreed(ranks):
        if args.save_depth is not None and args.save_images is None:
            raise NgpError("--save-depth needs --save-images (the folder the depth files go into)")
        if args.save_depth is not None:
            depth_format(f"depth.{args.save_depth}")
        save_dir = check_output_dir(args.save_images, 0, option, contents) if args.save_images and first else None
    with agreed(ranks):
        device = resolve_device(args.device)
        device = ranks.device(device) if ranks is not None else device
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

    def on_image(i: int, pred: torch.Tensor, gt: torch.Tensor | None) -> None:
        if save_dir is not None:
            img = (pred.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
            atomic_write_bytes(save_dir / f"{i:04d}.png", iio.imwrite("<bytes>", img, extension=".png"))

    def on_depth(i: int, depth: Any) -> None:
        if save_dir is not None:
            info = {"kind": args.depth_kind, "units": "scene", "image": scene.file_names[i]}
            write_depth(save_dir / f"{i:04d}.depth.{args.save_depth}", depth, info)

    depth_kind = args.depth_kind if args.save_depth is not None else None

    fit = fit_settings(snap.config)
    if ranks is None:
        res = evaluate(
            snap.nerf,
            scene,
            args.background,
            on_image,
            progress=not args.quiet,
            fit=fit,
            depth_kind=depth_kind,
            on_depth=on_depth if depth_kind is not None else None,
        )
    else:
        snap.nerf.field.eval()
        keep = args.save_images is not None

        def score(i: int) -> Any:
            s = score_image(snap.nerf, scene, i, args.background, fit, keep_image=keep, depth_kind=depth_kind)
            s.gt = None  # rank 0 needs the rendered view only
            return s

        scores = []
        with ranks.shards(scene.n_frames, score) as shares:
            with progress_bar(scene.n_frames, args.quiet or not first) as bar:
                for i, s in enumerate(shares):
                    scores.append(s)
                    if s.pred is not None:
                        on_image(i, s.pred, None)
                    if s.depth is not None:
                        on_depth(i, s.depth)
                    bar.update(1)
        if not first:
            return 0
        res = summarize(snap.nerf, scores, fit)
    res.pop("images") if not args.per_image else None
    res.update({"split": args.split, "snapshot": str(args.snapshot), "step": snap.step})
    print(json.dumps(res))
    return 0


def progress_bar(total: int, disable: bool) -> Any:
    """The one ``eval`` progress bar (rank 0's under ``torchrun``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="eval", unit="img", disable=disable)
