"""Structure from motion with pycolmap (COLMAP's own bindings, no external binary): SIFT features, exhaustive or
sequential matching, incremental mapping; the largest model wins.

pycolmap runs only in a child process (``sfm_worker``): it is never imported here, so its C-level signal handlers
can never replace the caller's (``ngp``'s SIGTERM handling, the app's). Its calls block without progress callbacks
(mapping has one per registered image), so this side counts the rows of the SQLite database COLMAP writes (WAL mode:
readers in another process never block it) for the progress bar, and cancels by killing the child. The conversion of
a model into the scene's files runs in such a child too (after SfM in the same one; ``convert_model`` for a
COLMAP project's model).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import ImportFailed
from ...outputs import disk_full_error
from .progress import Reporter

log = logging.getLogger(__name__)

INSTALL_HINT = "structure from motion needs pycolmap: pip install 'ngp-app[import]' (or pip install pycolmap)"
#: Camera models SfM may fit (`--camera-model`); all map onto the loader's OpenCV / OpenCV-fisheye lenses.
CAMERA_MODELS = ("OPENCV", "OPENCV_FISHEYE", "PINHOLE", "SIMPLE_RADIAL", "SIMPLE_PINHOLE", "RADIAL")
MATCHERS = ("auto", "exhaustive", "sequential")
#: 'auto' matches every pair up to this many images (O(n^2) pairs), beyond it only neighbours in name order.
EXHAUSTIVE_MAX = 100
#: Fewer registered images than this is a failed reconstruction.
MIN_REGISTERED = 3
_TABLES = {"features": "keypoints", "matching": "matches"}


@dataclass
class SfmOptions:
    """How SfM runs. max_image_size: SIFT sees images shrunk to this longer side (keypoints come back in full
    resolution, so the scene keeps full-size images); max_features: SIFT features per image (matching time
    grows with its square); sequential_overlap, keyframes: see ``sequential_pairs``; threads: -1 for all
    cores; seed: COLMAP's random seed (a run repeats exactly only with ``threads=1``: COLMAP's worker threads
    draw their own random numbers, so with more the registered images and poses vary a little from run to run)."""

    camera_model: str = "OPENCV"
    shared_camera: bool = True
    matcher: str = "auto"
    max_image_size: int | None = None
    max_features: int = 4096
    sequential_overlap: int = 10
    keyframes: int = 10
    threads: int = -1
    seed: int = 0


def require_pycolmap() -> None:
    """ImportFailed with the one-line install hint unless pycolmap is installed (found, not imported: it runs only in
    the worker process)."""
    try:
        found = importlib.util.find_spec("pycolmap") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ImportFailed(INSTALL_HINT)


def choose_matcher(matcher: str, n_images: int, ordered: bool) -> str:
    """'exhaustive' or 'sequential' for ``matcher`` ('auto': sequential for video frames (``ordered``) and for
    large photo sets, exhaustive otherwise)."""
    if matcher not in MATCHERS:
        raise ImportFailed(f"unknown matcher {matcher!r} (choose from {', '.join(MATCHERS)})")
    if matcher != "auto":
        return matcher
    return "sequential" if ordered or n_images > EXHAUSTIVE_MAX else "exhaustive"


def sequential_pairs(n: int, overlap: int, keyframes: int = 0) -> list[tuple[int, int]]:
    """Image pairs (i, j), i < j, for images in time or name order: each with its next ``overlap``, with those
    2^k ahead (COLMAP's 'quadratic overlap'), and with ``keyframes`` images spread evenly over the whole set,
    which closes loops (an orbit's last frames see what its first did) and bridges weakly textured stretches."""
    pairs = set()
    keys = sorted({round(k * (n - 1) / max(keyframes - 1, 1)) for k in range(keyframes)}) if n > 1 else []
    for i in range(n):
        ahead = {i + j for j in range(1, overlap + 1)} | {i + (1 << k) for k in range(max(n - 1, 1).bit_length())}
        for j in ahead | set(keys):
            if j != i and 0 <= j < n:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def count_rows(database: Path, table: str) -> int | None:
    """Rows in ``table`` of the database the child is writing, or None while that can't be read.
    Never call this in a process that has the same database open through pycolmap (see the module docstring)."""
    if not database.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.05)
        try:
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None


def _worker_env() -> dict[str, str]:
    """The child's environment: ours, with this package importable however we were (PYTHONPATH, a checkout)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class WorkerRun:
    """How a worker process ended: its report lines (``events``) and exit status."""

    events: list[dict[str, Any]]
    returncode: int | None

    @property
    def final(self) -> dict[str, Any] | None:
        """The ``done`` or ``error`` report, if the worker got that far."""
        return next((e for e in self.events if e.get("done") or "error" in e), None)


def run_worker(
    job: dict[str, Any],
    work: Path,
    report: Reporter,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> WorkerRun:
    """Run ``job`` in a worker process (``sfm_worker``; its job file and stderr log in ``work``), passing each report
    line to ``on_event`` and calling ``poll`` about 4 times a second. A cancel kills the worker and raises
    ImportCancelled; so does any exception here (a signal): the worker never outlives this call."""
    work.mkdir(parents=True, exist_ok=True)
    job = {**job, "verbose": log.isEnabledFor(logging.DEBUG), "parent_pid": os.getpid()}
    job_file = work / f"{job.get('task', 'sfm')}.json"
    job_file.write_text(json.dumps(job))
    events: list[dict[str, Any]] = []
    with open(work / "colmap.log", "ab") as stderr:
        # As a module of the package (as a plain script, without torch loaded first, the reconstruction of the CI
        # capture missed the pose tolerance in 2 of 8 runs here; as a module, in none of 10). A session of its own:
        # signals for our process group (Ctrl-C at the terminal) reach us only; we stop it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "ngp_app.data.importer.sfm_worker", str(job_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_worker_env(),
            start_new_session=True,
        )

        def read_events() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.append(event)
                if on_event is not None:
                    on_event(event)

        reader = threading.Thread(target=read_events, name="ngp-sfm-events", daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                if report.cancelled:
                    break
                if poll is not None:
                    poll()
                time.sleep(0.25)
        finally:
            if proc.poll() is None:  # cancelled, or an exception (a signal) in this thread: stop it now
                proc.kill()
            proc.wait()
            reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
    report.check()
    return WorkerRun(events, proc.returncode)


def run_sfm(
    image_dir: Path,
    names: list[str],
    work: Path,
    options: SfmOptions,
    report: Reporter,
    ordered: bool = False,
    convert_to: Path | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """SfM on ``names`` (files in ``image_dir``) with a database in ``work``; the largest model goes to
    ``work/model``. ``ordered``: the names are frames of one video, in time order. ``convert_to``: the same process
    converts the model there (as ``convert_model``, ``extra`` per image name) and the conversion is returned."""
    require_pycolmap()
    if options.camera_model not in CAMERA_MODELS:
        raise ImportFailed(
            f"unsupported camera model {options.camera_model!r} (choose from {', '.join(CAMERA_MODELS)})"
        )
    n = len(names)
    matcher = choose_matcher(options.matcher, n, ordered)
    work.mkdir(parents=True, exist_ok=True)
    if matcher == "sequential":
        pairs = sequential_pairs(n, options.sequential_overlap, options.keyframes)
        (work / "pairs.txt").write_text("".join(f"{names[i]} {names[j]}\n" for i, j in pairs))
    expected = {"features": n, "matching": n * (n - 1) // 2 if matcher == "exhaustive" else len(pairs)}
    job = {
        **asdict(options),
        "task": "sfm",
        "matcher": matcher,
        "images": str(image_dir),
        "names": names,
        "work": str(work),
        "min_model_size": MIN_REGISTERED,
        "convert_out": str(convert_to) if convert_to is not None else None,
        "n_input": n,
        "extra": extra or {},
    }
    state: dict[str, Any] = {"stage": "features", "registered": 0}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("converting"):
            report("writing", 0.0, "transforms.json", force=True)
        elif "stage" in event:
            state["stage"] = event["stage"]
            note = (
                f"SIFT on {n} images"
                if event["stage"] == "features"
                else f"{expected['matching']} pairs ({matcher})"
                if event["stage"] == "matching"
                else "the path folds: mapping again from neighbouring frames only"
                if event.get("unfolding")
                else "first pair"
            )
            report(event["stage"], 0.0, note, force=True)
        elif "registered" in event and not event.get("done"):
            state["registered"] = event["registered"]
            report("mapping", min(event["registered"] / n, 0.99), f"{event['registered']}/{n} images registered")

    def poll() -> None:
        stage = state["stage"]  # once: the event thread moves it on
        table = _TABLES.get(stage)
        done = count_rows(work / "database.db", table) if table else None
        if done is not None:
            total = expected[stage]
            unit = "images" if stage == "features" else f"pairs ({matcher})"
            report(stage, min(done / max(total, 1), 0.99), f"{done}/{total} {unit}")

    ran = run_worker(job, work, report, on_event, poll)
    final = ran.final
    if final is not None and final.get("failed"):  # the model was made but cannot be converted (its cameras)
        raise ImportFailed(final["error"])
    if final is None or "error" in final:
        why = final["error"] if final else f"the SfM process died ({_exit_reason(ran.returncode)})"
        tail = _log_tail(work / "colmap.log")
        full = disk_full_error(work / "database.db", RuntimeError(f"{why} {tail}"), "the SfM database and model")
        if full is not None:  # COLMAP aborts (signal 6) when its disk fills: say so, naming where
            raise ImportFailed(str(full))
        raise ImportFailed(f"reconstruction failed during {state['stage']}: {why}" + (f" [{tail}]" if tail else ""))
    n_reg = int(final["registered"])
    if n_reg < MIN_REGISTERED:
        raise ImportFailed(
            f"reconstruction failed: {n_reg} of {n} images registered (need overlapping, sharp, "
            f"textured views; try more frames or --matcher exhaustive)"
        )
    unfold = final.get("unfold")
    if unfold:
        log.warning(
            "the camera path folded onto itself (jumps at %s); %s",
            ", ".join(unfold["jumps_all_pairs"]),
            "kept the reconstruction from neighbouring frames only"
            if unfold["kept"] == "neighbours only"
            else "mapping from neighbouring frames only did not do better",
        )
    if final["models"] > 1:
        log.warning("SfM made %d separate models; keeping the largest (%d of %d images)", final["models"], n_reg, n)
    report("mapping", 1.0, f"{n_reg}/{n} images registered")
    return json.loads((convert_to / "conversion.json").read_text()) if convert_to is not None else None


def convert_model(
    model: Path,
    out: Path,
    work: Path,
    report: Reporter,
    n_input: int | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
    shown: Path | None = None,
) -> dict[str, Any]:
    """Convert the COLMAP model in ``model`` in a worker process: ``out`` gets ``sparse/0`` (the model as COLMAP
    writes it) and the sparse points; returns ``{"transforms", "summary", "names"}`` (see ``convert.convert``).
    ``shown``: the model's path in messages. ImportFailed for an unreadable model or unsupported cameras."""
    require_pycolmap()
    out.mkdir(parents=True, exist_ok=True)
    job = {
        "task": "convert",
        "model": str(model),
        "out": str(out),
        "n_input": n_input,
        "extra": extra or {},
        "shown": str(shown or model),
    }
    ran = run_worker(job, work, report)
    final = ran.final
    if final is None or "error" in final:
        if final is not None and final.get("failed"):
            raise ImportFailed(final["error"])
        why = final["error"] if final else f"the process died ({_exit_reason(ran.returncode)})"
        full = disk_full_error(out / "sparse", RuntimeError(why), "the converted model")
        if full is not None:
            raise ImportFailed(str(full))
        raise ImportFailed(f"{shown or model}: converting the COLMAP model failed: {why}")
    return json.loads((out / "conversion.json").read_text())


def _exit_reason(code: int | None) -> str:
    return f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"


def _log_tail(path: Path) -> str:
    """COLMAP's last error line from the child's stderr, if any."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith(("E", "F", "Check failed", "***"))]
    return (errors or lines or [""])[-1][:200]
