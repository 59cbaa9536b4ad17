"""What the real-app GUI test files share: the module-level skip when there is no display or GUI package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "xdnd_source.py"  # a file manager's drag source (XDND) for real drops
ARTIFACTS = ROOT / "test-artifacts"  # viewport captures the tests save (for a person to look at after a failure)


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


def screen(app, name: str) -> np.ndarray:
    """What the viewport shows now, read back from its framebuffer."""
    import imageio.v3 as iio

    ARTIFACTS.mkdir(exist_ok=True)
    p = ARTIFACTS / f"{name}.png"
    app.tick(save_viewport=p)
    return iio.imread(p)[..., :3].astype(np.float32)


def send(app, event: str, *args) -> None:
    """Post a window event as the window system would; it is handled in the next loop iteration."""
    app.viewport.window.dispatch_event(event, *args)
    app.tick()


def settle(app, timeout: float = 240.0) -> bool:
    """Pump until the worker has shown a fully refined frame of the current view."""
    w = app.worker
    cap = app.state.settings.resolution_scale
    return app.pump(
        timeout, until=lambda: w.latest is not None and w.latest.scale >= cap - 1e-6 and w._last_key == w.view_key()
    )


def viewport_point(app, fx: float, fy: float) -> tuple[int, int]:
    """Screen coordinates of the point at fractions (fx, fy) of the viewport (from its top left)."""
    win = app.viewport.window
    x, y = win.get_location()
    return int(x + fx * win.width), int(y + fy * win.height)


def choose(app, tag: str, label: str) -> None:
    """As a person picks from a combo: click it, then click the entry in the list that opens under it (or above it,
    where ImGui puts the list when it would not fit below in the window)."""
    import dearpygui.dearpygui as dpg

    click_item(app, tag)
    app.pump(0.3)
    items = dpg.get_item_configuration(tag)["items"]
    x, _ = panel_point(tag)
    _, vy = dpg.get_viewport_pos()
    top, bottom = dpg.get_item_rect_min(tag)[1], dpg.get_item_rect_max(tag)[1]
    row = dpg.get_text_size("Ag")[1] + 4  # a selectable's height: a text line plus the item spacing
    pad = 8  # the list's window padding above its first entry and below its last
    height = len(items) * row + 2 * pad
    first = bottom + pad if bottom + height <= dpg.get_viewport_client_height() else top - height + pad
    click(x, int(vy + first + (items.index(label) + 0.5) * row))
    app.pump(0.3)


def panel_point(tag: str, fx: float = 0.5) -> tuple[int, int]:
    """Screen coordinates of panel item ``tag`` as drawn in the last frame: its middle row, ``fx`` of the way across
    (0.5: the middle; a number field's +/- buttons sit at its right end)."""
    import dearpygui.dearpygui as dpg

    vx, vy = dpg.get_viewport_pos()
    (x0, y0), (x1, y1) = dpg.get_item_rect_min(tag), dpg.get_item_rect_max(tag)
    return int(vx + x0 + fx * (x1 - x0)), int(vy + (y0 + y1) / 2)


def scroll_to(app, tag: str, tries: int = 60, fx: float = 0.5) -> tuple[int, int]:
    """Scroll the panel with the mouse wheel until item ``tag`` is on screen; returns its screen position. An item
    out of view has no rectangle: the wheel goes down until the panel's end, then up."""
    import dearpygui.dearpygui as dpg

    vx, vy = dpg.get_viewport_pos()
    down = True
    for _ in range(tries):
        app.tick()
        app.tick()
        body = dpg.get_item_state("panel_body")  # a child window reports its place and size, not a rectangle
        (left, top), (w, h) = body["pos"], body["rect_size"]
        right, bottom = left + w, top + h
        y0, y1 = dpg.get_item_rect_min(tag)[1], dpg.get_item_rect_max(tag)[1]
        if dpg.is_item_visible(tag) and top <= y0 and y1 <= bottom:
            return panel_point(tag, fx)
        if dpg.is_item_visible(tag):
            down = y1 > bottom
        elif dpg.get_y_scroll("panel_body") >= dpg.get_y_scroll_max("panel_body") - 1:
            down = False
        # the wheel over the panel body's own scrollbar (over the table it would scroll the table)
        xdotool("mousemove", vx + right - 5, vy + (top + bottom) // 2, "click", 5 if down else 4)
    raise AssertionError(f"{tag} never came into view: {dpg.get_item_state(tag)}, panel body {top}..{bottom}")


def click_item(app, tag: str, fx: float = 0.5) -> None:
    """As a person clicks a panel item: scroll it into view, move the pointer onto it (``fx`` of the way across),
    then click where it is."""
    xdotool("mousemove", *scroll_to(app, tag, fx=fx))
    app.pump(0.3)
    click(*scroll_to(app, tag, fx=fx))


def type_into(app, tag: str, text: str) -> None:
    """As a person edits a panel field: click its text (left of a number field's +/- buttons; the panel's window
    gets the keyboard), select all, type, Enter."""

    out = subprocess.run(["xdotool", "search", "--name", "^ngp-app controls$"], capture_output=True, text=True)
    xdotool("windowfocus", "--sync", out.stdout.split()[-1])
    click_item(app, tag, fx=0.2)
    app.pump(0.2)
    xdotool("key", "ctrl+a")
    xdotool("type", "--delay", "30", text)
    xdotool("key", "Return")
    app.pump(0.3)


def xdnd_drop(app, path: Path, inline_types: bool = False) -> None:
    """Drag ``path`` from another X client onto the middle of the viewport and drop it; the app keeps pumping."""
    win = app.viewport.window
    x, y = win.get_location()
    args = [
        sys.executable,
        str(SOURCE),
        *(["--inline-types"] if inline_types else []),
        str(win._window),
        str(x + win.width // 2),
        str(y + win.height // 2),
        str(path),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        app.pump(60, until=lambda: proc.poll() is not None)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.communicate()[0]
    assert proc.returncode == 0, out
    assert "accepted=1" in out and "served=1" in out, out
    app.pump(0.2)  # the drop's data arrived with the source's last message: let the viewport take it
