"""Mesh export: an iso-surface of the density field (instant-ngp's "export mesh"), with vertex colours.

The density is sampled on a lattice over a crop box, the surface ``sigma = threshold`` is extracted with marching
cubes (scikit-image's; it measured better than our earlier marching tetrahedra, docs/export.md), vertices are
coloured by the model's rgb looking along the inward normal, and the mesh is written as PLY or OBJ in NeRF
(transforms.json) or ngp coordinates.

Lattice layout: ``density[i, j, k]`` is the value at ``aabb_min + (i, j, k) / (R - 1) * (aabb_max - aabb_min)``,
so the first index runs along x.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..errors import NgpError
from ..render.occupancy import OccupancyGrid, cell_index, mip_from_pos
from .mesh_io import Mesh, check_mesh_path, write_mesh

if TYPE_CHECKING:
    from ..model.field import NGPField
    from ..nerf_model import NerfModel

log = logging.getLogger("ngp_app")

SPACES = ("nerf", "ngp")
MAX_RESOLUTION = 1024
ProgressFn = Callable[[int, int], None]


def _dilated_occupancy(grid: OccupancyGrid) -> torch.Tensor:
    """The grid's occupancy grown by one cell in every direction: (n_cascades * R^3,) bool.

    Lattice points just outside occupied cells are then evaluated too, so the interpolation across the border
    of the occupied region uses real densities."""
    r = grid.resolution
    occ = grid.occupied.view(grid.n_cascades, 1, r, r, r).float()
    grown = torch.nn.functional.max_pool3d(occ, kernel_size=3, stride=1, padding=1)
    return (grown > 0).view(-1)


@torch.no_grad()
def sample_density_grid(
    model: NGPField,
    grid: OccupancyGrid | None,
    aabb_min: Sequence[float] | torch.Tensor,
    aabb_max: Sequence[float] | torch.Tensor,
    resolution: int,
    chunk: int = 1 << 18,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Density sigma at R^3 lattice points spanning [aabb_min, aabb_max] (both ends included): (R, R, R) float32
    on the CPU, indexed [x, y, z].

    grid: when given, points whose cell (grown by one) is empty get 0 without evaluating the field.
    progress: called with (points done, points total) after each chunk.
    """
    if resolution < 2:
        raise NgpError(f"mesh resolution must be at least 2, got {resolution}")
    device = model.aabb.device
    lo = torch.as_tensor(aabb_min, dtype=torch.float32, device=device)
    hi = torch.as_tensor(aabb_max, dtype=torch.float32, device=device)
    r = int(resolution)
    axes = [torch.linspace(float(lo[a]), float(hi[a]), r, device=device) for a in range(3)]
    occupancy = _dilated_occupancy(grid).to(device) if grid is not None else None
    out = torch.zeros(r * r * r, dtype=torch.float32)
    total = r**3
    slabs = max(1, chunk // (r * r))  # whole x-slabs per chunk
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), dim=-1).reshape(-1, 2)
    for i0 in range(0, r, slabs):
        xs = axes[0][i0 : i0 + slabs]
        pos = torch.cat([xs.repeat_interleave(yz.shape[0])[:, None], yz.repeat(xs.numel(), 1)], dim=1)
        sigma = torch.zeros(pos.shape[0], dtype=torch.float32, device=device)
        if occupancy is not None:
            mip = mip_from_pos(pos, grid.n_cascades)  # type: ignore[union-attr]
            keep = occupancy[mip * grid.n_cells_per_cascade + cell_index(pos, mip, grid.resolution)]  # type: ignore[union-attr]
            if bool(keep.any()):
                sigma[keep] = model.density(pos[keep]).float()
        else:
            sigma = model.density(pos).float()
        start = i0 * r * r
        out[start : start + pos.shape[0]] = sigma.nan_to_num(0.0).cpu()
        if progress is not None:
            progress(min(start + pos.shape[0], total), total)
    return out.view(r, r, r)


# --------------------------------------------------------------------------------------------------- extraction
def extract_surface(
    density: torch.Tensor,
    level: float,
    aabb_min: Sequence[float] | torch.Tensor,
    aabb_max: Sequence[float] | torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """The surface ``density == level`` by marching cubes (scikit-image's, Lewiner's topology-consistent variant).

    density: (R, R, R) lattice values indexed [x, y, z] spanning the box [aabb_min, aabb_max] (both ends
    included); "inside" is ``density > level``. Returns vertices (V, 3) float32 in box coordinates and faces
    (F, 3) int64, wound counter-clockwise seen from the side of lower density. Crossings exactly on a lattice point
    become one vertex and the faces they flatten are dropped, so closed surfaces strictly inside the box come out
    watertight. Empty arrays when nothing crosses ``level``.
    """
    from skimage.measure import marching_cubes

    if density.dim() != 3 or len(set(density.shape)) != 1 or density.shape[0] < 2:
        raise NgpError(f"density lattice must be (R, R, R) with R >= 2, got {tuple(density.shape)}")
    dens = density.detach().to("cpu", torch.float64).nan_to_num(0.0).numpy()
    inside = dens > level
    if inside.all() or not inside.any():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    ijk, faces, _, _ = marching_cubes(dens, level, method="lewiner", allow_degenerate=True)
    # skimage winds faces the other way round: seen from outside (lower density) they turn clockwise
    faces = np.ascontiguousarray(faces[:, ::-1]).astype(np.int64)
    # one vertex per position (crossings on lattice points come out once per cell edge), flattened faces dropped
    ijk, remap = np.unique(ijk.astype(np.float64), axis=0, return_inverse=True)
    faces = remap.reshape(-1)[faces]
    good = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    used, faces = np.unique(faces[good].reshape(-1), return_inverse=True)
    r = dens.shape[0]
    box_lo = torch.as_tensor(aabb_min, dtype=torch.float64).cpu().numpy()
    box_hi = torch.as_tensor(aabb_max, dtype=torch.float64).cpu().numpy()
    vertices = box_lo + ijk[used] / (r - 1) * (box_hi - box_lo)
    return vertices.astype(np.float32), faces.reshape(-1, 3).astype(np.int64)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals: vertices (V, 3), faces (F, 3) -> (V, 3) float32 (+z where undefined)."""
    v = torch.from_numpy(np.asarray(vertices, dtype=np.float64))
    f = torch.from_numpy(np.asarray(faces, dtype=np.int64))
    if f.numel() == 0:
        return np.tile(np.array([[0.0, 0.0, 1.0]], np.float32), (v.shape[0], 1))
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    face_n = torch.linalg.cross(p1 - p0, p2 - p0)  # length = twice the area
    n = torch.zeros_like(v).index_add_(0, f.reshape(-1), face_n.repeat_interleave(3, dim=0))
    length = n.norm(dim=1, keepdim=True)
    n = torch.where(length > 0, n / length.clamp(min=1e-300), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    return n.float().numpy()


@torch.no_grad()
def vertex_colors(model: NGPField, vertices: np.ndarray, normals: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """The model's rgb at each vertex seen along the inward normal (view direction = -normal), like instant-ngp.

    vertices, normals: (V, 3) in the model's (ngp) coordinates. Returns (V, 3) uint8."""
    device = model.aabb.device
    out = np.zeros((len(vertices), 3), dtype=np.uint8)
    for s in range(0, len(vertices), chunk):
        x = torch.from_numpy(np.ascontiguousarray(vertices[s : s + chunk], dtype=np.float32)).to(device)
        d = -torch.from_numpy(np.ascontiguousarray(normals[s : s + chunk], dtype=np.float32)).to(device)
        _, rgb = model(x, d)
        out[s : s + chunk] = (rgb.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return out


# --------------------------------------------------------------------------------------------------- coordinates
def ngp_to_nerf_points(points: np.ndarray, scale: float, offset: Sequence[float]) -> np.ndarray:
    """Positions (n, 3) from ngp space to the scene's NeRF space: the inverse of the position part of
    :func:`ngp_app.data.cameras.nerf_to_ngp` (un-cycle the axes, subtract the offset, divide by the scale)."""
    p = np.asarray(points, dtype=np.float64)[:, [2, 0, 1]]
    return ((p - np.asarray(offset, dtype=np.float64)) / scale).astype(np.float32)


def ngp_to_nerf_directions(directions: np.ndarray) -> np.ndarray:
    """Directions (n, 3) from ngp space to NeRF space (the axis cycle only; a rotation, so winding is kept)."""
    return np.ascontiguousarray(np.asarray(directions)[:, [2, 0, 1]])


def scene_transform(scene: dict[str, Any]) -> tuple[float, list[float]] | None:
    """(scale, offset) of a snapshot's scene metadata, or None when it does not say."""
    try:
        scale = float(scene["scale"])
        offset = [float(v) for v in scene["offset"]]
    except (KeyError, TypeError, ValueError):
        return None
    if len(offset) != 3 or not scale > 0 or not all(math.isfinite(v) for v in [scale, *offset]):
        return None
    return scale, offset


# --------------------------------------------------------------------------------------------------- export
def parse_crop(text: str) -> tuple[list[float], list[float]]:
    """``x0,y0,z0,x1,y1,z1`` -> (min corner, max corner); malformed text is an NgpError."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if (
        len(values) != 6
        or not all(math.isfinite(v) for v in values)
        or not all(values[a] < values[a + 3] for a in range(3))
    ):
        raise NgpError(f"--crop must be six numbers x0,y0,z0,x1,y1,z1 with x0 < x1, y0 < y1, z0 < z1 (got {text!r})")
    return values[:3], values[3:]


def crop_box(model: NGPField, crop: Any) -> tuple[list[float], list[float]]:
    """The box to mesh: ``crop`` ((min, max) or six numbers, ngp coordinates) clipped to the model's box."""
    box_lo, box_hi = model.aabb[0].cpu().tolist(), model.aabb[1].cpu().tolist()
    if crop is None:
        return box_lo, box_hi
    values = [float(v) for v in np.asarray(crop, dtype=np.float64).reshape(-1)]
    if len(values) != 6:
        raise NgpError(f"crop must be six numbers x0,y0,z0,x1,y1,z1, got {len(values)}")
    lo = [max(values[a], box_lo[a]) for a in range(3)]
    hi = [min(values[a + 3], box_hi[a]) for a in range(3)]
    if not all(lo[a] < hi[a] for a in range(3)):
        raise NgpError(f"crop box {values} does not overlap the scene box {box_lo} .. {box_hi}")
    if lo != values[:3] or hi != values[3:]:
        log.warning("crop box clipped to the scene box: %s .. %s", lo, hi)
    return lo, hi


LARGE_MESH_FACES = 5_000_000


def export_mesh(
    nerf: NerfModel,
    scene_meta: dict[str, Any],
    out_path: str | Path,
    resolution: int = 256,
    threshold: float = 2.5,
    crop: Any = None,
    space: str = "nerf",
    progress: bool | ProgressFn = True,
) -> Mesh:
    """Mesh the surface ``sigma = threshold`` of ``nerf`` (:func:`surface_mesh`) and write it to ``out_path`` (.ply
    or .obj)."""
    out_path = Path(out_path)
    check_mesh_path(out_path)
    mesh = surface_mesh(nerf, scene_meta, resolution, threshold, crop, space, progress)
    t = time.perf_counter()
    write_mesh(out_path, mesh)
    log.info("mesh written in %.2f s", time.perf_counter() - t)
    return mesh


def surface_mesh(
    nerf: NerfModel,
    scene_meta: dict[str, Any],
    resolution: int = 256,
    threshold: float = 2.5,
    crop: Any = None,
    space: str = "nerf",
    progress: bool | ProgressFn = True,
) -> Mesh:
    """The surface ``sigma = threshold`` of ``nerf``'s field in ``crop`` (ngp coordinates, default: the field's box;
    ``scene_meta``: the scene's metadata, for its nerf coordinates) on a ``resolution``^3 lattice, coloured.

    space: "nerf" (the scene's transforms.json coordinates, so the mesh lines up with the cameras) or "ngp".
    progress: True for a terminal bar, or a ``progress(done, total)`` callback over the density samples (the app's
    job; it may raise to cancel).
    """
    if space not in SPACES:
        raise NgpError(f"unknown space {space!r} (use nerf or ngp)")
    if not math.isfinite(threshold):
        raise NgpError(f"threshold must be a finite number, got {threshold}")
    if not 2 <= int(resolution) <= MAX_RESOLUTION:
        raise NgpError(
            f"mesh resolution must be in 2..{MAX_RESOLUTION}, got {resolution} "
            f"(memory grows with its cube: 1024 needs ~10 GB)"
        )
    transform = scene_transform(scene_meta) if space == "nerf" else None
    if space == "nerf" and transform is None:
        log.warning("the snapshot's scene metadata has no scale/offset: writing the mesh in ngp coordinates")
    model = nerf.field
    lo, hi = crop_box(model, crop)

    t0 = time.perf_counter()
    bar = None
    callback = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=int(resolution) ** 3, unit="pt", unit_scale=True, desc="density", dynamic_ncols=True)

    def on_chunk(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)
        if callback is not None:
            callback(done, total)  # may raise to cancel

    try:
        density = sample_density_grid(model, nerf.grid, lo, hi, int(resolution), progress=on_chunk)
    finally:
        if bar is not None:
            bar.close()
    t1 = time.perf_counter()
    vertices, faces = extract_surface(density, threshold, lo, hi)
    if len(faces) == 0:
        d_min, d_max = float(density.min()), float(density.max())
        hint = "lower" if d_max <= threshold else "higher"
        raise NgpError(
            f"no surface at density {threshold:g} (densities in this box range {d_min:.3g} .. {d_max:.3g}); "
            f"try a {hint} --threshold"
        )
    t2 = time.perf_counter()
    if len(faces) > LARGE_MESH_FACES:
        log.warning(
            "the mesh has %.1f M faces: low-density fog crosses the threshold; a higher --threshold or a "
            "tighter --crop gives a cleaner, smaller mesh",
            len(faces) / 1e6,
        )
    normals = vertex_normals(vertices, faces)
    colors = vertex_colors(model, vertices, normals)
    t3 = time.perf_counter()
    if transform is not None:
        vertices = ngp_to_nerf_points(vertices, *transform)
        normals = ngp_to_nerf_directions(normals)
    log.info(
        "mesh %d^3: density %.2f s, surface %.2f s, colours %.2f s (%s coordinates)",
        int(resolution),
        t1 - t0,
        t2 - t1,
        t3 - t2,
        "nerf" if transform is not None else "ngp",
    )
    return Mesh(vertices, faces, colors, normals)


def check_mesh_target(path: str | Path, resolution: int) -> Path:
    """Before any work: a .ply/.obj name, a writable place, and free space for a ``resolution``^3 mesh (~200 bytes a
    lattice column). ``ngp mesh`` and the app's mesh export call it."""
    from ..outputs import check_output_file

    out = Path(path)
    check_mesh_path(out)
    return check_output_file(out, None, min(int(resolution), MAX_RESOLUTION) ** 2 * 200, "mesh")
