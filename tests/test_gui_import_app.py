"""The real app importing a dropped photo folder (SfM in the background, progress in the panel and HUD, then the
scene trains), and refusing a text file and an empty folder while it keeps running. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_import_app.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gui_support import empty_app, require_app

pytestmark = pytest.mark.gui

require_app("pycolmap")

from pyglet.window import key  # noqa: E402

from ngp_app.cli import main  # noqa: E402
from ngp_app.gui.importing import SCENE_SUFFIX  # noqa: E402


@pytest.fixture(scope="module")
def app():
    yield from empty_app(4)


def drop(app, path: Path) -> None:
    app.viewport.window.dispatch_event("on_file_drop", 10, 10, [str(path)])
    app.tick()


def test_text_files_and_empty_folders_are_refused(app, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a scene")
    drop(app, tmp_path / "notes.txt")
    assert app.pump(30, until=lambda: app.state.status_is_error and "notes.txt" in app.state.status)
    (tmp_path / "empty").mkdir()
    drop(app, tmp_path / "empty")
    assert app.pump(30, until=lambda: app.state.status_is_error and "no photos to import" in app.state.status)
    assert not (tmp_path / f"empty{SCENE_SUFFIX}").exists()
    f = app.frames
    app.pump(0.5)
    assert app.running and app.frames > f + 5 and app.state.current.scene is None
    import dearpygui.dearpygui as dpg

    assert not dpg.is_item_shown("loss_plot")  # no empty axes without a training history


def test_dropped_photos_are_imported_then_trained(app, tmp_path: Path) -> None:
    import dearpygui.dearpygui as dpg

    capture = tmp_path / "render"
    assert (
        main(
            [
                "make-scene",
                str(capture),
                "--width",
                "320",
                "--height",
                "240",
                "--n-train",
                "36",
                "--n-val",
                "0",
                "--n-test",
                "0",
                "--backdrop",
                "--path",
                "orbit",
                "--supersample",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    photos = shutil.copytree(capture / "train", tmp_path / "photos")
    drop(app, photos)
    st = app.state
    job = st.importer.job
    assert job is not None and st.importer.out == tmp_path / f"photos{SCENE_SUFFIX}"
    row = f"job_{job.id}"
    stages: set[str] = set()

    def note() -> None:
        if job.stage:
            stages.add(job.stage.split(" ")[0])

    def progressing() -> bool:
        note()
        return job.stage.startswith(("matching", "mapping"))

    assert app.pump(300, until=progressing), st.status
    app.pump(0.2)
    # the panel shows the import as a job row (stage and percent, a bar, Cancel), the HUD lists it
    assert dpg.get_value(f"{row}_text").startswith("import photos: ") and "%" in dpg.get_value(f"{row}_text")
    assert 0.0 < dpg.get_value(f"{row}_bar") < 1.0 and dpg.is_item_shown(f"{row}_cancel")
    assert "import photos: " in app.viewport.hud_text()
    frames = app.frames

    def finished() -> bool:
        note()
        return not job.active

    assert app.pump(900, until=finished), st.status
    assert job.state == "done", job.describe()
    assert app.frames > frames + 20  # the UI kept drawing while SfM ran
    assert {"features", "matching", "mapping"} <= stages  # each takes seconds; linking 36 photos may not
    assert app.pump(300, until=lambda: st.current.meta.get("path") == str(st.importer.out) and st.step >= 3), st.status
    assert len(st.current.sparse_points[0]) > 100
    # the import's verdict on its poses stays in the panel's scene line (issue 18 item 7)
    verdict = json.loads((st.importer.out / "transforms.json").read_text())["ngp_import"]["verdict"]
    said = "import: poses look good" if verdict == "good" else "import: poses doubtful"
    shown = lambda: dpg.get_value("scene_info").replace("\n", " ")  # noqa: E731
    assert app.pump(5, until=lambda: said in shown()), shown()
    app.viewport.window.dispatch_event("on_key_press", key._7, 0)
    app.tick()
    assert st.settings.mode == "points" and "points" in st.view.overlay_names()
    assert app.pump(60, until=lambda: app.worker.latest is not None and app.worker._last_key == app.worker.view_key())
    assert app.viewport.overlay.drawn >= len(st.current.sparse_points[0])  # the points went to GL at window resolution
    # the sparse-points view draws the scene box and says how many points lie outside it (issue 18 item 2; changing
    # the box by clicks: tests/test_gui_box.py)
    assert "box" in st.view.overlay_names()
    assert app.pump(5, until=lambda: " SfM points, " in shown() and "outside the box" in shown()), shown()
