"""The app remembers where its windows were after a person moves them and closes one, through real X events
(xdotool moves the windows as a window manager does; the close is the WM_DELETE_WINDOW a close button sends).
Its own file: the app's DearPyGui context can exist once per process. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_windows.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gui_support import require_app

pytestmark = pytest.mark.gui

require_app(tools=("xdotool",))

X_WM = Path(__file__).resolve().parent / "x_wm.py"


def window_id(title: str) -> int:
    out = subprocess.run(["xdotool", "search", "--name", f"^{title}$"], capture_output=True, text=True, timeout=10)
    ids = [int(w) for w in out.stdout.split()]
    assert ids, f"no window named {title}"
    return ids[-1]


def test_window_places_are_remembered_after_a_normal_close(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    from ngp_app.gui.app import App
    from ngp_app.gui.layout import Rect, choose_layout, load_positions, positions_file

    app = App(None, config="small", device="cpu", backend="torch", size=(480, 270), remember_windows=True)
    try:
        app.pump(0.5)
        view, panel = window_id("ngp-app viewport"), window_id("ngp-app controls")
        subprocess.run(["xdotool", "windowmove", str(view), "900", "500"], check=True, timeout=10)
        subprocess.run(["xdotool", "windowmove", str(panel), "30", "60"], check=True, timeout=10)

        def at(r: Rect, x: int, y: int) -> bool:
            return (r.x, r.y) == (x, y)

        assert app.pump(10, until=lambda: at(app.viewport.rect(), 900, 500) and at(app.panel.rect(), 30, 60)), (
            app.viewport.rect(),
            app.panel.rect(),
        )
        app.pump(1.5)  # the app notes where its windows are about once a second
        subprocess.run([sys.executable, str(X_WM), "close", str(view)], check=True, timeout=10)
        assert app.pump(10, until=lambda: not app.running)  # the close button's message ends the loop
    finally:
        app.close()
    assert positions_file().is_file()
    saved = load_positions()
    assert (saved["viewport"].x, saved["viewport"].y) == (900, 500), json.loads(positions_file().read_text())
    assert (saved["panel"].x, saved["panel"].y) == (30, 60)
    # the next start puts them there again
    panel_rect, view_rect = choose_layout(1920, 1080, (480, 270), load_positions())
    assert (view_rect.x, view_rect.y) == (900, 500) and panel_rect == saved["panel"] and isinstance(panel_rect, Rect)
