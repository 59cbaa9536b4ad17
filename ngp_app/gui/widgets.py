"""Widgets and labels shared by the control panel and its sub-panels (``panel.py``, ``panel_path.py``,
``panel_images.py``): the panel imports its sub-panels, and they import only this."""

from __future__ import annotations

import textwrap
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from .layout import PANEL_WIDTH

CHAR_WIDTH = 7  # pixels per character of DearPyGui's default font (ProggyClean, monospaced, 13 px)
COLUMNS = (PANEL_WIDTH - 40) // CHAR_WIDTH  # characters that fit across the panel's body
VIDEO_PATHS = {"keyframes": "keyframes", "orbit": "orbit", "training cameras": "train"}  # label: video path
VIDEO_CAMERAS = {"pinhole": "pinhole", "360 degrees (equirectangular)": "equirectangular"}  # label: camera model


def int_inputs(*specs: tuple[str, str, int, int]) -> None:
    """Integer fields side by side: (label, tag, default, minimum) each."""
    for label, tag, default, minimum in specs:
        dpg.add_input_int(label=label, default_value=default, width=90, tag=tag, min_value=minimum, min_clamped=True)


def on_ui(state: Any, fn: Callable[[Any, Any], Any]) -> Callable[..., None]:
    """A DearPyGui callback that runs ``fn(sender, app_data)`` on the app's UI thread. DearPyGui calls callbacks
    from its own thread unless told otherwise; whichever thread calls this, the state is only touched by the UI
    thread, in the order the callbacks came."""

    def callback(sender: Any = None, app_data: Any = None, user_data: Any = None) -> None:
        state.call_on_ui(lambda: fn(sender, app_data))

    return callback


def shorten(word: str, columns: int) -> str:
    """``word`` cut in the middle to at most ``columns`` characters, keeping its end (a path keeps its file name)."""
    if len(word) <= columns:
        return word
    tail = max(1, (2 * columns) // 3)
    head = max(0, columns - tail - 3)
    return word[:head] + "..." + word[-tail:]


def fixed_lines(text: str, lines: int, columns: int = COLUMNS) -> str:
    """``text`` as exactly ``lines`` lines of at most ``columns`` characters: wrapped at spaces, words longer than a
    line (paths) and text past the last line cut in their middle, short text padded with blank lines. A text item
    showing it keeps its height, so the controls under it never move."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        words = [shorten(w, columns) for w in paragraph.split(" ")]
        out += textwrap.wrap(" ".join(words), columns, break_long_words=True, break_on_hyphens=False) or [""]
    if len(out) > lines:  # the rest goes on the last line, cut in its middle (a path's file name stays)
        out = out[: lines - 1] + [shorten(" ".join(out[lines - 1 :]), columns)]
    # an empty line takes no height in Dear ImGui (a trailing newline adds none): pad with a space
    return "\n".join(line or " " for line in out + [""] * (lines - len(out)))
