"""Window placement, remembered positions and the panel's file browser: the logic behind the windows, tested
without a display (issue 10: "Awkward" list, and item 3)."""

from __future__ import annotations

from pathlib import Path

from ngp_app.gui.filebrowser import FileBrowser
from ngp_app.gui.layout import Rect, choose_layout, initial_layout, load_positions, save_positions


def test_panel_sits_beside_the_viewport_on_a_1920x1080_screen():
    panel, view = initial_layout(1920, 1080, 1920, 1080)
    assert not panel.overlaps(view) and panel.x == 0 and view.x >= panel.x + panel.width
    assert view.x + view.width <= 1920 and view.y + view.height <= 1080
    assert abs(view.width / view.height - 16 / 9) < 0.01  # shrunk with its aspect kept
    panel, view = initial_layout(3840, 2160, 1920, 1080)
    assert (view.width, view.height) == (1920, 1080) and not panel.overlaps(view)  # room enough: as asked


def test_remembered_positions_are_used_when_on_screen(tmp_path):
    f = tmp_path / "windows.json"
    save_positions({"panel": Rect(1400, 50, 480, 900), "viewport": Rect(10, 20, 1280, 720)}, f)
    remembered = load_positions(f)
    assert remembered["viewport"] == Rect(10, 20, 1280, 720)
    panel, view = choose_layout(1920, 1080, None, remembered)
    assert panel == Rect(1400, 50, 480, 900) and view == Rect(10, 20, 1280, 720)
    panel, view = choose_layout(1920, 1080, (640, 360), remembered)  # --size wins over the remembered size
    assert (view.x, view.y, view.width, view.height) == (10, 20, 640, 360)
    far = {"panel": Rect(5000, 50, 480, 900), "viewport": Rect(-3000, 0, 800, 600)}  # a screen no longer there
    assert choose_layout(1920, 1080, None, far) == initial_layout(1920, 1080, 1920, 1080)
    (tmp_path / "bad.json").write_text("{not json")
    assert load_positions(tmp_path / "bad.json") == {} and load_positions(tmp_path / "none.json") == {}


def test_file_browser_lists_folders_first_and_takes_typed_paths_as_typed(tmp_path):
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "transforms.json").write_text("{}")
    (tmp_path / "snap.npz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / ".hidden").mkdir()
    b = FileBrowser(tmp_path, extensions=(".json", ".npz"))
    assert [e.label for e in b.entries()] == ["scene/", "snap.npz"]
    assert b.go("scene") and b.folder == tmp_path / "scene"
    assert b.resolve("transforms.json") == tmp_path / "scene" / "transforms.json"  # no extension swapped in
    assert b.resolve("transforms") == tmp_path / "scene" / "transforms"  # nor added
    assert b.resolve(str(tmp_path / "snap.npz")) == tmp_path / "snap.npz" and b.resolve("") == b.folder
    assert b.resolve("~") == Path.home()
    assert not b.go("transforms.json") and b.folder == tmp_path / "scene"
    b.up()
    assert b.folder == tmp_path
