"""Mesh export: an iso-surface of the density field (instant-ngp's "export mesh"), with vertex colours.

The density is sampled on a lattice over a crop box, the surface ``sigma = threshold`` is extracted with
marching tetrahedra, vertices are coloured by the model's rgb looking along the inward normal, and the mesh is
written as PLY or OBJ in NeRF (transforms.json) or ngp coordinates.

Lattice layout: ``density[i, j, k]`` is the value at ``aabb_min + (i, j, k) / (R - 1) * (aabb_max - aabb_min)``,
so the first index runs along x.
"""

from __future__ import annotations

import itertools
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
# Cube corner c has offset (c & 1, c >> 1 & 1, c >> 2 & 1) along (x, y, z). The cube is cut into the 6
# tetrahedra of the Kuhn triangulation: corner 0 -> add the axes one at a time in some order -> corner 7. The
# triangulation is the same in every cube, so neighbouring cubes split their shared face along the same diagonal.
# Every tetrahedron edge joins corners lo -> hi with hi = lo + (a 0/1 offset), keyed by (lo, offset bits).


def _corner_offset(c: int) -> np.ndarray:
    return np.array([c & 1, (c >> 1) & 1, (c >> 2) & 1], dtype=np.float64)


def _oriented(tri: list[tuple[int, int]], inside: list[int], outside: list[int]) -> list[tuple[int, int]]:
    """Order a triangle (three corner pairs) so that its normal points from the inside corners to the outside ones."""
    p = [(_corner_offset(a) + _corner_offset(b)) / 2 for a, b in tri]
    normal = np.cross(p[1] - p[0], p[2] - p[0])
    towards_out = np.mean([_corner_offset(c) for c in outside], axis=0) - np.mean(
        [_corner_offset(c) for c in inside], axis=0
    )
    return tri if float(normal @ towards_out) > 0 else [tri[0], tri[2], tri[1]]


def _build_tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triangles of each tetrahedron for each inside/outside pattern of its 4 corners, derived from the geometry.

    Returns tet_corners (6, 4) cube corners per tetrahedron in path order; tri_lo, tri_hi (6, 16, 2, 3): cube
    corners at the ends of the edge holding each triangle vertex (lo has the smaller offset); tri_ok (6, 16, 2).
    """
    tets = []
    for order in itertools.permutations(range(3)):
        path = [0]
        for axis in order:
            path.append(path[-1] | (1 << axis))
        tets.append(path)
    tri_lo = np.zeros((6, 16, 2, 3), dtype=np.int64)
    tri_hi = np.zeros((6, 16, 2, 3), dtype=np.int64)
    tri_ok = np.zeros((6, 16, 2), dtype=bool)
    for t, path in enumerate(tets):
        for mask in range(16):
            inside = [path[v] for v in range(4) if mask >> v & 1]
            outside = [path[v] for v in range(4) if not mask >> v & 1]
            if len(inside) in (1, 3):
                lone, rest = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
                tris = [[(lone, o) for o in rest]]
            elif len(inside) == 2:
                (a, b), (c, d) = inside, outside
                tris = [[(a, c), (a, d), (b, d)], [(a, c), (b, d), (b, c)]]  # the quad a-c, a-d, b-d, b-c in two
            else:
                tris = []
            for k, tri in enumerate(tris):
                for v, (e0, e1) in enumerate(_oriented(tri, inside, outside)):
                    # Along a path, the earlier corner's offset bits are a subset of the later one's.
                    lo, hi = (e0, e1) if e0 & e1 == e0 else (e1, e0)
                    tri_lo[t, mask, k, v], tri_hi[t, mask, k, v] = lo, hi
                tri_ok[t, mask, k] = True
    return (
        torch.tensor(tets, dtype=torch.int64),
        torch.from_numpy(tri_lo),
        torch.from_numpy(tri_hi),
        torch.from_numpy(tri_ok),
    )


_TET_CORNERS, _TRI_LO, _TRI_HI, _TRI_OK = _build_tables()


def _cube_masks(inside: torch.Tensor) -> torch.Tensor:
    """inside (R, R, R) bool -> (R-1, R-1, R-1) uint8 with bit c set where cube corner c is inside."""
    n = inside.shape[0] - 1
    mask = torch.zeros((n, n, n), dtype=torch.uint8)
    for c in range(8):
        dx, dy, dz = c & 1, (c >> 1) & 1, (c >> 2) & 1
        mask |= inside[dx : dx + n, dy : dy + n, dz : dz + n].to(torch.uint8) << c
    return mask


def _cell_triangles(masks: torch.Tensor, cells: torch.Tensor, r: int) -> torch.Tensor:
    """Edge keys of the triangles in some cells: masks (n,) uint8 corner bits, cells (n,) linear index of each
    cell's corner 0 in the R^3 lattice. Returns (F, 3) int64 keys ``8 * lo + (hi - lo offset bits)``."""
    corner_bits = (masks[:, None].long() >> torch.arange(8)) & 1  # (n, 8)
    tet_bits = corner_bits[:, _TET_CORNERS]  # (n, 6, 4)
    tet_mask = (tet_bits << torch.arange(4)).sum(-1)  # (n, 6) in [0, 16)
    tet_index = torch.arange(6).expand_as(tet_mask)
    ok = _TRI_OK[tet_index, tet_mask]  # (n, 6, 2)
    cell_i, tet_i, k = torch.nonzero(ok, as_tuple=True)
    m = tet_mask[cell_i, tet_i]
    lo = _TRI_LO[tet_i, m, k]  # (F, 3) cube corners
    hi = _TRI_HI[tet_i, m, k]
    corner_linear = _lattice_step(torch.arange(8), r)
    base = cells[cell_i][:, None] + corner_linear[lo]
    return base * 8 + (hi - lo)


def extract_surface(
    density: torch.Tensor,
    level: float,
    aabb_min: Sequence[float] | torch.Tensor,
    aabb_max: Sequence[float] | torch.Tensor,
    chunk: int = 1 << 20,
) -> tuple[np.ndarray, np.ndarray]:
    """The surface ``density == level`` by marching tetrahedra.

    density: (R, R, R) lattice values indexed [x, y, z] spanning the box [aabb_min, aabb_max] (both ends
    included); "inside" is ``density > level``. Returns vertices (V, 3) float32 in box coordinates and faces
    (F, 3) int64, one vertex per crossed lattice edge (linear interpolation), faces wound counter-clockwise seen
    from the side of lower density, degenerate faces dropped. Closed surfaces strictly inside the box come out
    watertight. Empty arrays when nothing crosses ``level``.
    """
    if density.dim() != 3 or len(set(density.shape)) != 1 or density.shape[0] < 2:
        raise NgpError(f"density lattice must be (R, R, R) with R >= 2, got {tuple(density.shape)}")
    dens = density.detach().to("cpu", torch.float64).nan_to_num(0.0)
    r = dens.shape[0]
    masks = _cube_masks(dens > level)
    active = torch.nonzero((masks != 0) & (masks != 255)).view(-1, 3)  # (n, 3) cell corner-0 indices
    if active.shape[0] == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    active_masks = masks[active[:, 0], active[:, 1], active[:, 2]]
    cells = active[:, 0] * r * r + active[:, 1] * r + active[:, 2]
    keys = torch.cat(
        [_cell_triangles(active_masks[s : s + chunk], cells[s : s + chunk], r) for s in range(0, cells.numel(), chunk)]
    )
    edges, faces = torch.unique(keys.view(-1), return_inverse=True)
    faces = faces.view(-1, 3)

    # Crossing point on each edge lo -> hi. One exactly on a lattice point (density == level there) becomes one
    # vertex for all edges meeting at that point, keyed 8 * point (offset bits 0).
    flat = dens.view(-1)
    lo, bits = edges // 8, edges % 8
    t = _interp_t(flat, lo, bits, r, level)
    at_lo, at_hi = t <= 0.0, t >= 1.0
    if bool((at_lo | at_hi).any()):
        snapped = torch.where(at_lo, lo * 8, torch.where(at_hi, (lo + _lattice_step(bits, r)) * 8, edges))
        edges, remap = torch.unique(snapped, return_inverse=True)
        faces = remap[faces]
        lo, bits = edges // 8, edges % 8
        t = _interp_t(flat, lo, bits, r, level)  # irrelevant where bits == 0: the offset is zero
    ijk = torch.stack([lo // (r * r), (lo // r) % r, lo % r], dim=-1).double()
    offset = torch.stack([bits & 1, (bits >> 1) & 1, (bits >> 2) & 1], dim=-1).double()
    ijk = ijk + t[:, None] * offset
    box_lo = torch.as_tensor(aabb_min, dtype=torch.float64).cpu()
    box_hi = torch.as_tensor(aabb_max, dtype=torch.float64).cpu()
    vertices = box_lo + ijk / (r - 1) * (box_hi - box_lo)

    good = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[good]
    used, faces = torch.unique(faces.view(-1), return_inverse=True)  # drop vertices only degenerate faces used
    return vertices[used].float().numpy(), faces.view(-1, 3).numpy().astype(np.int64)


def _lattice_step(bits: torch.Tensor, r: int) -> torch.Tensor:
    """Linear-index step of a lattice offset given as bits (x, y, z) = (bit 0, bit 1, bit 2): (n,) -> (n,)."""
    return (bits & 1) * r * r + ((bits >> 1) & 1) * r + ((bits >> 2) & 1)


def _interp_t(flat: torch.Tensor, lo: torch.Tensor, bits: torch.Tensor, r: int, level: float) -> torch.Tensor:
    """Parameter in [0, 1] of the crossing of ``level`` on lattice edges lo -> lo + offset(bits): (n,) -> (n,)."""
    d_lo, d_hi = flat[lo], flat[lo + _lattice_step(bits, r)]
    denom = torch.where(d_hi == d_lo, torch.ones_like(d_lo), d_hi - d_lo)
    return ((level - d_lo) / denom).clamp(0.0, 1.0)


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
