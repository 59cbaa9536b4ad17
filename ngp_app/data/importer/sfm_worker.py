"""The SfM child process: ``python -m ngp_app.data.importer.sfm_worker JOB.json`` runs pycolmap's feature
extraction, matching and incremental mapping, and writes the largest model to ``WORK/model``. It exits as soon as
its caller is gone.

It reports on stdout, one JSON object a line: ``{"stage": S}`` when a stage starts, ``{"registered": k}`` per
image the mapper adds, ``{"done": true, "registered": k, "models": m}`` at the end, or ``{"error": "..."}``.
It runs apart from the caller because COLMAP's SQLite must not share a process with another SQLite reading the
same database (the caller polls it for progress), and so that a crash or a cancel (terminate) cannot take the
caller (the app) down with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def run(job: dict[str, Any]) -> None:
    import pycolmap

    pycolmap.logging.minloglevel = 0 if job.get("verbose") else 2
    pycolmap.set_random_seed(int(job["seed"]))
    work, images = Path(job["work"]), Path(job["images"])
    database = work / "database.db"
    names: list[str] = job["names"]
    threads = int(job["threads"])

    emit(stage="features")
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = job["camera_model"]
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    extraction.sift.max_num_features = int(job["max_features"])
    if job.get("max_image_size"):
        extraction.max_image_size = int(job["max_image_size"])
    mode = pycolmap.CameraMode.SINGLE if job["shared_camera"] else pycolmap.CameraMode.PER_IMAGE
    pycolmap.extract_features(
        database,
        images,
        image_names=names,
        camera_mode=mode,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )

    emit(stage="matching")
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    if job["matcher"] == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
    else:  # neighbours in order plus keyframes: the pairs the caller listed in pairs.txt
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = work / "pairs.txt"
        pycolmap.match_image_pairs(
            database, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu
        )

    emit(stage="mapping")
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = threads
    mapping.random_seed = int(job["seed"])
    mapping.min_model_size = int(job["min_model_size"])
    count = [0]

    def next_image() -> None:
        count[0] += 1
        emit(registered=count[0])

    models = pycolmap.incremental_mapping(
        database, images, work / "sparse", options=mapping, next_image_callback=next_image
    )
    best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    if best is not None:
        (work / "model").mkdir(parents=True, exist_ok=True)
        best.write(work / "model")
    emit(done=True, registered=best.num_reg_images() if best is not None else 0, models=len(models))


def die_with_parent(parent_pid: int) -> None:
    """Exit when the caller is gone (killed before it could terminate us), so no orphan keeps the CPU busy:
    PR_SET_PDEATHSIG on Linux, and everywhere a thread that watches for being re-parented."""
    import os
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="ngp-sfm-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    try:
        job = json.loads(Path(argv[0]).read_text())
        if job.get("parent_pid"):
            die_with_parent(int(job["parent_pid"]))
        run(job)
    except Exception as exc:  # reported to the parent as one line
        emit(error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
