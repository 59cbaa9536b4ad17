"""What the real-app GUI test files share: the module-level skip when there is no display or GUI package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def require_app(*modules: str, tools: tuple[str, ...] = ()) -> None:
    """Skip the calling test module unless a display, pyglet, DearPyGui, ``modules`` and the ``tools`` are there."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("no DISPLAY (run under xvfb-run -a)", allow_module_level=True)
    for name in ("pyglet", "dearpygui", *modules):
        pytest.importorskip(name)
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (apt-get install {tool})", allow_module_level=True)


def xdotool(*args: object) -> None:
    """Run one xdotool command (mouse and keys as a person's hand sends them)."""
    import subprocess

    subprocess.run(["xdotool", *(str(a) for a in args)], check=True, timeout=10)


def drag(x0: int, y0: int, x1: int, y1: int, button: int = 1) -> None:
    """Press ``button`` at screen (x0, y0), move to (x1, y1), release."""
    xdotool("mousemove", x0, y0, "mousedown", button)
    xdotool("mousemove", x1, y1)
    xdotool("mouseup", button)


def click(x: int, y: int, button: int = 1) -> None:
    """Move to screen (x, y) and click."""
    xdotool("mousemove", x, y, "click", button)


def empty_app(downscale: int) -> Iterator[Any]:
    """The body of a module fixture: the real app with no scene (small config on the CPU, a 480x270 viewport,
    cheap renders at a tenth of its size), closed afterwards."""
    from ngp_app.gui.app import App

    a = App(
        None,
        config="small",
        device="cpu",
        backend="torch",
        downscale=downscale,
        size=(480, 270),
        remember_windows=False,
    )
    a.state.settings.resolution_scale = 0.1
    yield a
    a.close()
