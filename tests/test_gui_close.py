"""Closing the app while a long render pass runs (issue 17 item 10): the close button's message makes both windows
go at once; the render thread finishes its pass afterwards, out of sight. Its own file: the app's DearPyGui
context can exist once per process. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_close.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gui_support import require_app

pytestmark = pytest.mark.gui

require_app(tools=("xdotool",))

ROOT = Path(__file__).resolve().parent.parent
X_WM = ROOT / "tests" / "x_wm.py"
TITLES = ("ngp-app viewport", "ngp-app controls")


def shown(title: str) -> bool:
    """Whether a mapped window of that title exists on the display."""
    out = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", f"^{title}$"], capture_output=True, text=True, timeout=10
    )
    return bool(out.stdout.split())


def test_closing_hides_both_windows_at_once_while_a_render_pass_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    from ngp_app.gui.app import App

    app = App(ROOT / "scenes" / "demo", config="small", device="cpu", backend="torch", size=(480, 270))
    renders: list[list[float]] = []  # [start, end (0 while running), pixels] of each viewport render
    real = app.state.view.render_view

    def timed(width, height, *args, **kwargs):
        span = [time.perf_counter(), 0.0, float(width * height)]
        renders.append(span)
        try:
            return real(width, height, *args, **kwargs)
        finally:
            span[1] = time.perf_counter()

    app.state.view.render_view = timed
    gone_at: list[float] = []
    try:
        st = app.state
        assert app.pump(120, until=lambda: st.trainer is not None), st.status
        st.runner.stop()
        st.reset_training()  # an untrained model, every cell occupied: a full-size pass takes seconds on a CPU
        st.settings.resolution_scale = 1.0

        def long_render_running() -> bool:  # a pass that has run for a while and goes on
            return any(end == 0.0 and time.perf_counter() - start > 0.5 for start, end, _ in renders)

        assert app.pump(120, until=long_render_running), renders[-3:]
        view = subprocess.run(["xdotool", "search", "--name", f"^{TITLES[0]}$"], capture_output=True, text=True)
        subprocess.run([sys.executable, str(X_WM), "close", view.stdout.split()[-1]], check=True, timeout=10)
        assert app.pump(10, until=lambda: not app.running)  # the close button's message ends the loop
        t0 = time.perf_counter()
        in_flight = [r for r in renders if r[1] == 0.0]

        def watch() -> None:
            while time.perf_counter() < t0 + 30 and any(shown(t) for t in TITLES):
                time.sleep(0.02)
            gone_at.append(time.perf_counter())

        watcher = threading.Thread(target=watch)
        watcher.start()
    finally:
        app.close()
    closed_at = time.perf_counter()
    watcher.join(40)
    assert in_flight, "no render pass was running when the app closed"
    assert gone_at and gone_at[0] - t0 < 1.0, (gone_at[0] - t0, closed_at - t0)
    # the pass that was running went on after the windows had gone: the close did not wait for it to show them
    assert in_flight[0][1] > gone_at[0] or closed_at - t0 < 1.0, (in_flight[0][1] - t0, gone_at[0] - t0)
