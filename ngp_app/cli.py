"""The ``ngp`` command line: import | train | eval | render | video | mesh | make-scene | bench (the GUI lives behind
``ngp app``).

Every user error (bad scene, corrupt snapshot, wrong arguments) exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import traceback
from collections.abc import Sequence

from . import cli_args as types
from . import resources
from .crash import report_internal_error
from .errors import NgpError
from .limits import is_out_of_memory
from .signals import Interrupted, signal_name, terminate_as_interrupt
from .train.command import DEFAULT_CHECKPOINT_SECONDS, cmd_train

log = logging.getLogger("ngp_app")
DEFAULT_SCENE = resources.demo_scene()


def _setup_torch(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import torch

    from .backends import resolve_device
    from .compute import resolve_ops
    from .data.loaders import load_scene
    from .errors import NgpError
    from .fileio import atomic_write_bytes
    from .outputs import check_output_dir
    from .snapshot import resolve_snapshot_path, snapshot_scene_path
    from .train.run_files import load_run_snapshot
    from .train.trainer import evaluate

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

    res = evaluate(snap.nerf, scene, args.background, on_image, progress=not args.quiet)
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
    from .fileio import atomic_write_bytes
    from .limits import check_render_memory
    from .outputs import IMAGE_SUFFIXES, check_output_file
    from .render.cameras_cli import camera_from_spec
    from .render.pictures import FLOAT_MODES, picture, shaded_field
    from .train.run_files import load_run_snapshot

    path = check_output_file(args.out, IMAGE_SUFFIXES, args.width * args.height * 4, "image")
    if args.alpha and path.suffix.lower() in (".jpg", ".jpeg", ".bmp"):
        raise NgpError(f"{path}: {path.suffix} has no alpha channel; write a .png (or .tif) with --alpha")
    device = resolve_device(args.device)
    check_render_memory(args.width, args.height, device)
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops(args.backend, device))
    camera = camera_from_spec(args.camera, snap.scene, args.width, args.height, args.fov)
    t = time.perf_counter()
    field, background = shaded_field(snap.nerf.field, args.mode, args.background)
    nerf = snap.nerf.with_field(field)
    if args.mode in FLOAT_MODES:
        out = nerf.render(camera, background)
        pixels = torch.from_numpy(picture(args.mode, out))  # as the app and ``ngp video`` draw it
        if args.alpha:
            pixels = torch.cat([pixels, (out["opacity"].cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8)[..., None]], -1)
    else:  # colours (or normals) straight into uint8 RGBA: alpha is the opacity
        rgba = nerf.render_rgba(camera, background)["rgba"]
        pixels = rgba if args.alpha else rgba[..., :3]
    log.info("rendered %dx%d in %.2f s", args.width, args.height, time.perf_counter() - t)
    atomic_write_bytes(path, iio.imwrite("<bytes>", pixels.cpu().numpy(), extension=path.suffix.lower()))
    print(str(path))
    return 0


# --------------------------------------------------------------------------------------------------- mesh
def cmd_mesh(args: argparse.Namespace) -> int:
    from .export.mesh import mesh_command

    return mesh_command(args)


# --------------------------------------------------------------------------------------------------- make-scene
def cmd_make_scene(args: argparse.Namespace) -> int:
    from .data.synthetic import make_scene
    from .outputs import check_output_dir

    check_output_dir(
        args.out,
        args.width * args.height * 4 * (args.n_train + args.n_val + args.n_test),
        "OUT",
        "the images and transforms_*.json",
    )
    out = make_scene(
        args.out,
        width=args.width,
        height=args.height,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        seed=args.seed,
        progress=not args.quiet,
        with_backdrop=args.backdrop,
        path=args.path,
        supersample=args.supersample,
    )
    print(str(out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = types.NgpArgumentParser(
        prog="ngp",
        description="Instant-NGP NeRF: train, evaluate, render, export videos and meshes, and the desktop app.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--threads", type=types.threads, default=None, help="CPU threads for PyTorch")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", type=types.device, default=None, help="cpu or cuda (default: cuda when available)")
        if sp.prog.split()[-1] != "train":
            sp.add_argument("--backend", default="auto", help="auto | torch | native | tcnn")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    def scene_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--downscale", type=types.positive_int, default=1, help="shrink images by this factor")
        sp.add_argument(
            "--max-size", type=types.positive_int, default=None, help="shrink so the longer image side is at most this"
        )

    from .data.importer import cli as import_cli

    import_cli.add_parser(sub)

    t = sub.add_parser("train", help="train a NeRF on a scene and write a snapshot + metrics.json")
    t.add_argument(
        "scene", nargs="?", default=str(DEFAULT_SCENE), help="scene folder or transforms.json (default: bundled demo)"
    )
    t.add_argument("--out", required=True, help="output folder (created; snapshot.npz and metrics.json go inside)")
    t.add_argument("--steps", type=types.positive_int, default=None)
    t.add_argument("--seconds", type=types.positive_float, default=None, help="stop after this much wall time")
    t.add_argument(
        "--config",
        default=None,
        help="base | small | big | path to a JSON config (default: base, or the resumed snapshot's)",
    )
    t.add_argument(
        "--backend", default="auto", help='auto | torch | native | tcnn (auto: the config\'s "backend", itself auto)'
    )
    t.add_argument("--seed", type=types.seed, default=0)
    t.add_argument(
        "--table-precision",
        choices=["float32", "float16"],
        default=None,
        help="hash table lookups in float32 or float16 (a half copy of float32 parameters; default: config)",
    )
    t.add_argument(
        "--mlp-precision",
        choices=["auto", "float32", "float16", "bfloat16"],
        default=None,
        help="MLP matmuls on CUDA: float32, float16, bfloat16, or auto = float16 on CUDA (float32 weights and "
        "gradients; the CPU always computes in float32; default: the config's network.precision, auto)",
    )
    t.add_argument(
        "--resume",
        default=None,
        metavar="SNAPSHOT",
        help="continue training from a snapshot of this scene (its config unless --config is given)",
    )
    t.add_argument(
        "--save-optimizer-state",
        action="store_true",
        help="store Adam's moments in the snapshot, so --resume continues exactly (the file grows ~3x)",
    )
    t.add_argument(
        "--optimize-extrinsics",
        action="store_true",
        help="refine the training cameras' poses while training (stored in the snapshot)",
    )
    t.add_argument(
        "--eval",
        action="store_true",
        help="evaluate held-out views after training (into metrics.json: test_psnr, the mean "
        "of per-image PSNRs, and test_psnr_pooled)",
    )
    t.add_argument("--all-frames", action="store_true", help="train on every frame, held-out ones included")
    common(t)
    scene_opts(t)
    t.add_argument(
        "--checkpoint-every",
        type=types.float_in(0.0),
        default=DEFAULT_CHECKPOINT_SECONDS,
        metavar="S",
        help=f"save the snapshot and metrics every S seconds while training (default "
        f"{DEFAULT_CHECKPOINT_SECONDS:g}; 0: only at the end)",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "eval", help="PSNR (mean over images, and pooled)/SSIM of a snapshot on a scene's held-out views"
    )
    e.add_argument("snapshot")
    e.add_argument("scene", nargs="?", help="scene folder or transforms.json (default: the snapshot's own scene)")
    e.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    e.add_argument("--background", type=types.background, default=(1.0, 1.0, 1.0), help="white | black | R,G,B")
    e.add_argument("--save-images", default=None, help="write rendered views here")
    e.add_argument("--per-image", action="store_true", help="include per-image metrics in the JSON")
    common(e)
    scene_opts(e)
    e.set_defaults(func=cmd_eval)

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
    common(r)
    r.set_defaults(func=cmd_render)

    from .export import video_cli

    video_cli.add_parser(sub, common)

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
    common(me)
    me.set_defaults(func=cmd_mesh)

    m = sub.add_parser("make-scene", help="generate the procedural demo scene (NeRF-synthetic layout)")
    m.add_argument("out")
    m.add_argument("--width", type=types.image_side, default=200)
    m.add_argument("--height", type=types.image_side, default=200)
    m.add_argument("--n-train", type=types.positive_int, default=80)
    m.add_argument("--n-val", type=types.int_in(0), default=10)
    m.add_argument("--n-test", type=types.int_in(0), default=20)
    m.add_argument("--seed", type=types.seed, default=0)
    m.add_argument(
        "--supersample", type=types.int_in(1, 16), default=3, help="rays per pixel along each axis (anti-aliasing)"
    )
    m.add_argument(
        "--backdrop",
        action="store_true",
        help="an opaque noise-textured ground and dome around the object (features everywhere, for SfM)",
    )
    m.add_argument(
        "--path",
        choices=["random", "orbit"],
        default="random",
        help="training views: random on the sphere, or one smooth turn around the object (like a video)",
    )
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=cmd_make_scene)

    b = sub.add_parser("bench", help="benchmarks: train (PSNR vs time), kernels, render, step")
    bsub = b.add_subparsers(dest="bench", required=True)
    from .bench import kernels as bench_kernels
    from .bench import render as bench_render
    from .bench import step as bench_step
    from .bench import train as bench_train

    bench_train.add_parser(bsub)
    bench_kernels.add_parser(bsub)
    bench_render.add_parser(bsub)
    bench_step.add_parser(bsub)

    from .gui.cli import add_app_parser

    add_app_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ngp`` console script: returns the exit status (0 ok, 1 internal error, 2 bad input or
    arguments, 128 + N after signal N)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed as one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="[ngp] %(message)s", force=True)
    with terminate_as_interrupt():
        try:
            _setup_torch(args.threads)
            return int(args.func(args) or 0)
        except NgpError as exc:
            print(f"ngp: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:  # an output path that can't be written, a full disk, ...
            print(f"ngp: error: {exc.strerror or one_line(exc)}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Interrupted
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            print(f"ngp: interrupted ({signal_name(signum)})", file=sys.stderr)
            return 128 + signum
        except Exception as exc:
            if is_out_of_memory(exc):
                print("ngp: error: out of memory (try a smaller size, resolution or batch)", file=sys.stderr)
                return 2
            if args.verbose:
                traceback.print_exc()
            print(report_internal_error(exc), file=sys.stderr)
            return 1


def one_line(exc: BaseException) -> str:
    """An error message folded onto one line."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
