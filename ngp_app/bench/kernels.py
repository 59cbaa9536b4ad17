"""``ngp bench kernels``: throughput of the native kernels against the PyTorch reference, per op and backend.

Ops: hash-grid encode forward+backward (table gradient; float32 and float16 lookups, and tiny-cuda-nn's HashGrid
where it is installed, with the native time relative to it), the spherical-harmonics direction encoding
forward+backward, the field's two MLPs forward+backward in float32 and half precision (CUDA only), the hash-table Adam
step (sparse, per-entry step counts: the PyTorch reference vs the native kernel, on the gradient of an encode
backward), ray marching + compositing forward+backward, and a whole training step on the bundled ``scenes/demo``
(when present). Each row gives a throughput and the ratio to the torch
reference on the same device.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any, Callable

import torch

from .. import cli_args as types
from .. import resources
from ..encoding.hashgrid import GridGeometry, hash_grid_encode
from ..render.composite import composite as torch_composite
from ..render.occupancy import OccupancyGrid
from ..render.raymarch import MarchParams
from ..render.raymarch import march_rays as torch_march

DEMO_SCENE = resources.demo_scene()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(
    cases: dict[str, Callable[[], Any]], device: torch.device, min_seconds: float = 0.5, max_reps: int = 30
) -> dict[str, float]:
    """Median seconds per call of each case; calls alternate between the cases (after one warm-up call each), so a
    machine whose load changes during the run slows all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    _sync(device)
    start = time.perf_counter()
    reps = 0
    while reps < max_reps and (reps < 3 or time.perf_counter() - start < min_seconds * len(cases)):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
        reps += 1
    return {name: statistics.median(ts) for name, ts in times.items()}


def _encode_case(device: torch.device, n_points: int) -> dict[str, Callable[[], Any]]:
    geo = GridGeometry.create(
        n_levels=8, n_features=4, log2_hashmap_size=19, base_resolution=16, finest_resolution=2048
    )
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_points, 3, generator=g).to(device)
    table = (torch.rand(geo.n_rows, geo.n_features, generator=g) * 2e-4 - 1e-4).to(device).requires_grad_()
    grad = torch.randn(n_points, geo.n_output_dims, generator=g).to(device)
    consts = geo.tensors(device)

    table.grad = torch.zeros_like(table)

    def run(encode: Callable[[], torch.Tensor]) -> Callable[[], Any]:
        def step() -> None:  # as in training: zero the existing gradient, then accumulate into it
            assert table.grad is not None
            table.grad.zero_()
            encode().backward(grad)

        return step

    from ..backends import tcnn_available
    from ..compute import native

    cases = {
        "torch": run(lambda: hash_grid_encode(x, table, geo, consts)),
        "native": run(lambda: native.hash_grid_encode(x, table, geo)),
        # half-precision lookups: the half copy is made every call, as after every optimiser step in training
        "native-fp16": run(lambda: native.hash_grid_encode(x, table, geo, table.detach().half())),
    }
    if tcnn_available(device)[0]:
        from ..encoding.tcnn_grid import tcnn_hash_grid_encode

        cases["tcnn"] = run(lambda: tcnn_hash_grid_encode(x, table, geo, "float32"))
        cases["tcnn-fp16"] = run(lambda: tcnn_hash_grid_encode(x, table, geo, "float16"))
    return cases


def _sh_case(device: torch.device, n_points: int) -> dict[str, Callable[[], Any]]:
    from ..encoding.sh import sh_encode
    from ..native import ops

    g = torch.Generator().manual_seed(3)
    d = torch.nn.functional.normalize(torch.randn(n_points, 3, generator=g), dim=-1).to(device).requires_grad_()
    grad = torch.randn(n_points, 16, generator=g).to(device)

    def run(encode: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable[[], Any]:
        def step() -> None:  # with the direction gradient, as under pose refinement
            d.grad = None
            encode(d, 4).backward(grad)

        return step

    return {"torch": run(sh_encode), "native": run(ops.sh_encode)}


def _mlp_case(device: torch.device, n_points: int) -> dict[str, Callable[[], Any]]:
    """The field's density and colour MLPs (base config) on ``n_points`` samples, forward + backward, per precision
    (the ``torch`` row is float32)."""
    from ..model.field import make_mlp
    from ..model.precision import mlp_forward

    torch.manual_seed(4)
    density, colour = make_mlp(32, 64, 1, 16).to(device), make_mlp(32, 64, 2, 3).to(device)
    feats = (torch.rand(n_points, 32, device=device) * 2e-2 - 1e-2).requires_grad_()
    sh = torch.rand(n_points, 16, device=device)
    grad = torch.randn(n_points, 3, device=device) * 1e-5

    def run(dtype: torch.dtype) -> Callable[[], Any]:
        def step() -> None:
            h = mlp_forward(density, feats, dtype)
            mlp_forward(colour, torch.cat([h, sh], dim=-1), dtype).backward(grad)

        return step

    return {"torch": run(torch.float32), "float16": run(torch.float16), "bfloat16": run(torch.bfloat16)}


def _adam_case(device: torch.device, n_points: int) -> dict[str, Callable[[], Any]]:
    from ..compute import get_ops, native
    from ..train.optim import TableAdam, table_adam

    geo = GridGeometry.create(
        n_levels=8, n_features=4, log2_hashmap_size=19, base_resolution=16, finest_resolution=2048
    )
    g = torch.Generator().manual_seed(1)
    table_t = (torch.rand(geo.n_rows, geo.n_features, generator=g) * 2e-4 - 1e-4).to(device).requires_grad_()
    table_n = table_t.detach().clone().requires_grad_()
    x = torch.rand(n_points, 3, generator=g).to(device)
    native.hash_grid_encode(x, table_t, geo).sum().backward()  # realistic sparsity: rows touched by one batch
    table_n.grad = table_t.grad.clone()
    kw = {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-15}
    reference = TableAdam([table_t], **kw)
    kernels = table_adam(get_ops("native"))([table_n], **kw)
    return {"torch": reference.step, "native": kernels.step}


def _scene_rays(n_rays: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays from a sphere of cameras around the unit box towards points near its centre."""
    d0 = torch.randn(n_rays, 3, generator=g)
    o = 0.5 + 2.0 * d0 / d0.norm(dim=-1, keepdim=True)
    target = 0.5 + (torch.rand(n_rays, 3, generator=g) - 0.5) * 0.8
    d = target - o
    return o, d / d.norm(dim=-1, keepdim=True)


def _render_case(device: torch.device, n_rays: int) -> dict[str, Callable[[], Any]]:
    from ..compute import get_ops, native

    g = torch.Generator().manual_seed(2)
    grid = OccupancyGrid(1.0, device="cpu", ops=get_ops("torch"))
    r = grid.resolution
    ijk = torch.stack(torch.meshgrid(*(torch.arange(r),) * 3, indexing="ij"), -1).flip(-1).reshape(-1, 3).float()
    dist = ((ijk + 0.5) / r - 0.5).norm(dim=-1)
    grid.occupied = ((dist > 0.25) & (dist < 0.32)).reshape(1, -1)  # a spherical shell, ~8% of the cells
    grid.to(device)
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3], device=device)
    params = MarchParams.for_grid(grid)
    o, d = (v.to(device) for v in _scene_rays(n_rays, g))
    jitter = torch.rand(n_rays, generator=g).to(device)

    def run(march: Callable[..., Any], comp: Callable[..., Any]) -> Callable[[], Any]:
        def step() -> None:
            s = march(o, d, grid, aabb, params, jitter=jitter)
            sig = (torch.sin(s.positions.sum(-1) * 20.0) * 10.0 + 10.0).requires_grad_()
            rgb = torch.sigmoid(s.positions).requires_grad_()
            out = comp(sig, rgb, s.t, s.dt, s.ray_indices, s.offsets, n_rays, 1e-4)
            (out["rgb"].sum() + out["depth"].sum()).backward()

        return step

    return {"torch": run(torch_march, torch_composite), "native": run(native.march_rays, native.composite)}


def _train_case(device: torch.device) -> dict[str, Callable[[], Any]]:
    from ..config import load_config
    from ..data.loaders import load_scene
    from ..train.trainer import Trainer

    scene = load_scene(DEMO_SCENE, "train")
    config = load_config("base")
    cases = {}
    for backend in ("torch", "native"):
        trainer = Trainer(scene, config, device=device, backend=backend, seed=0)
        for _ in range(3):  # past the first occupancy update
            trainer.step()
        cases[backend] = trainer.step
    return cases


def run(
    device: str | torch.device = "cpu", as_json: bool = False, quick: bool = False, train: bool = True
) -> list[dict[str, Any]]:
    """Benchmark every op on ``device``; prints a table (or JSON) and returns the rows."""
    from ..backends import resolve_device
    from ..errors import NgpError
    from ..native import loader

    dev = resolve_device(str(device))
    ok, why = loader.available(dev)
    if not ok:
        raise NgpError(f"native kernels unavailable on {dev}: {why}")
    n_points = 1 << (14 if quick else 16)
    n_rays = 1 << (11 if quick else 13)
    specs: list[tuple[str, str, int, Callable[[], dict[str, Callable[[], Any]]]]] = [
        ("encode fwd+bwd", "points/s", n_points, lambda: _encode_case(dev, n_points)),
        ("sh encode fwd+bwd", "dirs/s", n_points, lambda: _sh_case(dev, n_points)),
        ("table adam step", "entries/s", 0, lambda: _adam_case(dev, n_points)),
        ("march+composite fwd+bwd", "rays/s", n_rays, lambda: _render_case(dev, n_rays)),
    ]
    if dev.type == "cuda":  # half-precision MLPs are a GPU feature (the CPU keeps float32)
        n_mlp = 1 << (16 if quick else 18)
        specs.insert(2, ("mlp fwd+bwd (2 MLPs)", "samples/s", n_mlp, lambda: _mlp_case(dev, n_mlp)))
    if train and DEMO_SCENE.is_dir():
        specs.append(("train step (scenes/demo)", "steps/s", 1, lambda: _train_case(dev)))
    rows: list[dict[str, Any]] = []
    for op, unit, count, make in specs:
        cases = make()
        secs = time_cases(cases, dev, min_seconds=0.2 if quick else 0.5, max_reps=5 if quick else 30)
        if op == "table adam step":
            count = GridGeometry.create(8, 4, 19, 16, finest_resolution=2048).n_rows * 4
        for backend, s in secs.items():
            row = {
                "op": op,
                "backend": backend,
                "device": str(dev),
                "items": count,
                "seconds": s,
                "throughput": count / s,
                "unit": unit,
                "speedup": secs["torch"] / s,
            }
            # time relative to tiny-cuda-nn at the same precision (the GPU goal: native within 1.5x of tcnn)
            ref = "tcnn-fp16" if backend.endswith("fp16") else "tcnn"
            if ref in secs and backend.startswith("native"):
                row["time_vs_tcnn"] = s / secs[ref]
            rows.append(row)
    if as_json:  # one object: where it ran, and the table's rows
        print(
            json.dumps(
                {"device": str(dev), "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows},
                indent=2,
            )
        )
    else:
        print(
            f"{'op':<28}{'backend':<13}{'ms/call':>10}{'throughput':>14}  {'unit':<10}{'vs torch':>9}{'time/tcnn':>11}"
        )
        for r in rows:
            vs_tcnn = f"{r['time_vs_tcnn']:>10.2f}x" if "time_vs_tcnn" in r else ""
            print(
                f"{r['op']:<28}{r['backend']:<13}{r['seconds'] * 1e3:>10.2f}{_si(r['throughput']):>14}  "
                f"{r['unit']:<10}{r['speedup']:>8.2f}x{vs_tcnn}"
            )
        print(f"device {dev}, {torch.get_num_threads()} threads")
    return rows


def _si(v: float) -> str:
    if v <= 0 or not math.isfinite(v):
        return str(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f}{suffix}"
    return f"{v:.2f}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=types.device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repetitions")
    parser.add_argument("--no-train", action="store_true", help="skip the whole-training-step benchmark")


def _from_args(args: argparse.Namespace) -> int:
    run(args.device, as_json=args.json, quick=args.quick, train=not args.no_train)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kernels`` on a subparsers object (``ngp bench kernels``); sets ``func`` to the handler."""
    parser = subparsers.add_parser("kernels", help="native kernels vs the PyTorch reference", description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=_from_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ngp bench kernels", description=__doc__)
    add_arguments(parser)
    return _from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
