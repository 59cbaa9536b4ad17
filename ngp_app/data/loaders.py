"""Scene loaders: instant-ngp / nerfstudio ``transforms.json``, NeRF-synthetic (Blender) folders and LLFF folders
(``poses_bounds.npy``, read as transforms data by ``llff.py``).

A single ``transforms.json`` (and an LLFF scene, in its image order) is split by frame index: every 8th frame
(index % 8 == 0) is held out for evaluation (``test``), the rest train; Blender folders use their own
``transforms_{split}.json`` files. Per-image masks (``masks.py``) decide which pixels train and are scored.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import SceneError
from ..schema import read_json, validate
from ..schema.transforms import FISHEYE_MODELS, MAX_FOV_DEG, Transforms
from .cameras import FISHEYE, NERF_OFFSET, NERF_SCALE, OPENCV, nerf_to_ngp
from .images import common_shrink, decode_workers, find_image, load_image, shrink_range
from .llff import POSES_FILE, choose_images, llff_transforms, poses_file
from .masks import load_keep_mask, mask_files
from .scene import KeptPixels, Scene

log = logging.getLogger(__name__)

HOLDOUT_EVERY = 8
SPLITS = ("train", "val", "test", "all")


class SceneSource(NamedTuple):
    """Where a scene split's frames come from (``resolve_scene``)."""

    root: Path  # the scene folder, or the transforms file given
    fmt: str  # 'blender', 'transforms' or 'llff'
    files: list[tuple[Path, str]]  # (transforms file or LLFF images folder, frame selection) pairs
    downscale: int  # the shrink left for the loader (an LLFF images_N folder may already be smaller)


def resolve_scene(path: str | Path, split: str, downscale: int = 1) -> SceneSource:
    """Find the transforms file(s) (or an LLFF scene's images folder, ``llff.choose_images``) for ``split``, the
    frame selection of each being 'all', 'train' or 'test' (the holdout rule)."""
    p = Path(path)
    if split not in SPLITS:
        raise SceneError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    if not p.exists():
        raise SceneError(f"{p}: no such file or folder")
    if p.is_file() and p.name == POSES_FILE:
        p = p.parent
    elif p.is_file():
        if p.suffix.lower() != ".json":
            raise SceneError(f"{p}: not a scene (expected a folder, a transforms .json file or a {POSES_FILE})")
        return SceneSource(p, "transforms", [(p, split)], downscale)
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
        return SceneSource(p, "blender", files, downscale)
    single = p / "transforms.json"
    if single.is_file():
        return SceneSource(p, "transforms", [(single, split)], downscale)
    if poses_file(p).is_file():
        images, left = choose_images(p, downscale)
        return SceneSource(p, "llff", [(images, split)], left)
    raise SceneError(f"{p}: not a scene (no transforms.json, transforms_train.json or {POSES_FILE} in this folder)")


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


def read_frames(path: Path) -> tuple[dict[str, Any], Path]:
    """The checked transforms data of a transforms file, or of an LLFF images folder (``llff.llff_transforms``),
    and the file to name in messages."""
    if path.is_dir():
        source = poses_file(path.parent)
        data = llff_transforms(path)
        validate(Transforms, data, str(source), SceneError)
        return data, source
    return read_transforms(path), path


class FrameEntry(NamedTuple):
    """A frame whose image exists: the image, its meta (top-level keys merged with the frame's), where it is
    declared (for messages) and its mask files (``masks.mask_files``)."""

    image: Path
    meta: dict[str, Any]
    where: str
    masks: list[tuple[Path, bool]]


def frame_entries(files: list[tuple[Path, str]]) -> tuple[list[FrameEntry], list[str], dict[str, Any]]:
    """The frames of ``resolve_scene``'s (file, selection) pairs whose image exists, the file paths of those whose
    image is missing, and the first file's top-level keys."""
    entries: list[FrameEntry] = []
    missing: list[str] = []
    top_level: dict[str, Any] = {}
    for json_path, selection in files:
        data, source = read_frames(json_path)
        top = {k: v for k, v in data.items() if k != "frames"}
        top_level = top_level or top
        root = source.parent
        for i, frame in enumerate(data["frames"]):
            held_out = i % HOLDOUT_EVERY == 0
            if selection == "train" and held_out or selection in ("test", "val") and not held_out:
                continue
            image = find_image(root, frame["file_path"])
            if image is None:
                missing.append(str(frame["file_path"]))
                continue
            where = f"{source}: frames[{i}] ({frame['file_path']})"
            entries.append(FrameEntry(image, {**top, **frame}, where, mask_files(root, image, frame, where)))
    return entries, missing, top_level


def held_out_frames(path: str | Path) -> int:
    """How many frames of the scene at ``path`` are held out of training for evaluation (its ``test`` split, every
    8th frame of a single transforms.json or an LLFF scene) and have their image; 0 when it has none."""
    try:
        return len(frame_entries(resolve_scene(path, "test").files)[0])
    except SceneError:
        return 0


class LoadedFrame(NamedTuple):
    """A decoded frame: pixels (H, W, C) uint8, intrinsics at that size, distortion, NeRF pose, the mask of the
    pixels that count (None: all), and its size on disk as declared (None: not declared) and as found."""

    pixels: np.ndarray
    intrinsics: list[float]
    distortion: list[float]
    matrix: np.ndarray
    mask: np.ndarray | None
    declared: tuple[int, int] | None
    actual: tuple[int, int]


def declared_size(meta: dict[str, Any]) -> tuple[int, int] | None:
    """The image size a frame's intrinsics are for (its ``w``/``h``), when it says."""
    jw, jh = meta.get("w"), meta.get("h")
    return (int(jw), int(jh)) if jw is not None and jh is not None else None


def load_frame(entry: FrameEntry, downscale: int, max_size: int | None) -> LoadedFrame:
    """Decode one frame shrunk by ``downscale`` (and to ``max_size``), with its intrinsics scaled to the result.
    A declared ``w``/``h`` larger than the image by one factor in both axes is for a larger version of it: the
    intrinsics are scaled from that size (``load_scene`` checks that the factor is the same for every image)."""
    image_path, meta, where, masks = entry
    declared = declared_size(meta)
    full: list[int] = []

    def target_size(w: int, h: int) -> tuple[int, int]:
        if declared is not None and declared != (w, h) and shrink_range(declared, (w, h)) is None:
            raise SceneError(f"{image_path}: image is {w}x{h} but the transforms file says {declared[0]}x{declared[1]}")
        full[:] = [w, h]
        factor = float(downscale)
        if max_size is not None and max(w, h) / factor > max_size:
            factor = max(w, h) / float(max_size)
        return max(1, int(round(w / factor))), max(1, int(round(h / factor)))

    img = load_image(image_path, target_size)
    (w, h), (nh, nw) = full, img.shape[:2]
    mask = load_keep_mask(masks, image_path, (w, h), (nw, nh))
    if mask is not None and not mask.any():
        names = ", ".join(p.name for p, _ in masks)
        raise SceneError(f"{where}: its mask ({names}) leaves no pixel of the {nw}x{nh} image to train on or score")
    dw, dh = declared if declared is not None else (w, h)
    intr, dist = frame_intrinsics(meta, dw, dh, where)
    sx, sy = nw / dw, nh / dh
    intr = [intr[0] * sx, intr[1] * sy, intr[2] * sx, intr[3] * sy]
    matrix = np.asarray(meta["transform_matrix"], dtype=np.float64)  # finite 4x4 or 3x4 (schema)
    return LoadedFrame(img, intr, dist, matrix, mask, declared, (w, h))


def check_declared_sizes(root: Path, entries: list[FrameEntry], loaded: list[LoadedFrame]) -> None:
    """Images smaller than their declared ``w``/``h`` are fine when every image is smaller by the same factor (the
    intrinsics were scaled, with one warning); otherwise an error naming the first image that differs."""
    pairs = [(i, f.declared, f.actual) for i, f in enumerate(loaded) if f.declared is not None]
    factor, misfit = common_shrink([d for _, d, _ in pairs], [a for _, _, a in pairs])
    if misfit is not None:
        i, (dw, dh), (w, h) = pairs[misfit]
        raise SceneError(
            f"{entries[i].image}: image is {w}x{h} but the transforms file says {dw}x{dh}, and the other images are "
            + (f"1/{factor:.4g} of their declared size" if factor > 1 else "their declared size")
        )
    if factor > 1:
        i, (dw, dh), (w, h) = next(p for p in pairs if p[1] != p[2])
        log.warning(
            "%s: w/h and the intrinsics are for images %.4g times larger than those on disk (e.g. %s is %dx%d, "
            "declared %dx%d): scaled them to the images",
            root,
            factor,
            entries[i].image.name,
            w,
            h,
            dw,
            dh,
        )


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
    root_path, fmt, files, downscale = resolve_scene(path, split, downscale)
    entries, missing, top_level = frame_entries(files)
    if missing:
        log.warning("%s: skipped %d frame(s) whose image is missing (e.g. %s)", root_path, len(missing), missing[0])
    if not entries:
        raise SceneError(
            f"{root_path}: no usable frame in split {split!r}"
            + (f" ({len(missing)} images missing)" if missing else "")
        )

    scale = float(top_level.get("scale", NERF_SCALE))  # ranges checked by the schema
    offset = tuple(float(v) for v in top_level.get("offset", NERF_OFFSET))
    aabb_scale = float(top_level.get("aabb_scale", 1))

    iterator: Any
    workers = decode_workers(entries[0].image, downscale > 1 or max_size is not None, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        iterator = pool.map(lambda e: load_frame(e, downscale, max_size), entries)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(entries), desc=f"loading {split}", unit="img", leave=False)
        loaded: list[LoadedFrame] = list(iterator)
    check_declared_sizes(root_path, entries, loaded)

    n_channels = 4 if any(f.pixels.shape[2] == 4 for f in loaded) else 3
    pixels, offsets, widths, heights, c2ws = [], [], [], [], []
    start = 0
    for f in loaded:
        img = f.pixels
        if img.shape[2] < n_channels:
            img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
        h, w = img.shape[:2]
        pixels.append(torch.from_numpy(np.ascontiguousarray(img)).view(-1, n_channels))
        offsets.append(start)
        start += h * w
        widths.append(w)
        heights.append(h)
        c2ws.append(nerf_to_ngp(f.matrix, scale, offset))  # type: ignore[arg-type]
    n_masked = sum(f.mask is not None for f in loaded)
    kept = None
    if n_masked:
        kept = KeptPixels.of_masks(
            [f.mask if f.mask is not None else np.ones(f.pixels.shape[:2], bool) for f in loaded]
        )
        share = float(kept.counts.sum()) / start
        log.info(
            "%s: %d of %d frames have masks; %.1f%% of the pixels count", root_path, n_masked, len(loaded), 100 * share
        )
    return Scene(
        path=root_path,
        split=split,
        pixels=torch.cat(pixels),
        image_offsets=torch.tensor(offsets, dtype=torch.int64),
        widths=torch.tensor(widths, dtype=torch.int64),
        heights=torch.tensor(heights, dtype=torch.int64),
        c2w=torch.tensor(np.stack(c2ws), dtype=torch.float32),
        intrinsics=torch.tensor([f.intrinsics for f in loaded], dtype=torch.float32),
        distortion=torch.tensor([f.distortion for f in loaded], dtype=torch.float32),
        file_names=[str(e.image) for e in entries],
        aabb_scale=aabb_scale,
        scale=scale,
        offset=offset,  # type: ignore[arg-type]
        fmt=fmt,
        info={"n_missing": len(missing), "n_masked": n_masked},
        kept=kept,
    )
