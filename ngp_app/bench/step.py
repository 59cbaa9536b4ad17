"""``ngp bench step [SCENE]``: the cost of one training step and of one 1920x1080 frame, after a warm-up.

Per training step: milliseconds, rays, marched and kept samples, host synchronisations (over all steps, and the most
in a step that reads nothing back by design), operator calls and, on CUDA, kernel launches and GPU-busy
milliseconds (from the torch profiler). Per frame (``render_image`` of a training view at 1920x1080): the same.
Timings come from an unprofiled run; counts from a profiled run of the same length.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import cli_args as types
from .. import resources
from .syncs import count_ops, watch_host_reads

DEFAULT_SCENE = resources.demo_scene()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", nargs="?", default=str(DEFAULT_SCENE), help="scene (default: the bundled demo)")
    p.add_argument("--device", type=types.device, default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--config", default="base")
    p.add_argument("--downscale", type=types.positive_int, default=1)
    p.add_argument(
        "--warmup", type=types.int_in(0), default=None, help="steps before measuring (default 512 cuda, 48 cpu)"
    )
    p.add_argument("--steps", type=types.positive_int, default=None, help="steps measured (default 64 cuda, 16 cpu)")
    p.add_argument("--frame-size", type=_size, default=(1920, 1080), help="WxH of the frame benchmark; 0x0 skips it")
    p.add_argument("--seed", type=types.seed, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``step`` on ``ngp bench``'s subparsers; sets ``func`` to the handler."""
    p = subparsers.add_parser(
        "step", help="ms, rays, samples, host syncs and launches per training step and frame", description=__doc__
    )
    add_arguments(p)
    p.set_defaults(func=_from_args)
    return p


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _profile_counts(fn: Callable[[], Any], repeats: int, device: torch.device) -> dict[str, Any]:
    """Host reads, operator calls and, on CUDA, kernels and GPU-busy time per call of ``fn`` (profiled)."""
    cuda = device.type == "cuda"
    with watch_host_reads(cuda=cuda) as reads:
        for _ in range(repeats):
            fn()
        _sync(device)
    events = reads.profile.events()
    out: dict[str, Any] = {
        "host_syncs": round(reads.total / repeats, 2),
        "host_sync_ops": dict(reads.counts),
        "ops": round(count_ops(events) / repeats, 1),
    }
    if cuda:
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        out["kernels"] = round(len(kernels) / repeats, 1)
        out["gpu_busy_ms"] = round(sum(e.device_time_total for e in kernels) / 1e3 / repeats, 3)
    return out


def bench_steps(trainer: Any, steps: int) -> dict[str, Any]:
    """Time ``steps`` training steps, then profile as many again (read-back steps included, as in training)."""
    dev = trainer.device
    _sync(dev)
    t0 = time.perf_counter()
    stats = [trainer.step() for _ in range(steps)]
    _sync(dev)
    ms = (time.perf_counter() - t0) * 1e3 / steps
    quiet_reads = []  # host reads of each step that reads nothing back by design
    for _ in range(steps):
        quiet = not trainer.policy.readback_due(trainer.step_count) and not trainer.policy.grid_update_due(
            trainer.step_count
        )
        with watch_host_reads() as reads:
            trainer.step()
        if quiet:
            quiet_reads.append(reads.total)
    counts = _profile_counts(trainer.step, steps, dev)
    return {
        "ms": round(ms, 3),
        "rays": round(sum(s.n_rays for s in stats) / steps, 1),
        "marched_samples": round(sum(s.n_marched for s in stats) / steps, 1),
        "kept_samples": round(sum(s.n_samples for s in stats) / steps, 1),
        **counts,
        "host_syncs_non_logging_step": max(quiet_reads) if quiet_reads else None,
    }


def frame_camera(camera: Any, width: int, height: int) -> Any:
    """``camera``'s pose and vertical field of view at ``width`` x ``height`` (centred principal point)."""
    from ..data.cameras import Camera

    f = camera.fy * height / camera.height
    return Camera(camera.c2w, f, f, width / 2.0, height / 2.0, width, height)


def bench_frame(trainer: Any, width: int, height: int) -> dict[str, Any]:
    """Render one training view at ``width`` x ``height``: once to warm up, once timed, once profiled."""
    cam = frame_camera(trainer.scene.camera(0), width, height)

    def render() -> Any:
        with trainer.lock:
            nerf = trainer.eval_nerf  # what the app and `ngp render` draw: the weight average
            nerf.field.eval()
            return nerf.render(cam)

    render()
    dev = trainer.device
    _sync(dev)
    t0 = time.perf_counter()
    render()
    _sync(dev)
    ms = (time.perf_counter() - t0) * 1e3
    return {"width": width, "height": height, "ms": round(ms, 2), **_profile_counts(render, 1, dev)}


def run(
    scene: str = str(DEFAULT_SCENE),
    device: str | None = None,
    backend: str = "auto",
    config: str = "base",
    downscale: int = 1,
    warmup: int | None = None,
    steps: int | None = None,
    frame_size: tuple[int, int] = (1920, 1080),
    seed: int = 0,
) -> dict[str, Any]:
    """Warm up a trainer on ``scene`` and measure its steps and one frame; returns the result object."""
    from ..backends import resolve_device
    from ..config import load_config
    from ..data.loaders import load_scene
    from ..train.trainer import Trainer

    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    warmup = warmup if warmup is not None else (512 if cuda else 48)
    steps = max(1, steps if steps is not None else (64 if cuda else 16))
    trainer = Trainer(load_scene(scene, "train", downscale, progress=False), load_config(config), dev, backend, seed)
    t0 = time.perf_counter()
    for _ in range(warmup):
        trainer.step()
    _sync(dev)
    result: dict[str, Any] = {
        "scene": scene,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "backend": trainer.backend,
        "config": config,
        "downscale": downscale,
        "target_samples": trainer.target_samples,
        "readback_interval": trainer.policy.readback_interval,
        "warmup_steps": warmup,
        "warmup_seconds": round(time.perf_counter() - t0, 2),
        "steps": steps,
        "step": bench_steps(trainer, steps),
    }
    if frame_size[0] > 0 and frame_size[1] > 0:
        result["frame"] = bench_frame(trainer, *frame_size)
    return result


def _size(text: str) -> tuple[int, int]:
    """An argparse type: ``WxH`` (each side 16..MAX_IMAGE_SIDE), or ``0x0`` to skip the frame benchmark."""
    return (0, 0) if text.strip() == "0x0" else types.window_size(text)


def _print_table(r: dict[str, Any]) -> None:
    s = r["step"]
    print(
        f"{r['scene']} on {r['device_name']} ({r['backend']}, {r['threads']} threads), config {r['config']}, "
        f"after {r['warmup_steps']} steps; target {r['target_samples']} kept samples, read-back every "
        f"{r['readback_interval']} steps"
    )
    print(
        f"step:  {s['ms']:.1f} ms  rays {s['rays']:.0f}  marched {s['marched_samples']:.0f}  kept "
        f"{s['kept_samples']:.0f}  host syncs {s['host_syncs']:.2f} (non-logging step: "
        f"{s['host_syncs_non_logging_step']})  ops {s['ops']:.0f}"
        + (f"  kernels {s['kernels']:.0f}  GPU busy {s['gpu_busy_ms']:.2f} ms" if "kernels" in s else "")
    )
    if "frame" in r:
        f = r["frame"]
        print(
            f"frame {f['width']}x{f['height']}:  {f['ms']:.1f} ms  host syncs {f['host_syncs']:.0f}  ops "
            f"{f['ops']:.0f}"
            + (f"  kernels {f['kernels']:.0f}  GPU busy {f['gpu_busy_ms']:.2f} ms" if "kernels" in f else "")
        )


def _from_args(args: argparse.Namespace) -> int:
    from ..errors import NgpError

    size = args.frame_size
    if not Path(args.scene).exists():
        raise NgpError(f"scene {args.scene} does not exist")
    result = run(
        args.scene, args.device, args.backend, args.config, args.downscale, args.warmup, args.steps, size, args.seed
    )
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = types.NgpArgumentParser(prog="ngp bench step", description=__doc__)
    add_arguments(parser)
    return _from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
