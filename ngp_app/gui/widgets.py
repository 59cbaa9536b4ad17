"""Widgets and labels shared by the control panel and its sub-panels (``panel.py``, ``panel_path.py``,
``panel_images.py``): the panel imports its sub-panels, and they import only this."""

from __future__ import annotations

from typing import Any, Callable

import dearpygui.dearpygui as dpg

VIDEO_PATHS = {"keyframes": "keyframes", "orbit": "orbit", "training cameras": "train"}  # label: video path


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
