"""The ``ngp`` command line: import | train | eval | render | video | mesh | make-scene | bench (the GUI lives behind
``ngp app``).

Every user error (bad scene, corrupt snapshot, wrong arguments) exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import NgpError

log = logging.getLogger("ngp_app")
DEFAULT_SCENE = Path(__file__).resolve().parent.parent / "scenes" / "demo"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _background(text: str) -> tuple[float, float, float]:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    if text in named:
        return named[text]
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(0.0 <= v <= 1.0 for v in parts):
        raise argparse.ArgumentTypeError("background must be white, black or R,G,B in [0, 1]")
    return parts  # type: ignore[return-value]


def _setup_torch(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .backends import resolve_device
    from .config import load_config
    from .data.loaders import load_scene
    from .model.precision import mlp_dtype
    from .snapshot import atomic_write_text, save_snapshot
    from .train.trainer import Trainer, evaluate

    device = resolve_device(args.device)
    overrides: dict[str, Any] = {}
    if args.table_precision:
        overrides["encoding"] = {"table_precision": args.table_precision}
    if args.mlp_precision:
        overrides["network"] = {"precision": args.mlp_precision}
    if args.optimize_extrinsics:
        overrides["training"] = {"optimize_extrinsics": True}
    resumed = None
    if args.resume:  # first, so that a bad snapshot fails before the images load
        from .config import merge
        from .snapshot import load_snapshot

        resumed = load_snapshot(args.resume, device=device)
    if resumed is not None and args.config is None:  # the snapshot's own config
        config = merge(resumed.config, overrides) if overrides else resumed.config
    else:
        config = load_config(args.config or "base", overrides or None)
    scene = load_scene(args.scene, "train" if not args.all_frames else "all", args.downscale, args.max_size,
                       progress=not args.quiet)
    log.info("scene %s: %d training frames of %dx%d, aabb_scale %g", scene.path, scene.n_frames,
             int(scene.widths[0]), int(scene.heights[0]), scene.aabb_scale)
    trainer = Trainer(scene, config, device=device, backend=args.backend, seed=args.seed)
    if resumed is not None:
        if resumed.model.encoding.geometry != trainer.model.encoding.geometry:
            raise NgpError(f"{args.resume}: its hash grid does not match config {config['name']!r}; resume with the "
                           f"snapshot's own config (leave --config out)")
        trainer.restore(resumed)
        log.info("resumed from %s at step %d (%s)", args.resume, trainer.step_count,
                 "with optimiser state" if any(k.startswith("opt.") for k in (resumed.training_state or {}))
                 else "optimiser state not saved: Adam restarts")
    steps, seconds = args.steps, args.seconds
    if steps is None and seconds is None:
        steps = 5000 if device.type == "cuda" else None
        seconds = None if device.type == "cuda" else 300.0
    log.info("training on %s with backend %s, config %s (%s)", device, trainer.backend, config["name"],
             f"{steps} steps" if steps else f"{seconds:g} s")
    bar = tqdm(total=steps if steps else int(seconds or 0), unit="step" if steps else "s", dynamic_ncols=True,
               desc="train", disable=args.quiet)
    last_t = [0.0]

    def on_step(st: Any) -> None:
        if steps:
            bar.update(1)
        else:
            now = int(trainer.train_seconds)
            bar.update(now - int(last_t[0]))
            last_t[0] = now
        if st.step % 10 == 0 or st.step == 1:
            bar.set_postfix(step=st.step, loss=f"{st.loss:.4f}", psnr=f"{st.psnr:.2f}", rays=st.n_rays,
                            spr=f"{st.n_samples / max(st.n_rays, 1):.1f}")

    wall = time.perf_counter()
    trainer.train(steps=steps, seconds=seconds, callback=on_step)
    wall = time.perf_counter() - wall
    bar.close()
    out = Path(args.out)
    snap = save_snapshot(out, trainer.model, trainer.grid, config, trainer.scene_metadata(), trainer.step_count,
                         {"backend": trainer.backend}, trainer.training_state(args.save_optimizer_state))
    metrics: dict[str, Any] = {
        "steps": trainer.step_count,
        "seconds": round(wall, 3),
        "train_seconds": round(trainer.train_seconds, 3),
        "samples_per_second": round(trainer.samples_per_second(), 1),
        "steps_per_second": round(trainer.step_count / max(wall, 1e-9), 3),
        "backend": trainer.backend,
        "device": str(device),
        "config": config["name"],
        "table_precision": trainer.model.encoding.precision,
        "mlp_precision": str(mlp_dtype(trainer.model.mlp_precision, device)).removeprefix("torch."),
        "optimize_extrinsics": trainer.optimize_extrinsics,
        "final_loss": trainer.history[-1].loss if trainer.history else None,
        "final_train_psnr": trainer.history[-1].psnr if trainer.history else None,
        "occupancy": trainer.grid.occupancy_fraction(),
        "scene": str(scene.path),
        "seed": args.seed,
    }
    if args.eval:
        test = load_scene(args.scene, "test", args.downscale, args.max_size)
        res = evaluate(trainer.model, trainer.grid, trainer.march, test, progress=not args.quiet)
        metrics.update({"test_psnr": res["psnr"], "test_ssim": res["ssim"], "test_images": res["n_images"]})
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    log.info("wrote %s and %s", snap, out / "metrics.json")
    print(json.dumps({k: metrics[k] for k in metrics if k in ("steps", "seconds", "samples_per_second", "backend", "device", "test_psnr")}))
    return 0


# --------------------------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import torch

    from .backends import resolve_device
    from .compute import resolve_ops
    from .data.loaders import load_scene
    from .snapshot import load_snapshot
    from .train.trainer import evaluate

    device = resolve_device(args.device)
    snap = load_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    scene = load_scene(args.scene, args.split, args.downscale, args.max_size)
    save_dir = Path(args.save_images) if args.save_images else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)

    def on_image(i: int, pred: torch.Tensor, gt: torch.Tensor) -> None:
        if save_dir is not None:
            img = (pred.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
            iio.imwrite(save_dir / f"{i:04d}.png", img)

    res = evaluate(snap.model, snap.grid, snap.march, scene, args.background, on_image, progress=not args.quiet)
    res.pop("images") if not args.per_image else None
    res.update({"split": args.split, "snapshot": str(args.snapshot), "step": snap.step})
    print(json.dumps(res))
    return 0


# --------------------------------------------------------------------------------------------------- render
def cmd_render(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import torch

    from .backends import resolve_device
    from .compute import resolve_ops
    from .render.cameras_cli import camera_from_spec
    from .render.renderer import render_image
    from .snapshot import load_snapshot

    device = resolve_device(args.device)
    snap = load_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    camera = camera_from_spec(args.camera, snap.scene, args.width, args.height, args.fov)
    t = time.perf_counter()
    field: Any = snap.model
    background = args.background
    if args.mode == "normals":  # surface normals as colours, (n + 1) / 2, over black
        from .render.normals import NormalsField

        field, background = NormalsField(snap.model), (0.0, 0.0, 0.0)
    out = render_image(field, snap.grid, snap.model.aabb, camera, snap.march, background)
    log.info("rendered %dx%d in %.2f s", args.width, args.height, time.perf_counter() - t)
    if args.mode == "depth":
        d = out["depth"] / out["opacity"].clamp(min=1e-6)
        valid = out["opacity"] > 0.5
        lo, hi = (float(d[valid].min()), float(d[valid].max())) if bool(valid.any()) else (0.0, 1.0)
        img = ((d - lo) / max(hi - lo, 1e-6)).clamp(0, 1)[..., None].expand(-1, -1, 3)
    elif args.mode == "opacity":
        img = out["opacity"][..., None].expand(-1, -1, 3)
    else:
        img = out["rgb"]
    pixels = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    if args.alpha:
        pixels = torch.cat([pixels, (out["opacity"].clamp(0, 1) * 255 + 0.5).to(torch.uint8)[..., None]], -1)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .snapshot import atomic_write_bytes

    atomic_write_bytes(path, iio.imwrite("<bytes>", pixels.cpu().numpy(), extension=path.suffix or ".png"))
    print(str(path))
    return 0


# --------------------------------------------------------------------------------------------------- mesh
def cmd_mesh(args: argparse.Namespace) -> int:
    from .export.mesh import mesh_command

    return mesh_command(args)


# --------------------------------------------------------------------------------------------------- make-scene
def cmd_make_scene(args: argparse.Namespace) -> int:
    from .data.synthetic import make_scene

    out = make_scene(args.out, width=args.width, height=args.height, n_train=args.n_train, n_val=args.n_val,
                     n_test=args.n_test, seed=args.seed, progress=not args.quiet, with_backdrop=args.backdrop,
                     path=args.path, supersample=args.supersample)
    print(str(out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ngp", description="Instant-NGP NeRF: train, evaluate, render, export videos and meshes, and the desktop app.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
        if sp.prog.split()[-1] != "train":
            sp.add_argument("--backend", default="auto", help="auto | torch | native | tcnn")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    def scene_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--downscale", type=_positive_int, default=1, help="shrink images by this factor")
        sp.add_argument("--max-size", type=_positive_int, default=None, help="shrink so the longer image side is at most this")

    from .data.importer import cli as import_cli

    import_cli.add_parser(sub)

    t = sub.add_parser("train", help="train a NeRF on a scene and write a snapshot + metrics.json")
    t.add_argument("scene", nargs="?", default=str(DEFAULT_SCENE), help="scene folder or transforms.json (default: bundled demo)")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--steps", type=_positive_int, default=None)
    t.add_argument("--seconds", type=_positive_float, default=None, help="stop after this much wall time")
    t.add_argument("--config", default=None, help="base | small | big | path to a JSON config (default: base, or the "
                   "resumed snapshot's)")
    t.add_argument("--backend", default="auto", help="auto | torch | native | tcnn (auto: the config's \"backend\", itself auto)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--table-precision", choices=["float32", "float16"], default=None,
                   help="hash table lookups in float32 or float16 (a half copy of float32 parameters; default: config)")
    t.add_argument("--mlp-precision", choices=["auto", "float32", "float16", "bfloat16"], default=None,
                   help="MLP matmuls on CUDA: float32, float16, bfloat16, or auto = float16 on CUDA (float32 weights and "
                   "gradients; the CPU always computes in float32; default: the config's network.precision, auto)")
    t.add_argument("--resume", default=None, metavar="SNAPSHOT",
                   help="continue training from a snapshot of this scene (its config unless --config is given)")
    t.add_argument("--save-optimizer-state", action="store_true",
                   help="store Adam's moments in the snapshot, so --resume continues exactly (the file grows ~3x)")
    t.add_argument("--optimize-extrinsics", action="store_true",
                   help="refine the training cameras' poses while training (stored in the snapshot)")
    t.add_argument("--eval", action="store_true", help="evaluate held-out views after training (into metrics.json)")
    t.add_argument("--all-frames", action="store_true", help="train on every frame, held-out ones included")
    common(t)
    scene_opts(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="PSNR/SSIM of a snapshot on a scene's held-out views")
    e.add_argument("snapshot")
    e.add_argument("scene")
    e.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    e.add_argument("--background", type=_background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    e.add_argument("--save-images", default=None, help="write rendered views here")
    e.add_argument("--per-image", action="store_true", help="include per-image metrics in the JSON")
    common(e)
    scene_opts(e)
    e.set_defaults(func=cmd_eval)

    r = sub.add_parser("render", help="render one image from a snapshot")
    r.add_argument("snapshot")
    r.add_argument("--width", type=_positive_int, default=800)
    r.add_argument("--height", type=_positive_int, default=800)
    r.add_argument("--camera", default="train:0",
                   help="train:N (a training camera), orbit:AZIMUTH,ELEVATION,RADIUS (degrees, ngp units), or a JSON file with a NeRF transform_matrix")
    r.add_argument("--fov", type=_positive_float, default=None, help="horizontal field of view in degrees (orbit/JSON cameras)")
    r.add_argument("--mode", choices=["rgb", "depth", "opacity", "normals"], default="rgb")
    r.add_argument("--background", type=_background, default=(1.0, 1.0, 1.0))
    r.add_argument("--alpha", action="store_true", help="write an alpha channel (PNG)")
    r.add_argument("--out", required=True)
    common(r)
    r.set_defaults(func=cmd_render)

    from .export import video_cli

    video_cli.add_parser(sub, common, _background, _positive_int, _positive_float)

    me = sub.add_parser("mesh", help="export the density iso-surface as a coloured mesh (.ply or .obj)")
    me.add_argument("snapshot")
    me.add_argument("--out", required=True, help="output file, .ply or .obj")
    me.add_argument("--resolution", type=_positive_int, default=256, help="lattice points per axis")
    me.add_argument("--threshold", type=float, default=2.5, help="density (sigma) of the surface")
    me.add_argument("--crop", default=None, help="x0,y0,z0,x1,y1,z1 box in ngp coordinates (default: the scene box)")
    me.add_argument("--space", choices=["nerf", "ngp"], default="nerf",
                    help="output coordinates: nerf (the scene's transforms.json) or ngp (internal)")
    common(me)
    me.set_defaults(func=cmd_mesh)

    m = sub.add_parser("make-scene", help="generate the procedural demo scene (NeRF-synthetic layout)")
    m.add_argument("out")
    m.add_argument("--width", type=_positive_int, default=200)
    m.add_argument("--height", type=_positive_int, default=200)
    m.add_argument("--n-train", type=_positive_int, default=80)
    m.add_argument("--n-val", type=_non_negative_int, default=10)
    m.add_argument("--n-test", type=_non_negative_int, default=20)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--supersample", type=_positive_int, default=3, help="rays per pixel along each axis (anti-aliasing)")
    m.add_argument("--backdrop", action="store_true",
                   help="an opaque noise-textured ground and dome around the object (features everywhere, for SfM)")
    m.add_argument("--path", choices=["random", "orbit"], default="random",
                   help="training views: random on the sphere, or one smooth turn around the object (like a video)")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=cmd_make_scene)

    b = sub.add_parser("bench", help="benchmarks: train (PSNR vs time), kernels, render")
    bsub = b.add_subparsers(dest="bench", required=True)
    from .bench import kernels as bench_kernels
    from .bench import render as bench_render
    from .bench import train as bench_train

    bench_train.add_parser(bsub)
    bench_kernels.add_parser(bsub)
    bench_render.add_parser(bsub)

    from .gui.cli import add_app_parser

    add_app_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ngp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="[ngp] %(message)s")
    _setup_torch(args.threads)
    try:
        return int(args.func(args) or 0)
    except NgpError as exc:
        print(f"ngp: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output path that can't be written, a full disk, ...
        print(f"ngp: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except MemoryError:
        print("ngp: error: out of memory (try a smaller size, resolution or batch)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ngp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
