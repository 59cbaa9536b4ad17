"""``ngp bench render``: milliseconds per frame of a 1920x1080 view of the bundled scene, per device, at full
resolution and at the resolution the app's dynamic-resolution controller settles on for its 30 fps default, and
the passes, host reads and field slots of one frame (full resolution on CUDA, the dynamic one on the CPU).

The model is trained briefly first (``--train-steps``) so the occupancy grid has carved out empty space as it
would in the app; ``--snapshot`` benchmarks a trained snapshot instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import cli_args as types
from .. import resources

DEFAULT_SCENE = resources.demo_scene()


def add_parser(subparsers: Any, name: str = "render") -> argparse.ArgumentParser:
    """Add ``render`` to the subparsers of ``ngp bench`` (the handler is ``args.func``)."""
    p = subparsers.add_parser(name, help="ms per 1920x1080 frame (full and dynamic resolution) per device")
    configure(p)
    return p


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--devices",
        type=types.device_list,
        default=None,
        help="comma-separated devices (default: cpu, and cuda if available)",
    )
    p.add_argument("--scene", default=str(DEFAULT_SCENE), help="scene to train on (default: bundled demo)")
    p.add_argument("--snapshot", default=None, help="benchmark this snapshot instead of a briefly trained model")
    p.add_argument("--config", default="small")
    p.add_argument(
        "--train-steps", type=types.int_in(0), default=None, help="steps before measuring (default 300 cuda, 60 cpu)"
    )
    p.add_argument("--width", type=types.image_side, default=1920)
    p.add_argument("--height", type=types.image_side, default=1080)
    p.add_argument("--target-fps", type=types.fps, default=30.0)
    p.add_argument(
        "--repeats", type=types.positive_int, default=None, help="full-resolution frames timed (default 5 cuda, 1 cpu)"
    )
    p.add_argument("--skip-full", action="store_true", help="only the dynamic-resolution measurement")
    p.set_defaults(func=run)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_device(args: argparse.Namespace, device_name: str) -> dict[str, Any]:
    from ..backends import resolve_device
    from ..errors import NgpError
    from ..gui.dynres import DynamicResolution, render_size
    from ..gui.session import Session
    from ..limits import check_render_memory
    from ..snapshot import read_snapshot_meta

    device = resolve_device(device_name)
    check_render_memory(args.width, args.height, device)
    if args.snapshot:  # a bad snapshot: one line before the app state is built (it would log it too)
        read_snapshot_meta(args.snapshot)
    state = Session(config=args.config, device=str(device), backend="auto", downscale=2)
    state.open_path(args.snapshot or args.scene, start=False)
    if state.status_is_error:
        raise NgpError(str(state.status))
    steps = args.train_steps if args.train_steps is not None else (300 if device.type == "cuda" else 60)
    t = state.trainer
    if t is not None and not args.snapshot:
        for _ in range(steps):
            t.step()
    state.camera.reset()
    res: dict[str, Any] = {
        "device": str(device),
        "backend": state.backend,
        "train_steps": state.step,
        "width": args.width,
        "height": args.height,
    }

    def timed(w: int, h: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        state.view.render_view(w, h)  # the viewport's frame: uint8 RGBA, copied to the host
        _sync(device)
        return (time.perf_counter() - t0) * 1000.0

    timed(64, 36)  # warm-up (allocations, kernel compilation)
    dyn = DynamicResolution(target_fps=args.target_fps)
    times = []
    for _ in range(40):
        scale = dyn.scale
        ms = timed(*render_size(args.width, args.height, scale))
        times.append((scale, ms))
        dyn.update(ms, scale)
        if len(times) >= 12 and len({s for s, _ in times[-6:]}) == 1:
            break  # settled
    settled = [ms for s, ms in times if s == dyn.scale] or [times[-1][1]]
    w, h = render_size(args.width, args.height, dyn.scale)
    res["dynamic"] = {
        "scale": round(dyn.scale, 4),
        "render_width": w,
        "render_height": h,
        "ms_per_frame": round(sorted(settled)[len(settled) // 2], 2),
    }
    if not args.skip_full:
        repeats = args.repeats or (5 if device.type == "cuda" else 1)
        full = sorted(timed(args.width, args.height) for _ in range(repeats))
        res["full"] = {"ms_per_frame": round(full[len(full) // 2], 2), "repeats": repeats}
    res["frame"] = frame_stats(state, *((args.width, args.height) if device.type == "cuda" else (w, h)))
    state.close()
    return res


def frame_stats(state: Any, width: int, height: int) -> dict[str, Any]:
    """Passes, host reads and field slots of one frame of the current view (render.frame.FrameStats)."""
    from ..render.frame import FrameStats

    src = state.source()
    stats = FrameStats()
    if src is not None:
        src.nerf.render(state.camera.camera(width, height), stats=stats)
    return {"width": width, "height": height, **stats.as_dict()}


def run(args: argparse.Namespace) -> int:
    import torch

    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = [bench_device(args, d) for d in devices]
    if args.json:
        print(json.dumps({"benchmark": "render", "results": results}))
    else:
        print(f"{'device':8} {'backend':8} {'full ms':>10} {'dynamic ms':>11} {'dynamic res':>12} {'passes (at)':>18}")
        for r in results:
            full = f"{r['full']['ms_per_frame']:.1f}" if "full" in r else "-"
            d, f = r["dynamic"], r["frame"]
            print(
                f"{r['device']:8} {r['backend']:8} {full:>10} {d['ms_per_frame']:>11.1f} "
                f"{d['render_width']:>5}x{d['render_height']:<6} {f['passes']:>6} ({f['width']}x{f['height']})"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = types.NgpArgumentParser(prog="ngp bench render", description=__doc__.split("\n\n")[0])
    configure(p)
    args = p.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
