"""``ngp import SOURCE --out SCENE_DIR``: photos, a video or a COLMAP project -> a scene for ``ngp train``/``app``."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from typing import Any

from .. import cli_args as types

log = logging.getLogger(__name__)


MAX_FRAMES = 10_000  # video frames to reconstruct: matching grows with their number (sequential) or its square
MAX_FEATURES = 1 << 20  # SIFT features per image (COLMAP's default is 8192)
MAX_SEED = 2**31 - 1  # COLMAP's seed is a C int


def register(subparsers: Any, options: Any) -> None:
    """Add ``import``'s parser to ``subparsers``."""
    from ..data.importer.pipeline import DEFAULT_FRAMES
    from ..data.importer.sfm import CAMERA_MODELS, MATCHERS, SfmOptions

    d = SfmOptions()
    i = subparsers.add_parser(
        "import",
        help="make a scene from your photos, a video or a COLMAP project (structure from motion)",
        description="Make a scene (transforms.json + images) from a folder of photos, a video file or an existing "
        "COLMAP project (sparse/0 + images), with pycolmap. Then: ngp app SCENE_DIR.",
    )
    i.add_argument("source", help="a folder of images, a video file (.mp4, .mov, ...), or a COLMAP project folder")
    i.add_argument("--out", required=True, help="the scene folder to create (new or empty)")
    i.add_argument(
        "--frames",
        type=types.int_in(3, MAX_FRAMES),
        default=None,
        help=f"video: frames to take, evenly over the clip, the sharpest of each stretch (default {DEFAULT_FRAMES})",
    )
    i.add_argument(
        "--max-size",
        type=types.int_in(64, types.MAX_IMAGE_SIDE),
        default=None,
        help="SfM sees images shrunk to this longer side (faster); the scene keeps full-size images",
    )
    i.add_argument(
        "--camera-model",
        choices=CAMERA_MODELS,
        default=d.camera_model,
        help=f"lens model to fit (default {d.camera_model}; OPENCV_FISHEYE for fisheye/action cameras)",
    )
    i.add_argument(
        "--per-image-camera",
        action="store_true",
        help="fit intrinsics per image (photos from several cameras or zoom levels); default: one shared camera",
    )
    i.add_argument(
        "--matcher",
        choices=MATCHERS,
        default=d.matcher,
        help="image pairs to match: exhaustive (all pairs), sequential (neighbours in name/time order), "
        "auto (sequential for videos and more than 100 photos)",
    )
    i.add_argument(
        "--max-features",
        type=types.int_in(64, MAX_FEATURES),
        default=d.max_features,
        help=f"SIFT features per image (default {d.max_features}; matching time grows with its square)",
    )
    i.add_argument("--images", default=None, help="COLMAP project: its images folder (default: found beside the model)")
    i.add_argument("--overwrite", action="store_true", help="replace an earlier import in --out")
    i.add_argument(
        "--seed",
        type=types.int_in(0, MAX_SEED),
        default=0,
        help="COLMAP's random seed (a run repeats exactly with `ngp --threads 1 import ...`)",
    )
    i.add_argument(
        "--aabb-scale",
        type=types.aabb_scale,
        default=None,
        metavar="N",
        help="the scene box written to transforms.json, a power of two 1..128 (default: the smallest that holds "
        "99%% of the sparse points; larger for far backgrounds, rooms and outdoor scenes)",
    )
    i.add_argument("--quiet", action="store_true", help="no progress bars")
    i.set_defaults(func=run)


class _Bars:
    """One tqdm bar per stage, in percent, with the stage's note as postfix."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self.bar: Any = None
        self.stage = ""

    def __call__(self, p: Any) -> None:
        from tqdm import tqdm

        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            self.bar = tqdm(
                total=100,
                desc=f"import {p.stage}",
                unit="%",
                disable=self.disable,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}",
            )
        self.bar.n = int(round(p.fraction * 100))
        self.bar.set_postfix_str(p.message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.importer.pipeline import ImportOptions, import_scene
    from ..data.importer.sfm import SfmOptions

    sfm = SfmOptions(
        camera_model=args.camera_model,
        shared_camera=not args.per_image_camera,
        matcher=args.matcher,
        max_image_size=args.max_size,
        max_features=args.max_features,
        threads=getattr(args, "threads", None) or -1,
        seed=args.seed,
    )
    options = ImportOptions(
        frames=args.frames,
        images=Path(args.images) if args.images else None,
        overwrite=args.overwrite,
        sfm=sfm,
        aabb_scale=args.aabb_scale,
    )
    bars = _Bars(disable=args.quiet)
    cancel, finished = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = import_scene(args.source, args.out, options, progress=bars, cancel=cancel)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc
        finally:
            finished.set()

    # The import runs in a thread so that SIGINT/SIGTERM (raised in the main thread) cancel it cleanly; its end is
    # an Event, not thread.join(): an interrupted join can return at once while the thread still runs (CPython 3.9-3.12,
    # python/cpython#90882), and the process would exit before the import removed its staged files.
    thread = threading.Thread(target=work, name="ngp-import", daemon=True)
    thread.start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as Interrupted: reported by the caller once the import cleaned up
        wait_for_cleanup(cancel, finished)
        raise
    finally:
        bars.close()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    s = result.summary
    log.info(
        "%s: %d of %d images registered, %d sparse points, reprojection error %.2f px, aabb_scale %d; next: ngp app %s",
        result.scene,
        s["registered"],
        s["images"],
        s["points"],
        s["reprojection_error_px"],
        s["aabb_scale"],
        result.scene,
    )
    print(
        json.dumps(
            {
                "scene": str(result.scene),
                **{
                    k: s[k]
                    for k in ("images", "registered", "points", "reprojection_error_px", "aabb_scale", "seconds")
                },
                **{k: s[k] for k in ("verdict", "verdict_problems", "checks") if k in s},
                **{k: s[k] for k in ("skipped", "camera_per_photo", "aabb_scale_suggested", "unfold") if k in s},
            }
        )
    )
    return 0


def wait_for_cleanup(cancel: threading.Event, finished: threading.Event, patience: int = 2) -> None:
    """Cancel the import and wait until it has removed what it made (its worker killed, its staging folder gone).
    Further signals meanwhile are absorbed; only the ``patience``-th more one gives up waiting."""
    cancel.set()
    extra = 0
    while True:
        try:
            if finished.wait(0.2):
                return
        except KeyboardInterrupt:
            extra += 1
            if extra >= patience:
                log.warning("leaving without waiting for the import to clean up")
                return
            log.warning("stopping the import and removing its files (another signal leaves at once)")
