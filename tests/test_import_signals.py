"""``ngp import`` under signals, as real processes (issue 22 items 5-8): Ctrl-C and SIGTERM during SfM wait for the
import's cleanup (``--out`` as it was, one ``ngp: interrupted`` line, no stack dump); an import killed with SIGKILL
leaves nothing that blocks the next one, which removes its leftover and says so; pycolmap never loads in the
importing process, so its C-level signal handlers never replace ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from tests.bad_inputs import ROOT
from tests.test_import import project, tree_bytes

pytest.importorskip("pycolmap")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; POSIX signals")

ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
# what a C-level handler (glog's) prints instead of ours
STACK_DUMP = ("*** ", "Traceback", "@ 0x", "PC: ")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Eight noise photos: SIFT keeps the worker busy for seconds, then nothing matches (the import would fail)."""
    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):
        iio.imwrite(folder / f"{i}.png", rng.integers(0, 255, size=(400, 400, 3), dtype=np.uint8))
    return folder


def sfm_workers(out: Path) -> list[int]:
    """Pids of the SfM worker processes working for an import into ``out``."""
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmd.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "sfm_worker" in text and str(out) in text:
            found.append(int(cmd.parent.name))
    return found


def start_import(photos: Path, out: Path, *more: str) -> subprocess.Popen:
    """``ngp import`` as a process, returned once its SfM worker runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngp_app", "import", str(photos), "--out", str(out), "--quiet", *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    end = time.time() + 120
    while not sfm_workers(out) and proc.poll() is None and time.time() < end:
        time.sleep(0.05)
    if not sfm_workers(out):
        proc.kill()
        pytest.fail(f"the SfM worker never started: {proc.communicate()[1]}")
    time.sleep(0.5)  # the worker is importing pycolmap or extracting features
    return proc


def gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether all ``pids`` have exited (within ``timeout``)."""
    end = time.time() + timeout
    while time.time() < end:
        if not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.parametrize(
    "sig,code,existing", [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_during_import_cleans_up_and_exits(
    photos: Path, tmp_path: Path, sig: int, code: int, existing: bool
) -> None:
    """Items 6 and 7: the signal stops the worker, the staged files go, --out is as it was before (a new one gone,
    an earlier import byte for byte), and stderr is one ``ngp: interrupted`` line."""
    out = tmp_path / "scene"
    if existing:  # an earlier import, which --overwrite would replace only once the new one is complete
        from ngp_app.data.importer import import_scene

        import_scene(project(tmp_path / "project"), out)
    before = tree_bytes(out) if existing else None
    proc = start_import(photos, out, *(["--overwrite"] if existing else []))
    workers = sfm_workers(out)
    try:
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert lines == [f"ngp: interrupted ({signal.Signals(sig).name})"], stderr
    assert not any(mark in stderr for mark in STACK_DUMP)
    assert gone(workers), "the SfM worker outlived the import"
    if existing:
        assert tree_bytes(out) == before and not [p for p in out.iterdir() if p.name.startswith(".")]
    else:
        assert not out.exists()


def test_after_a_killed_import_the_next_one_removes_its_leftover(photos: Path, tmp_path: Path) -> None:
    """Item 8: an import killed with SIGKILL leaves its staging folder (its worker dies with it); the next import into
    the same --out succeeds, says it removed the leftover of a killed import, and keeps no hidden files."""
    out = tmp_path / "scene"
    proc = start_import(photos, out)
    workers = sfm_workers(out)
    proc.kill()
    proc.communicate(timeout=30)
    assert gone(workers), "the SfM worker outlived its killed caller"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".ngp-import-")]
    assert leftovers == [f".ngp-import-{proc.pid}-" + leftovers[0].rsplit("-", 1)[1]]
    res = subprocess.run(
        [sys.executable, "-m", "ngp_app", "import", str(project(tmp_path / "project")), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert f"removed {out / leftovers[0]}, the leftover of an import that was killed" in res.stderr
    assert f"process {proc.pid} is gone" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["images", "sparse", "sparse_points.ply", "transforms.json"]


def test_a_running_imports_files_are_never_removed(tmp_path: Path) -> None:
    """Only staging folders whose process is gone are removed: one named by a live process stays (and does not block
    the import); one of a dead process goes."""
    from ngp_app.data.importer import import_scene

    out = tmp_path / "scene"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = out / f".ngp-import-{os.getppid()}-abc"  # the process that runs pytest: alive
    killed = out / f".ngp-import-{dead.pid}-def"
    for folder in (live, killed):
        folder.mkdir()
        (folder / "database.db").write_bytes(b"x")
    import_scene(project(tmp_path / "project"), out)
    assert live.is_dir() and (live / "database.db").read_bytes() == b"x"
    assert not killed.exists()
    assert (out / "transforms.json").is_file()


def test_pycolmap_never_loads_in_the_importing_process(photos: Path, tmp_path: Path) -> None:
    """Items 5 and 7: reading a COLMAP project, SfM (here failing) and the conversion all run in the worker process;
    after them pycolmap is still not in the importing process (so the app's and ngp's signal handlers stay ours)."""
    code = f"""
import signal, sys
import ngp_app.data.importer as importer
from ngp_app.errors import ImportFailed
handlers = {{s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}}
importer.import_scene({str(project(tmp_path / "project"))!r}, {str(tmp_path / "a")!r})
try:
    importer.import_scene({str(photos)!r}, {str(tmp_path / "b")!r})
except ImportFailed as exc:
    assert "reconstruction failed" in str(exc), exc
assert "pycolmap" not in sys.modules, "pycolmap loaded in the importing process"
assert handlers == {{s: signal.getsignal(s) for s in handlers}}
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=240)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "ok", res.stderr
    assert (tmp_path / "a" / "transforms.json").is_file()
