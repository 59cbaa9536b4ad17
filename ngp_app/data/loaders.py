"""Scene loaders: instant-ngp / nerfstudio ``transforms.json`` and NeRF-synthetic (Blender) folders.

A single ``transforms.json`` is split by frame index in the file: every 8th frame (index % 8 == 0) is held out
for evaluation (``test``), the rest train; Blender folders use their own ``transforms_{split}.json`` files.
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SceneError
from .cameras import FISHEYE, NERF_OFFSET, NERF_SCALE, OPENCV, nerf_to_ngp
from .scene import Scene

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
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


def read_json(path: Path) -> dict[str, Any]:
    """Parse a transforms file, turning syntax errors into one-line errors with the position."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SceneError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise SceneError(f"{path}: not a transforms file (needs an object with a 'frames' list)")
    return data


def find_image(root: Path, file_path: str) -> Path | None:
    """The image a frame names, trying common extensions when it has none (Blender's './train/r_0')."""
    candidate = (root / file_path).resolve()
    if candidate.is_file():
        return candidate
    if not candidate.suffix or candidate.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        for ext in IMAGE_EXTENSIONS:
            alt = candidate.with_name(candidate.name + ext)
            if alt.is_file():
                return alt
    return None


def load_image(path: Path) -> np.ndarray:
    """Read an image as (H, W, 3|4) uint8."""
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for bad files
        raise SceneError(f"{path}: cannot read image: {exc}") from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise SceneError(f"{path}: unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 2:  # grey + alpha
        img = np.concatenate([np.repeat(img[..., :1], 3, axis=2), img[..., 1:]], axis=2)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return img


def resize_image(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-style (antialiased) resize of (H, W, C) uint8 to (height, width, C)."""
    if img.shape[0] == height and img.shape[1] == width:
        return img
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    h0, w0 = img.shape[:2]
    if h0 % height == 0 and w0 % width == 0:
        out = F.avg_pool2d(t, kernel_size=(h0 // height, w0 // width))
    else:
        out = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _number(value: Any, what: str, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SceneError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise SceneError(f"{where}: {what} is not finite ({value!r})")
    return out


def frame_intrinsics(meta: dict[str, Any], width: int, height: int, where: str) -> tuple[list[float], list[float]]:
    """fx, fy, cx, cy and the distortion (k1, k2, k3, k4, p1, p2, model; see ``cameras.as_distortion``) of a frame
    from top-level keys merged with its overrides."""
    fx = fy = None
    if "fl_x" in meta:
        fx = _number(meta["fl_x"], "fl_x", where)
    elif "camera_angle_x" in meta:
        fx = 0.5 * width / math.tan(0.5 * _number(meta["camera_angle_x"], "camera_angle_x", where))
    if "fl_y" in meta:
        fy = _number(meta["fl_y"], "fl_y", where)
    elif "camera_angle_y" in meta:
        fy = 0.5 * height / math.tan(0.5 * _number(meta["camera_angle_y"], "camera_angle_y", where))
    if fx is None and fy is None:
        raise SceneError(f"{where}: no focal length (fl_x/fl_y or camera_angle_x/camera_angle_y)")
    fx = fx if fx is not None else fy
    fy = fy if fy is not None else fx
    cx = _number(meta.get("cx", width / 2.0), "cx", where)
    cy = _number(meta.get("cy", height / 2.0), "cy", where)
    model = camera_model(meta, where)
    dist = [_number(meta.get(k, 0.0), k, where) for k in ("k1", "k2", "k3", "k4", "p1", "p2")] + [float(model)]
    if model == FISHEYE and (dist[4] != 0.0 or dist[5] != 0.0):
        raise SceneError(f"{where}: a fisheye camera has no tangential distortion (p1, p2)")
    if fx <= 0 or fy <= 0:  # type: ignore[operator]
        raise SceneError(f"{where}: focal length must be positive")
    return [fx, fy, cx, cy], dist  # type: ignore[list-item]


# nerfstudio / COLMAP camera model names (``camera_model``); instant-ngp marks fisheye captures with ``is_fisheye``.
PERSPECTIVE_MODELS = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "FULL_OPENCV"}
FISHEYE_MODELS = {"OPENCV_FISHEYE", "FISHEYE", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"}


def camera_model(meta: dict[str, Any], where: str) -> int:
    """OPENCV (0) or FISHEYE (1) from ``camera_model`` / ``is_fisheye``; anything else is a clear error."""
    name = meta.get("camera_model")
    if name is None:
        return FISHEYE if meta.get("is_fisheye") is True else OPENCV
    if not isinstance(name, str):
        raise SceneError(f"{where}: camera_model must be a string, got {name!r}")
    if name.upper() in PERSPECTIVE_MODELS:
        return OPENCV
    if name.upper() in FISHEYE_MODELS:
        return FISHEYE
    raise SceneError(f"{where}: camera model {name!r} is not supported (supported: perspective OPENCV and "
                     f"OPENCV_FISHEYE, with k1 k2 k3 k4 p1 p2)")


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
    entries: list[tuple[Path, dict[str, Any], str]] = []  # (image, merged meta, where)
    missing: list[str] = []
    top_level: dict[str, Any] = {}
    for json_path, selection in files:
        data = read_json(json_path)
        top = {k: v for k, v in data.items() if k != "frames"}
        top_level = top_level or top
        root = json_path.parent
        for i, frame in enumerate(data["frames"]):
            where = f"{json_path}: frame {i}"
            if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
                raise SceneError(f"{where}: needs 'file_path' and 'transform_matrix'")
            held_out = i % HOLDOUT_EVERY == 0
            if selection == "train" and held_out or selection in ("test", "val") and not held_out:
                continue
            image = find_image(root, str(frame["file_path"]))
            if image is None:
                missing.append(str(frame["file_path"]))
                continue
            entries.append((image, {**top, **frame}, f"{where} ({frame['file_path']})"))
    if missing:
        log.warning("%s: skipped %d frame(s) whose image is missing (e.g. %s)", root_path, len(missing), missing[0])
    if not entries:
        raise SceneError(f"{root_path}: no usable frame in split {split!r}" + (f" ({len(missing)} images missing)" if missing else ""))

    def load_one(entry: tuple[Path, dict[str, Any], str]) -> tuple[np.ndarray, list[float], list[float], np.ndarray]:
        image_path, meta, where = entry
        img = load_image(image_path)
        h, w = img.shape[:2]
        jw, jh = meta.get("w"), meta.get("h")
        if jw is not None and jh is not None:
            jw_i, jh_i = int(_number(jw, "w", where)), int(_number(jh, "h", where))
            if (jw_i, jh_i) != (w, h):
                raise SceneError(f"{image_path}: image is {w}x{h} but the transforms file says {jw_i}x{jh_i}")
        intr, dist = frame_intrinsics(meta, w, h, where)
        try:
            matrix = np.asarray(meta["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            raise SceneError(f"{where}: transform_matrix is not a numeric matrix") from None
        if matrix.shape not in ((4, 4), (3, 4)):
            raise SceneError(f"{where}: transform_matrix must be 4x4 or 3x4, got shape {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise SceneError(f"{where}: transform_matrix has NaN or infinite values")
        factor = float(downscale)
        if max_size is not None and max(w, h) / factor > max_size:
            factor = max(w, h) / float(max_size)
        nw, nh = max(1, int(round(w / factor))), max(1, int(round(h / factor)))
        if (nw, nh) != (w, h):
            img = resize_image(img, nw, nh)
            sx, sy = nw / w, nh / h
            intr = [intr[0] * sx, intr[1] * sy, intr[2] * sx, intr[3] * sy]
        return img, intr, dist, matrix

    scale = _number(top_level.get("scale", NERF_SCALE), "scale", str(root_path))
    offset_raw = top_level.get("offset", list(NERF_OFFSET))
    if not isinstance(offset_raw, (list, tuple)) or len(offset_raw) != 3:
        raise SceneError(f"{root_path}: 'offset' must be a list of 3 numbers")
    offset = tuple(_number(v, "offset", str(root_path)) for v in offset_raw)
    aabb_scale = _number(top_level.get("aabb_scale", 1), "aabb_scale", str(root_path))
    if aabb_scale <= 0:
        raise SceneError(f"{root_path}: aabb_scale must be positive")

    iterator: Any
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
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
