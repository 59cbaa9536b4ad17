"""``ngp app``: argparse wiring for the desktop app (pyglet/DearPyGui are imported only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import cli_args as types
from .. import resources
from ..errors import NgpError


def register(subparsers: Any, options: Any) -> argparse.ArgumentParser:
    """Add ``app``'s parser to ``subparsers``."""
    from ..backends import BACKENDS

    p = subparsers.add_parser("app", help="the desktop app: live training in a viewport plus a control panel")
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="scene folder, transforms.json or snapshot to open (default: the bundled demo scene)",
    )
    p.add_argument("--empty", action="store_true", help="open no scene (drop one onto the viewport)")
    p.add_argument(
        "--exit-after",
        type=types.positive_float,
        default=None,
        metavar="S",
        help="quit after S seconds and print a JSON summary (steps, frames, fps)",
    )
    p.add_argument("--screenshot-dir", default=None, metavar="D", help="on exit, save both windows as PNGs here")
    p.add_argument("--config", default="small", help="network config: small, base, big or a path (default small)")
    p.add_argument("--device", type=types.device, default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--downscale", type=types.positive_int, default=1, help="load training images at 1/N size")
    p.add_argument(
        "--size",
        type=types.window_size,
        default=None,
        metavar="WxH",
        help="viewport size (default: as last time, else 1920x1080; shrunk to fit the screen beside the panel)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..gui.app import run_app

    path = args.path
    if path is not None and not Path(path).exists():  # the app would show it and run on: a typo must fail here
        raise NgpError(f"{path}: no such file or folder")
    if path is None and not args.empty:
        demo = resources.demo_scene()
        path = str(demo) if demo.is_dir() else None
    return run_app(
        path,
        exit_after=args.exit_after,
        screenshot_dir=args.screenshot_dir,
        config=args.config,
        device=args.device,
        backend=args.backend,
        downscale=args.downscale,
        size=args.size,
    )
