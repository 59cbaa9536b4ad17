"""LLFF scenes: a folder with ``poses_bounds.npy`` and its images in ``images/`` and/or ``images_N/`` (1/N size).

The file (``schema/llff.py``) holds per image a camera-to-world pose whose rotation columns are [down, right, back],
the full-size height, width and focal length, and the near/far depth bounds. Reading it gives the same data a
``transforms.json`` gives (``llff_transforms``), so the loader treats both alike:

- images: the image files of the chosen folder in plain sorted name order (LLFF's order; ``dynamic_mask_*``
  files are masks, not images), one per row;
- intrinsics: the focal length scaled by the factor between the stored full size and the images' actual size,
  the principal point at the image centre (LLFF's pinhole model);
- poses: columns reordered to NeRF's OpenGL camera [right, up, back], then the scene is turned, centred and scaled
  as an import is (``importer/conventions.normalise``, the cameras' average up to +z): the centre is the point the
  cameras look at, or for a forward-facing capture the median of the viewed depth range; ``aabb_scale`` is the
  power of two whose box holds the frusta between the near and far bounds.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SceneError
from ..schema import validate
from ..schema.llff import COLUMNS, PosesBounds, as_rows
from .images import check_image_file, common_shrink
from .importer.conventions import aabb_scale_for, normalise

log = logging.getLogger(__name__)

POSES_FILE = "poses_bounds.npy"
MAX_POSES_BYTES = 64 << 20  # ~490,000 images: anything larger is not a poses_bounds.npy
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what LLFF's loader reads (any case)
MASK_PREFIX = "dynamic_mask_"  # instant-ngp's per-image masks may sit among the images (``data/masks.py``)
FOLDER = re.compile(r"images(?:_(\d+))?")
#: Frustum points per camera and depth bound: the image centre and its four corners (in units of the half size).
FRUSTUM = ((0.0, 0.0), (-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0))


# ------------------------------------------------------------------------------------------------ files
def poses_file(folder: Path) -> Path:
    """The ``poses_bounds.npy`` of an LLFF scene folder."""
    return folder / POSES_FILE


def read_poses_bounds(path: Path) -> np.ndarray:
    """The (n, 17) float64 array of ``path``, its header checked before any data is read (a corrupt header cannot
    ask for terabytes); every failure is one :class:`SceneError` line naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_POSES_BYTES:
            raise SceneError(f"{path}: {size} bytes is too large for a {POSES_FILE}")
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            if major not in (1, 2):
                raise SceneError(f"{path}: unsupported .npy format version {major}")
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            check_header(path, shape, dtype)
            need = shape[0] * shape[1] * dtype.itemsize
            if size - f.tell() != need:
                raise SceneError(f"{path}: holds {size - f.tell()} bytes of data, its header says {need}")
            data = np.frombuffer(f.read(need), dtype=dtype).reshape(shape, order="F" if fortran else "C")
    except OSError as exc:
        raise SceneError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # numpy's header parser
        raise SceneError(f"{path}: not a NumPy .npy file ({str(exc).splitlines()[0]})") from None
    return data.astype(np.float64)


def check_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """An array of numbers of shape (n >= 1, 17)."""
    if dtype.hasobject or dtype.kind not in "fiu":
        raise SceneError(f"{path}: expected an array of numbers, got dtype {dtype}")
    if len(shape) != 2 or shape[1] != COLUMNS or shape[0] < 1:
        raise SceneError(
            f"{path}: expected an array of shape (N, {COLUMNS}) (per image a 3x5 pose matrix, near and far), "
            f"got shape {tuple(shape)}"
        )


def image_names(folder: Path) -> list[str]:
    """The images of ``folder`` in plain sorted order (how LLFF ordered the rows), masks and hidden files left out."""
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError as exc:
        raise SceneError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
    return sorted(
        n
        for n in names
        if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".") and not n.startswith(MASK_PREFIX)
    )


def image_folders(root: Path) -> list[tuple[int, Path]]:
    """The image folders of an LLFF scene that hold images, as (nominal factor, folder), full size first."""
    found = []
    for p in root.iterdir() if root.is_dir() else []:
        m = FOLDER.fullmatch(p.name)
        if m and p.is_dir() and (m.group(1) is None or int(m.group(1)) >= 1) and image_names(p):
            found.append((int(m.group(1) or 1), p))
    return sorted(found)


def choose_images(root: Path, downscale: int) -> tuple[Path, int]:
    """The folder to load and the shrink factor left for the loader: the largest images present (``images`` if
    there, else the smallest ``images_N``), or for ``--downscale D`` a folder that already has them D times smaller
    (``images_4`` for ``images`` at ``--downscale 4``), which then loads as is."""
    folders = image_folders(root)
    if not folders:
        raise SceneError(f"{poses_file(root)}: no images beside it (expected images/ or images_N/ with PNG or JPEG)")
    base_factor, base = folders[0]
    smaller = dict(folders).get(base_factor * downscale)
    if downscale > 1 and smaller is not None:
        return smaller, 1
    return base, downscale


# ------------------------------------------------------------------------------------------------ geometry
def opengl_c2w(poses: np.ndarray) -> np.ndarray:
    """(n, 4, 4) NeRF camera-to-world matrices (OpenGL camera: [right, up, back]) of LLFF's (n, 3, 4) poses, whose
    rotation columns are [down, right, back]."""
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, 0] = poses[:, :, 1]
    out[:, :3, 1] = -poses[:, :, 0]
    out[:, :3, 2] = poses[:, :, 2]
    out[:, :3, 3] = poses[:, :, 3]
    return out


def frustum_points(c2w: np.ndarray, tan_half: np.ndarray, near: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Points (n * 10, 3) of each camera's view at its near and far depth: the image centre and corners.
    c2w: (n, 4, 4) OpenGL cameras; tan_half: (n, 2) tangents of the half fields of view (x, y)."""
    pts = []
    for depth in (near, far):
        for sx, sy in FRUSTUM:
            cam = np.stack([sx * tan_half[:, 0], sy * tan_half[:, 1], -np.ones(len(c2w))], -1) * depth[:, None]
            pts.append(np.einsum("nij,nj->ni", c2w[:, :3, :3], cam) + c2w[:, :3, 3])
    return np.concatenate(pts)


# ------------------------------------------------------------------------------------------------ scene
def image_size(path: Path) -> tuple[int, int]:
    """Width and height from an image's header (nothing decoded)."""
    from PIL import Image

    check_image_file(path)
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        raise SceneError(
            f"{path}: cannot read image: corrupt or an unsupported format ({type(exc).__name__})"
        ) from None


def llff_transforms(folder: Path) -> dict[str, Any]:
    """The scene in the images ``folder`` of an LLFF scene as transforms.json data (absolute image paths; NeRF
    poses normalised as an import's; per-frame intrinsics for the images' actual size; ``aabb_scale``)."""
    source = poses_file(folder.parent)
    array = read_poses_bounds(source)
    rows = validate(PosesBounds, as_rows(array), str(source), SceneError).rows
    names = image_names(folder)
    if len(names) != len(rows):
        raise SceneError(f"{source}: {len(rows)} cameras but {folder} holds {len(names)} images")
    sizes = [image_size(folder / n) for n in names]
    declared = [(int(r.width), int(r.height)) for r in rows]
    factor, misfit = common_shrink(declared, sizes)  # the rule transforms.json sizes follow too
    if misfit is not None:
        (w, h), (fw, fh) = sizes[misfit], declared[misfit]
        raise SceneError(
            f"{folder / names[misfit]}: image is {w}x{h}, not the {fw}x{fh} of {POSES_FILE} "
            + (
                "shrunk by one factor in both axes"
                if misfit == 0
                else f"shrunk by {factor:.4g} as the images before it"
            )
        )
    poses = np.asarray([r.pose for r in rows], dtype=np.float64)
    c2w = opengl_c2w(poses)
    focal = np.asarray([r.focal for r in rows])
    full = np.asarray(declared, dtype=np.float64)
    near, far = np.asarray([r.near for r in rows]), np.asarray([r.far for r in rows])
    points = frustum_points(c2w, 0.5 * full / focal[:, None], near, far)
    sim, how = normalise(c2w, points)
    aabb_scale = aabb_scale_for(sim.points(points))
    frames = []
    for i, (name, (w, h)) in enumerate(zip(names, sizes)):
        sx, sy = w / full[i, 0], h / full[i, 1]
        frames.append(
            {
                "file_path": str(folder / name),
                "transform_matrix": sim.poses(c2w[i : i + 1])[0].tolist(),
                "fl_x": float(focal[i] * sx),
                "fl_y": float(focal[i] * sy),
                "cx": w / 2.0,
                "cy": h / 2.0,
                "w": w,
                "h": h,
            }
        )
    log.info(
        "%s: LLFF scene, %d images from %s/ (1/%g of %dx%d), centre from %s, aabb_scale %d",
        source,
        len(frames),
        folder.name,
        factor,
        declared[0][0],
        declared[0][1],
        how,
        aabb_scale,
    )
    return {"aabb_scale": aabb_scale, "frames": frames}
