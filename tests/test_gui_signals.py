"""The real ``ngp app`` process under SIGTERM while it exports a video after an import (issue 22 item 5): pycolmap
never loads in the app's process (the import's worker has it), so its C-level handler cannot take SIGTERM over; the
app cancels the export, removes its partial file and exits 143 with one line. Needs a display:

    xvfb-run -a python -m pytest -m gui tests/test_gui_signals.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gui_support import require_app

pytestmark = pytest.mark.gui

require_app("pycolmap")

from tests.bad_inputs import ROOT  # noqa: E402
from tests.colmap_project import small_project  # noqa: E402

# ``ngp app --empty`` as a user starts it, scripted only up to the signal: once the loop runs, a COLMAP project is
# dropped, imported and trained for a few steps, then a long orbit video is started; the state is written to READY.
DRIVER = """
import json, sys
from pathlib import Path
from ngp_app.cli import main
from ngp_app.gui import app as gui_app

project, video, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
real_run = gui_app.App.run

def scripted(self, seconds=None):
    st = self.state
    self.viewport.window.dispatch_event("on_file_drop", 10, 10, [str(project)])
    imported = self.pump(300, until=lambda: st.current.scene is not None and st.step >= 2)
    job = st.paths.export_video(video, "orbit", 5000, 30.0, 32, 32)
    started = job is not None and self.pump(60, until=lambda: (job.fraction or 0) > 0)
    ready.write_text(json.dumps({"imported": imported, "started": started, "status": st.status,
                                 "pycolmap": "pycolmap" in sys.modules}))
    return real_run(self, seconds)

gui_app.App.run = scripted
sys.exit(main(["app", "--empty", "--device", "cpu", "--backend", "torch", "--size", "480x270"]))
"""


def test_sigterm_during_a_video_export_after_an_import(tmp_path: Path) -> None:
    project = small_project(tmp_path / "project")
    video, ready = tmp_path / "video.mp4", tmp_path / "ready.json"
    home = tmp_path / "home"  # the app remembers its windows under the user's config folder: not the real one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(project), str(video), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        end = time.time() + 420
        while not ready.exists() and proc.poll() is None and time.time() < end:
            time.sleep(0.2)
        assert ready.exists(), proc.communicate(timeout=30) if proc.poll() is not None else "no ready file in time"
        state = json.loads(ready.read_text())
        assert state["imported"] and state["started"], state
        assert not state["pycolmap"], "pycolmap was loaded in the app's process"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 143, err
    assert lines and lines[-1] == "ngp: interrupted (SIGTERM)", err
    assert not any(s in err for s in ("Traceback", "Fatal Python error", "*** SIGTERM", "Stack trace")), err
    assert not video.exists()  # cancelled: no video, and no partial file of it either
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
