"""An idle app draws nothing and gives the CPU back, and wakes at once for a person's input (issue 17: "the idle UI
redraws both windows at full rate"). Real X events from xdotool while ``App.run`` runs the main loop. Its own file:
the app's DearPyGui context can exist once per process. The CPU figure itself is a benchmark
(scripts/bench_idle_app.py, docs/benchmarks.md), not asserted here."""

from __future__ import annotations

import threading
import time

import pytest
from gui_support import click, require_app, xdotool

pytestmark = pytest.mark.gui
require_app(tools=("xdotool",))


def later(seconds: float, fn) -> threading.Thread:
    """Do ``fn`` (a person's action) from another thread after ``seconds``, while the main loop runs."""

    def act() -> None:
        time.sleep(seconds)
        fn()

    t = threading.Thread(target=act, daemon=True)
    t.start()
    return t


def test_the_idle_app_sleeps_and_input_wakes_it():
    import dearpygui.dearpygui as dpg

    from ngp_app.gui.app import IDLE_REDRAW_SECONDS, App

    app = App(None, config="small", device="cpu", backend="torch", size=(480, 270), remember_windows=False)
    try:
        assert app.pump(30, until=lambda: not app.busy())
        app.pump(0.5)
        f0 = app.frames
        app.run(4.0)
        idle = app.frames - f0
        assert idle <= 4.0 / IDLE_REDRAW_SECONDS + 3, idle  # a redraw every 2 s, not one per display refresh
        # a key in the viewport is handled at once and the windows redraw
        win = app.viewport.window
        hud = app.state.settings.show_hud
        f0 = app.frames
        later(1.0, lambda: xdotool("windowfocus", "--sync", win._window, "key", "Tab"))
        t0 = time.perf_counter()
        app.run(3.0)
        assert app.state.settings.show_hud != hud and app.frames - f0 > 10, app.frames - f0
        assert time.perf_counter() - t0 < 3.5
        # a click on a panel checkbox while idle: the panel wakes and the click lands
        app.run(2.5)  # idle again
        vx, vy = dpg.get_viewport_pos()
        (x0, y0), (x1, y1) = dpg.get_item_rect_min("hud"), dpg.get_item_rect_max("hud")
        point = int(vx + (x0 + x1) / 2), int(vy + (y0 + y1) / 2)
        hud = app.state.settings.show_hud
        later(1.0, lambda: click(*point))
        app.run(3.0)
        assert app.state.settings.show_hud != hud
    finally:
        app.close()
