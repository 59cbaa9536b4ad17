"""What the real-app GUI test files share: the module-level skip when there is no display or GUI package."""

from __future__ import annotations

import os
import shutil

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
