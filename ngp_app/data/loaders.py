"""Scene loaders: instant-ngp / nerfstudio ``transforms.json`` and NeRF-synthetic (Blender) folders.

A single ``transforms.json`` is split by frame index in the file: every 8th frame (index % 8 == 0) is held out
for evaluation (``test``), the rest train; Blender folders use their own ``transforms_{split}.json`` files.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SceneError
from ..schema import read_json, validate
from ..schema.transforms import FISHEYE_MODELS, MAX_FOV_DEG, Transforms
from .cameras import FISHEYE, NERF_OFFSET, NERF_SCALE, OPENCV, nerf_to_ngp
from .images import decode_workers, find_image, load_image
from .scene import Scene

log = logging.getLogger(__name__)

HOLDOUT_EVERY = 8
SPLITS = ("train", "val", "test", "all")


def resolve_scene(path: str | Path, split: str) -> tuple[Path, str, list[tuple[Path, str]]]:
    """Find the transforms file(s) for ``split``. Returns the scene root, its format ('blender' or 'transforms')
    and (json path, frame selection) pairs, selection being 'all', 'train' or 'test' (the holdout rule)."""
    p = Path(path)
    if split not in SPLITS:
        raise SceneError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    if not p.exists():
        raise SceneError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() != ".json":
            raise SceneError(f"{p}: not a scene (expected a folder or a transforms .json file)")
        return p, "transforms", [(p, split)]
    blender = {s: p / f"transforms_{s}.json" for s in ("train", "val", "test")}
    if blender["train"].is_file():
        if split == "all":
            files = [(f, "all") for f in blender.values() if f.is_file()]
        else:
            chosen = blender[split] if blender[split].is_file() else None
            if chosen is None and split == "test" and blender["val"].is_file():
                chosen = blender["val"]
            if chosen is None:
                raise SceneError(f"{p}: has no transforms_{split}.json")
            files = [(chosen, "all")]
        return p, "blender", files
    single = p / "transforms.json"
    if single.is_file():
        return p, "transforms", [(single, split)]
    raise SceneError(f"{p}: not a scene (no transforms.json or transforms_train.json in this folder)")


def read_transforms(path: Path) -> dict[str, Any]:
    """Read a transforms file and check it against the schema (:mod:`ngp_app.schema.transforms`): syntax errors,
    wrong types and out-of-range values are one-line :class:`SceneError` naming the file and the key."""
    data = read_json(path, SceneError)
    validate(Transforms, data, str(path), SceneError)
    return data


def frame_intrinsics(meta: dict[str, Any], width: int, height: int, where: str) -> tuple[list[float], list[float]]:
    """fx, fy, cx, cy and the distortion (k1, k2, k3, k4, p1, p2, model; see ``cameras.as_distortion``) of a frame
    from top-level keys merged with its overrides (``meta`` checked by the transforms schema)."""
    fx = fy = None
    if "fl_x" in meta:
        fx = float(meta["fl_x"])
    elif "camera_angle_x" in meta:
        fx = 0.5 * width / math.tan(0.5 * float(meta["camera_angle_x"]))
    if "fl_y" in meta:
        fy = float(meta["fl_y"])
    elif "camera_angle_y" in meta:
        fy = 0.5 * height / math.tan(0.5 * float(meta["camera_angle_y"]))
    if fx is None and fy is None:
        raise SceneError(f"{where}: no focal length (fl_x/fl_y or camera_angle_x/camera_angle_y)")
    fx = fx if fx is not None else fy
    fy = fy if fy is not None else fx
    cx = float(meta.get("cx", width / 2.0))
    cy = float(meta.get("cy", height / 2.0))
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        raise SceneError(f"{where}: principal point ({cx:g}, {cy:g}) is far outside the {width}x{height} image")
    model = camera_model(meta)
    dist = [float(meta.get(k, 0.0)) for k in ("k1", "k2", "k3", "k4", "p1", "p2")] + [float(model)]
    if model == FISHEYE and (dist[4] != 0.0 or dist[5] != 0.0):
        raise SceneError(f"{where}: a fisheye camera has no tangential distortion (p1, p2)")
    if model == OPENCV:  # a pinhole's field of view must stay below 180 degrees, or rays leave sideways
        fov = math.degrees(2.0 * max(math.atan(0.5 * width / fx), math.atan(0.5 * height / fy)))  # type: ignore[operator]
        if fov > MAX_FOV_DEG:
            raise SceneError(
                f"{where}: a field of view of {fov:.2f} degrees (focal length {min(fx, fy):.4g} px for "  # type: ignore[type-var]
                f"{width}x{height}); a perspective camera needs less than {MAX_FOV_DEG:g}"
            )
    return [fx, fy, cx, cy], dist  # type: ignore[list-item]


def camera_model(meta: dict[str, Any]) -> int:
    """OPENCV (0) or FISHEYE (1) from ``camera_model`` (a name the schema knows) / ``is_fisheye``."""
    name = meta.get("camera_model")
    if name is None:
        return FISHEYE if meta.get("is_fisheye") is True else OPENCV
    return FISHEYE if name.upper() in FISHEYE_MODELS else OPENCV


def frame_entries(
    files: list[tuple[Path, str]],
) -> tuple[list[tuple[Path, dict[str, Any], str]], list[str], dict[str, Any]]:
    """The frames of ``resolve_scene``'s (json, selection) pairs whose image exists: (image, merged meta, where)
    each, the file paths of those whose image is missing, and the first file's top-level keys."""
    entries: list[tuple[Path, dict[str, Any], str]] = []
    missing: list[str] = []
    top_level: dict[str, Any] = {}
    for json_path, selection in files:
        data = read_transforms(json_path)
        top = {k: v for k, v in data.items() if k != "frames"}
        top_level = top_level or top
        root = json_path.parent
        for i, frame in enumerate(data["frames"]):
            where = f"{json_path}: frames[{i}]"
            held_out = i % HOLDOUT_EVERY == 0
            if selection == "train" and held_out or selection in ("test", "val") and not held_out:
                continue
            image = find_image(root, frame["file_path"])
            if image is None:
                missing.append(str(frame["file_path"]))
                continue
            entries.append((image, {**top, **frame}, f"{where} ({frame['file_path']})"))
    return entries, missing, top_level


def held_out_frames(path: str | Path) -> int:
    """How many frames of the scene at ``path`` are held out of training for evaluation (its ``test`` split, every
    8th frame of a single transforms.json) and have their image; 0 when it has none."""
    try:
        return len(frame_entries(resolve_scene(path, "test")[2])[0])
    except SceneError:
        return 0


def load_scene(
    path: str | Path,
    split: str = "train",
    downscale: int = 1,
    max_size: int | None = None,
    workers: int = 2,
    progress: bool = False,
) -> Scene:
    """Load one split of a scene folder or transforms file.

    downscale: integer factor to shrink images by; max_size: shrink further so the longer side is at most this.
    Frames whose image is missing are skipped with one warning; a split with no usable frame is an error.
    """
    if downscale < 1:
        raise SceneError(f"--downscale must be >= 1, got {downscale}")
    root_path, fmt, files = resolve_scene(path, split)
    entries, missing, top_level = frame_entries(files)
    if missing:
        log.warning("%s: skipped %d frame(s) whose image is missing (e.g. %s)", root_path, len(missing), missing[0])
    if not entries:
        raise SceneError(
            f"{root_path}: no usable frame in split {split!r}"
            + (f" ({len(missing)} images missing)" if missing else "")
        )

    def load_one(entry: tuple[Path, dict[str, Any], str]) -> tuple[np.ndarray, list[float], list[float], np.ndarray]:
        image_path, meta, where = entry
        full: list[int] = []

        def target_size(w: int, h: int) -> tuple[int, int]:
            jw, jh = meta.get("w"), meta.get("h")
            if jw is not None and jh is not None and (int(jw), int(jh)) != (w, h):
                raise SceneError(f"{image_path}: image is {w}x{h} but the transforms file says {int(jw)}x{int(jh)}")
            full[:] = [w, h]
            factor = float(downscale)
            if max_size is not None and max(w, h) / factor > max_size:
                factor = max(w, h) / float(max_size)
            return max(1, int(round(w / factor))), max(1, int(round(h / factor)))

        img = load_image(image_path, target_size)
        (w, h), (nh, nw) = full, img.shape[:2]
        intr, dist = frame_intrinsics(meta, w, h, where)
        sx, sy = nw / w, nh / h
        intr = [intr[0] * sx, intr[1] * sy, intr[2] * sx, intr[3] * sy]
        matrix = np.asarray(meta["transform_matrix"], dtype=np.float64)  # finite 4x4 or 3x4 (schema)
        return img, intr, dist, matrix

    scale = float(top_level.get("scale", NERF_SCALE))  # ranges checked by the schema
    offset = tuple(float(v) for v in top_level.get("offset", NERF_OFFSET))
    aabb_scale = float(top_level.get("aabb_scale", 1))

    iterator: Any
    workers = decode_workers(entries[0][0], downscale > 1 or max_size is not None, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        iterator = pool.map(load_one, entries)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(entries), desc=f"loading {split}", unit="img", leave=False)
        loaded = list(iterator)

    n_channels = 4 if any(img.shape[2] == 4 for img, *_ in loaded) else 3
    pixels, offsets, widths, heights, c2ws, intrs, dists = [], [], [], [], [], [], []
    start = 0
    for img, intr, dist, matrix in loaded:
        if img.shape[2] < n_channels:
            img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
        h, w = img.shape[:2]
        pixels.append(torch.from_numpy(np.ascontiguousarray(img)).view(-1, n_channels))
        offsets.append(start)
        start += h * w
        widths.append(w)
        heights.append(h)
        c2ws.append(nerf_to_ngp(matrix, scale, offset))  # type: ignore[arg-type]
        intrs.append(intr)
        dists.append(dist)
    return Scene(
        path=root_path,
        split=split,
        pixels=torch.cat(pixels),
        image_offsets=torch.tensor(offsets, dtype=torch.int64),
        widths=torch.tensor(widths, dtype=torch.int64),
        heights=torch.tensor(heights, dtype=torch.int64),
        c2w=torch.tensor(np.stack(c2ws), dtype=torch.float32),
        intrinsics=torch.tensor(intrs, dtype=torch.float32),
        distortion=torch.tensor(dists, dtype=torch.float32),
        file_names=[str(e[0]) for e in entries],
        aabb_scale=aabb_scale,
        scale=scale,
        offset=offset,  # type: ignore[arg-type]
        fmt=fmt,
        info={"n_missing": len(missing)},
    )
