"""``ngp bench train|kernels|render|step``: the benchmarks (each in its own ``bench`` module)."""

from __future__ import annotations

from typing import Any


def register(sub: Any, options: Any) -> None:
    """Add ``bench`` and its sub-commands to ``sub``."""
    b = sub.add_parser("bench", help="benchmarks: train (PSNR vs time), kernels, render, step")
    bsub = b.add_subparsers(dest="bench", required=True)
    from ..bench import kernels as bench_kernels
    from ..bench import render as bench_render
    from ..bench import step as bench_step
    from ..bench import train as bench_train

    bench_train.add_parser(bsub)
    bench_kernels.add_parser(bsub)
    bench_render.add_parser(bsub)
    bench_step.add_parser(bsub)
