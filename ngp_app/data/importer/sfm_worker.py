"""The pycolmap child process: ``python -m ngp_app.data.importer.sfm_worker JOB.json``. Every pycolmap call of an
import runs here, never in the caller. Task ``sfm`` runs feature extraction, matching and incremental mapping and
writes the largest model to ``WORK/model``; task ``convert`` reads a model and writes the scene's files (``sparse/0``,
the sparse points, ``conversion.json``: transforms, summary, posed image names) into ``out``. It exits as soon as its
caller is gone.

It reports on stdout, one JSON object a line: ``{"stage": S}`` when a stage starts, ``{"registered": k}`` per
image the mapper adds, ``{"done": true, ...}`` at the end, or ``{"error": "...", "failed": bool}`` (``failed``: a
user-facing ImportFailed, its message as it is). It runs apart from the caller because COLMAP's SQLite must not share
a process with another SQLite reading the same database (the caller polls it for progress), so that a crash or a
cancel (kill) cannot take the caller (the app) down with it, and because pycolmap's logging library (glog) installs
C-level SIGTERM/SIGSEGV handlers that would replace the caller's: here they replace only this process's, which ignores
SIGINT and runs in its own session (the caller alone decides when it stops).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PAIR_ID_BASE = 2147483647  # COLMAP's pair id: image_id1 * PAIR_ID_BASE + image_id2, image_id1 < image_id2


def emit(**event: Any) -> None:
    """One report line to the caller."""
    print(json.dumps(event), flush=True)


def convert_model(job: dict[str, Any]) -> int:
    """Read the model at ``job["model"]`` and write the scene's files into ``job["out"]`` (see the module docstring);
    returns the number of posed images."""
    import pycolmap

    from ...errors import ImportFailed
    from .convert import POINTS_FILE, convert, registered_images
    from .points import write_points_ply

    pycolmap.logging.minloglevel = 0 if job.get("verbose") else 2
    model, out = Path(job["model"]), Path(job["out"])
    try:
        rec = pycolmap.Reconstruction(model)
    except Exception as exc:  # pycolmap raises ValueError/RuntimeError for unreadable models
        raise ImportFailed(f"{job.get('shown', model)}: cannot read the COLMAP model ({exc})") from None
    names = [im.name for im in registered_images(rec)]
    conv = convert(rec, job.get("n_input") or len(names), job.get("extra") or {})
    conv.summary.update(job.get("summary_extra") or {})
    (out / "sparse" / "0").mkdir(parents=True, exist_ok=True)
    rec.write(out / "sparse" / "0")
    write_points_ply(out / POINTS_FILE, conv.points, conv.colors)
    (out / "conversion.json").write_text(
        json.dumps({"transforms": conv.transforms, "summary": conv.summary, "names": names})
    )
    return len(names)


def run(job: dict[str, Any]) -> None:
    """Task ``sfm``: features, matching, mapping; the largest model to ``WORK/model``, and converted into
    ``job["convert_out"]`` (when given and the model is large enough: saves starting a second process)."""
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
    unfold: dict[str, Any] | None = None
    if best is not None and best.num_reg_images() >= int(job["min_model_size"]):
        best, unfold = unfold_path(best, database, images, names, int(job["sequential_overlap"]), mapping, next_image)
    if best is not None:
        (work / "model").mkdir(parents=True, exist_ok=True)
        best.write(work / "model")
    registered = best.num_reg_images() if best is not None else 0
    converted = bool(job.get("convert_out")) and registered >= int(job["min_model_size"])
    if converted:
        emit(converting=True)
        extra = {"unfold": unfold} if unfold else None
        convert_model({**job, "model": str(work / "model"), "out": job["convert_out"], "summary_extra": extra})
    emit(done=True, registered=registered, models=len(models), converted=converted, unfold=unfold)


def path_of(rec: Any) -> tuple[Any, list[str]]:
    """A model's registered cameras in name order: camera-to-world matrices (k, 4, 4) and their image names."""
    import numpy as np

    from .conventions import colmap_to_nerf_c2w
    from .convert import registered_images

    ims = registered_images(rec)
    return np.stack([colmap_to_nerf_c2w(im.cam_from_world().matrix()) for im in ims]), [im.name for im in ims]


def keep_neighbour_pairs(database: Path, names: list[str], overlap: int) -> int:
    """Delete from ``database`` the matches of every pair of images more than ``overlap`` apart in name order (the
    verified geometries and the raw matches); returns how many pairs went."""
    import pycolmap

    from .sources import natural_key

    rank = {name: i for i, name in enumerate(sorted(names, key=natural_key))}
    db = pycolmap.Database.open(str(database))
    try:
        ranks = {im.image_id: rank.get(im.name) for im in db.read_all_images()}
        removed = 0
        for pair in list(db.read_two_view_geometries()[0]):
            a, b = divmod(int(pair), PAIR_ID_BASE)
            ra, rb = ranks.get(a), ranks.get(b)
            if ra is None or rb is None or abs(ra - rb) > overlap:
                db.delete_two_view_geometry(a, b)
                if db.exists_matches(a, b):
                    db.delete_matches(a, b)
                removed += 1
    finally:
        db.close()
    return removed


def unfold_path(
    best: Any, database: Path, images: Path, names: list[str], overlap: int, mapping: Any, next_image: Any
) -> tuple[Any, dict[str, Any] | None]:
    """When the cameras of ``best`` in name order (frames in time order) jump where neighbours barely move, SfM has
    folded the path onto itself through matches between frames far apart (repeated textures, a symmetric object:
    the beer capture, docs/import.md). Map again from the matches of neighbouring frames only (each with its next
    ``overlap``: a chain, which cannot fold) and keep that model when it registers nearly as many frames and jumps
    less. Returns the model kept and what was found (None when the path does not fold)."""
    import shutil

    import pycolmap

    from .align import pose_errors
    from .verdict import path_jumps

    c2w, order = path_of(best)
    jumps, _ = path_jumps(c2w)
    if not jumps:
        return best, None
    emit(stage="mapping", unfolding=True)
    chain_db = database.with_name("neighbours.db")
    shutil.copyfile(database, chain_db)
    removed = keep_neighbour_pairs(chain_db, names, overlap)
    models = pycolmap.incremental_mapping(
        chain_db, images, database.parent / "sparse-neighbours", options=mapping, next_image_callback=next_image
    )
    other = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    found: dict[str, Any] = {
        "jumps_all_pairs": [f"{order[i]}/{order[i + 1]}" for i in jumps],
        "pairs_dropped": removed,
        "kept": "all pairs",
    }
    if other is None:
        return best, found
    c2w2, order2 = path_of(other)
    jumps2, _ = path_jumps(c2w2)
    found["jumps_neighbours_only"] = [f"{order2[i]}/{order2[i + 1]}" for i in jumps2]
    found["registered_neighbours_only"] = other.num_reg_images()
    common = sorted(set(order) & set(order2))
    if len(common) >= 3:  # how far the two reconstructions agree (a similarity alignment of their centres)
        a = c2w[[order.index(n) for n in common]]
        b = c2w2[[order2.index(n) for n in common]]
        err = pose_errors(a, b)
        found["agreement"] = {
            "centre_error_median_pct": round(err.centre_median, 2),
            "rotation_error_median_deg": round(err.rotation_median, 2),
        }
    if other.num_reg_images() >= 0.9 * best.num_reg_images() and len(jumps2) < len(jumps):
        found["kept"] = "neighbours only"
        return other, found
    return best, found


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


def own_signals() -> None:
    """This process's signal setup: Ctrl-C at the terminal is for the caller (it stops us when it has to), so SIGINT
    is ignored, and a session of our own keeps signals sent to the caller's process group away from us."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.setsid()
    except OSError:  # already a session leader (the caller started us with start_new_session)
        pass


def main(argv: list[str]) -> int:
    """Run the job in ``argv[0]``; 0 when it finished, 1 after an error (reported on stdout)."""
    from ...errors import ImportFailed

    own_signals()
    try:
        job = json.loads(Path(argv[0]).read_text())
        if job.get("parent_pid"):
            die_with_parent(int(job["parent_pid"]))
        if job.get("task", "sfm") == "convert":
            emit(done=True, registered=convert_model(job))
        else:
            run(job)
    except ImportFailed as exc:
        emit(error=" ".join(str(exc).split()), failed=True)
        return 1
    except Exception as exc:  # reported to the parent as one line
        emit(error=f"{type(exc).__name__}: {exc}".splitlines()[0], failed=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
