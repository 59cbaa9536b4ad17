"""``ngp bench train``: steps/s, samples/s and held-out PSNR against training wall time on one scene.

PSNR is the mean of the per-image PSNRs (instant-ngp's convention); ``psnr_pooled`` is that of the pooled MSE.

Evaluation pauses the training clock, so the times in the table are pure training time.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from .. import cli_args as types
from .. import resources


def run(
    scene_path: str,
    minutes: list[float],
    config_name: str = "base",
    downscale: int = 1,
    device: str | None = None,
    backend: str = "auto",
    seed: int = 0,
    max_eval_images: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on ``scene_path`` and evaluate the test split after each of ``minutes`` of training time."""
    from ..backends import resolve_device
    from ..config import load_config
    from ..data.loaders import load_scene
    from ..train.appearance_fit import fit_settings
    from ..train.evaluate import evaluate
    from ..train.trainer import Trainer

    dev = resolve_device(device)
    train = load_scene(scene_path, "train", downscale)
    test = load_scene(scene_path, "test", downscale)
    if max_eval_images is not None and test.n_frames > max_eval_images:
        step = test.n_frames / max_eval_images
        keep = [int(i * step) for i in range(max_eval_images)]
        test = subset(test, keep)
    trainer = Trainer(train, load_config(config_name), device=dev, backend=backend, seed=seed)
    trainer.budget_seconds = max(minutes) * 60.0
    rows = []
    for m in sorted(minutes):
        target = m * 60.0
        while trainer.train_seconds < target:
            trainer.step()
        t = time.perf_counter()
        res = evaluate(trainer.eval_nerf, test, progress=False, fit=fit_settings(trainer.config))
        rows.append(
            {
                "minutes": m,
                "steps": trainer.step_count,
                "psnr": round(res["psnr"], 3),  # mean of the per-image PSNRs
                "psnr_pooled": round(res["psnr_pooled"], 3),  # PSNR of the pooled MSE
                "ssim": round(res["ssim"], 4),
                "psnr_nerfw": round(res["psnr_nerfw"], 3) if res["psnr_nerfw"] is not None else None,
                "steps_per_second": round(trainer.step_count / trainer.train_seconds, 3),
                "samples_per_second": round(trainer.samples_per_second(), 1),
                "eval_seconds": round(time.perf_counter() - t, 2),
            }
        )
        if progress:
            print(json.dumps(rows[-1]), flush=True)
    return {
        "scene": scene_path,
        "downscale": downscale,
        "config": config_name,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "backend": trainer.backend,
        "test_images": test.n_frames,
        "rows": rows,
    }


def subset(scene: Any, keep: list[int]) -> Any:
    """A copy of ``scene`` holding only frames ``keep``."""
    import copy

    out = copy.copy(scene)
    images = [scene.image(i).reshape(-1, scene.pixels.shape[1]) for i in keep]
    sizes = [im.shape[0] for im in images]
    out.pixels = torch.cat(images)
    out.image_offsets = torch.tensor([sum(sizes[:i]) for i in range(len(sizes))], dtype=torch.int64)
    for name in ("widths", "heights", "c2w", "intrinsics", "distortion"):
        setattr(out, name, getattr(scene, name)[keep])
    out.file_names = [scene.file_names[i] for i in keep]
    out.kept = scene.kept.select(keep) if scene.kept is not None else None
    return out


def add_parser(sub: Any) -> None:
    """Register ``train`` under ``ngp bench``."""
    p = sub.add_parser("train", help="PSNR vs training wall time, steps/s and samples/s on a scene")
    p.add_argument("scene", nargs="?", default=None, help="scene (default: the bundled demo)")
    p.add_argument(
        "--minutes",
        type=types.minutes_list,
        default=[1.0, 2.0, 5.0, 10.0],
        help="comma-separated checkpoints in minutes of training (default 1,2,5,10)",
    )
    p.add_argument("--config", default="base")
    p.add_argument("--downscale", type=types.positive_int, default=1)
    p.add_argument("--device", type=types.device, default=None)
    p.add_argument("--backend", default="auto")
    p.add_argument("--seed", type=types.seed, default=0)
    p.add_argument("--max-eval-images", type=types.positive_int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    result = run(
        args.scene or str(resources.demo_scene()),
        args.minutes,
        args.config,
        args.downscale,
        args.device,
        args.backend,
        args.seed,
        args.max_eval_images,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['scene']} (downscale {result['downscale']}, {result['backend']} on {result['device_name']}, "
            f"{result['threads']} threads)"
        )
        print(f"{'min':>5} {'steps':>7} {'steps/s':>8} {'samples/s':>11} {'PSNR':>7} {'pooled':>7} {'SSIM':>6}")
        for r in result["rows"]:
            print(
                f"{r['minutes']:>5g} {r['steps']:>7} {r['steps_per_second']:>8.2f} {r['samples_per_second']:>11.0f} "
                f"{r['psnr']:>7.2f} {r['psnr_pooled']:>7.2f} {r['ssim']:>6.3f}"
            )
    return 0
