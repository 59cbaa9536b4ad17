"""Point cloud export: the surface the training cameras see, as coloured points with normals (``ngp export
pointcloud``, nerfstudio's ``ns-export pointcloud``).

Rays through random sub-pixel positions of the chosen training cameras are rendered as a frame is; where the
accumulated opacity is above 0.5 the ray's expected depth (depth / opacity) gives a point, its un-premultiplied
colour (rgb / opacity over black) its colour and the density gradient there its normal. A statistical outlier filter
(each point's mean distance to its ``k`` nearest neighbours against the mean and spread of that over the cloud, as
Open3D's ``remove_statistical_outlier``) drops floaters. Points are written in the scene's transforms.json
coordinates (as the mesh is) or in ngp coordinates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..data.cameras import lens_kinds, pixel_rays
from ..errors import NgpError
from ..render.normals import NormalsField, density_normals
from ..render.pictures import HIT_OPACITY
from ..render.renderer import render_rays
from .mesh import crop_box, ngp_to_nerf_directions, ngp_to_nerf_points, scene_transform
from .mesh_io import Mesh, write_ply

if TYPE_CHECKING:
    from ..nerf_model import NerfModel

log = logging.getLogger("ngp_app")

ProgressFn = Callable[[int, int], None]
MAX_POINTS = 50_000_000
ROUNDS = 8  # rays are drawn in rounds of ``2 * points`` until the cloud is full, at most this many
NEIGHBOURS = 20  # the outlier filter's k (Open3D's and nerfstudio's default)
STD_RATIO = 2.0  # a point is an outlier when its mean neighbour distance exceeds mean + STD_RATIO * std


@dataclass
class PointCloud:
    """Points (n, 3) float32, colours (n, 3) uint8, unit normals (n, 3) float32 pointing out of the surface."""

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, keep: np.ndarray) -> PointCloud:
        """The points selected by ``keep`` (a boolean mask or indices)."""
        return PointCloud(self.points[keep], self.colors[keep], self.normals[keep])


def chosen_frames(scene_meta: dict[str, Any], frames: Sequence[int] | None) -> list[int]:
    """The training frames to cast rays from: ``frames`` (checked against the snapshot's cameras), else every
    frame that was not excluded from training."""
    n = len(scene_meta["c2w"])
    if frames is None:
        excluded = set(scene_meta.get("excluded") or [])
        return [i for i in range(n) if i not in excluded]
    bad = [i for i in frames if not 0 <= i < n]
    if bad:
        raise NgpError(f"--frames: the snapshot has training frames 0..{n - 1}, not {bad[0]}")
    if not frames:
        raise NgpError("--frames: no frame given")
    return sorted(set(frames))


def frame_rays(
    scene_meta: dict[str, Any], frames: list[int], n_rays: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_rays`` rays through uniformly random positions of the ``frames``' images (each frame gets a share in
    proportion to its pixel count): origins, unit directions (n_rays, 3) in ngp space, on the CPU."""
    sizes = torch.tensor([scene_meta["sizes"][i] for i in frames], dtype=torch.float64)
    area = sizes[:, 0] * sizes[:, 1]
    frame = torch.multinomial(area / area.sum(), n_rays, replacement=True, generator=generator)
    uv = torch.rand(n_rays, 2, generator=generator, dtype=torch.float64) * sizes[frame]
    idx = torch.tensor(frames, dtype=torch.int64)[frame]
    c2w = torch.tensor(scene_meta["c2w"], dtype=torch.float32)[idx]
    intrinsics = torch.tensor(scene_meta["intrinsics"], dtype=torch.float32)[idx]
    distortion = scene_meta.get("distortion") or []
    dist = torch.tensor(distortion, dtype=torch.float32)[idx] if distortion else None
    kinds = lens_kinds(dist) if dist is not None else None
    return pixel_rays(uv[:, 0].float(), uv[:, 1].float(), c2w, intrinsics, dist, kinds)


def surface_points(
    nerf: NerfModel,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    lo: Sequence[float],
    hi: Sequence[float],
) -> PointCloud:
    """The points rays (n, 3) hit (opacity above 0.5) inside the box ``lo``..``hi`` (ngp space), with their
    un-premultiplied colour and the density's outward normal."""
    out = render_rays(nerf.field, nerf.grid, nerf.aabb, rays_o, rays_d, nerf.march, (0.0, 0.0, 0.0))
    opacity = out["opacity"]
    hit = opacity > HIT_OPACITY
    t = out["depth"][hit] / opacity[hit]
    points = rays_o.to(opacity.device)[hit] + t[:, None] * rays_d.to(opacity.device)[hit]
    lo_t = torch.tensor(lo, dtype=points.dtype, device=points.device)
    hi_t = torch.tensor(hi, dtype=points.dtype, device=points.device)
    inside = ((points >= lo_t) & (points <= hi_t)).all(dim=1)
    points = points[inside]
    colors = (out["rgb"][hit][inside] / opacity[hit][inside, None]).clamp(0.0, 1.0)
    step = NormalsField(nerf.field).step
    with torch.no_grad():
        normals = density_normals(nerf.field.density, points, step)
    return PointCloud(
        points.float().cpu().numpy(),
        (colors * 255.0 + 0.5).to(torch.uint8).cpu().numpy(),
        normals.float().cpu().numpy(),
    )


def outlier_mask(points: np.ndarray, k: int = NEIGHBOURS, std_ratio: float = STD_RATIO) -> np.ndarray:
    """Inliers (n,) bool of points (n, 3): a point's mean distance to its ``k`` nearest neighbours is at most the
    cloud's mean of that plus ``std_ratio`` standard deviations (all kept when there are ``k`` points or fewer)."""
    from scipy.spatial import cKDTree

    n = points.shape[0]
    if n <= k:
        return np.ones(n, dtype=bool)
    dist, _ = cKDTree(points).query(points, k=k + 1)  # the first neighbour is the point itself
    mean = dist[:, 1:].mean(axis=1)
    return mean <= mean.mean() + std_ratio * mean.std()


def _bar(progress: bool | ProgressFn, total: int) -> tuple[Any, ProgressFn]:
    """A terminal bar (``progress`` True) or the caller's callback, as one ``update(done, total)`` function."""
    bar = None
    callback = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="pt", unit_scale=True, desc="points", dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)
        if callback is not None:
            callback(done, total)  # may raise to cancel

    return bar, update


def cast_points(
    nerf: NerfModel,
    scene_meta: dict[str, Any],
    n_points: int,
    frames: Sequence[int] | None = None,
    crop: Any = None,
    seed: int = 0,
    progress: bool | ProgressFn = False,
) -> PointCloud:
    """Up to ``n_points`` surface points (ngp space) seen by the training ``frames`` (default: those trained on)
    inside ``crop`` (ngp coordinates, default: the scene box); the same cloud for the same ``seed``."""
    chosen = chosen_frames(scene_meta, list(frames) if frames is not None else None)
    lo, hi = crop_box(nerf.field, crop)
    generator = torch.Generator().manual_seed(int(seed))
    parts: list[PointCloud] = []
    found = 0
    bar, update = _bar(progress, n_points)
    batch = min(2 * n_points, 1 << 20)
    try:
        for _ in range(ROUNDS * max(1, math.ceil(2 * n_points / batch))):
            rays_o, rays_d = frame_rays(scene_meta, chosen, batch, generator)
            part = surface_points(nerf, rays_o, rays_d, lo, hi)
            parts.append(part)
            found += len(part)
            update(min(found, n_points), n_points)
            if found >= n_points:
                break
    finally:
        if bar is not None:
            bar.close()
    if found == 0:
        raise NgpError(
            "no opaque point: no ray of the training cameras reaches an opacity of 0.5 in this box "
            "(an untrained snapshot, or a --crop that misses the object)"
        )
    cloud = PointCloud(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("points", "colors", "normals")))
    if len(cloud) < n_points:
        log.warning("%d of the %d points asked for: the cameras see little surface in this box", len(cloud), n_points)
    return cloud.subset(np.arange(min(len(cloud), n_points)))


def export_pointcloud(
    nerf: NerfModel,
    scene_meta: dict[str, Any],
    out_path: str | Path,
    n_points: int = 1_000_000,
    frames: Sequence[int] | None = None,
    crop: Any = None,
    keep_outliers: bool = False,
    space: str = "nerf",
    seed: int = 0,
    progress: bool | ProgressFn = True,
) -> PointCloud:
    """Cast ``n_points`` surface points (:func:`cast_points`), drop outliers unless ``keep_outliers``, move them
    to ``space`` ("nerf": the scene's transforms.json coordinates, or "ngp") and write a binary PLY."""
    if not 1 <= int(n_points) <= MAX_POINTS:
        raise NgpError(f"--points must be in 1..{MAX_POINTS}, got {n_points}")
    if space not in ("nerf", "ngp"):
        raise NgpError(f"unknown space {space!r} (use nerf or ngp)")
    transform = scene_transform(scene_meta) if space == "nerf" else None
    if space == "nerf" and transform is None:
        log.warning("the snapshot's scene metadata has no scale/offset: writing the points in ngp coordinates")
    t0 = time.perf_counter()
    cloud = cast_points(nerf, scene_meta, int(n_points), frames, crop, seed, progress)
    t1 = time.perf_counter()
    n_cast = len(cloud)
    if not keep_outliers:
        cloud = cloud.subset(outlier_mask(cloud.points))
    if transform is not None:
        cloud = PointCloud(
            ngp_to_nerf_points(cloud.points, *transform), cloud.colors, ngp_to_nerf_directions(cloud.normals)
        )
    empty_faces = np.zeros((0, 3), dtype=np.int64)
    write_ply(Path(out_path), Mesh(cloud.points, empty_faces, cloud.colors, cloud.normals))
    log.info(
        "point cloud: %d points cast in %.2f s, %d outliers removed, written in %.2f s (%s coordinates)",
        n_cast,
        t1 - t0,
        n_cast - len(cloud),
        time.perf_counter() - t1,
        "nerf" if transform is not None else "ngp",
    )
    return cloud


def check_pointcloud_target(path: str | Path, n_points: int) -> Path:
    """Before any work: a .ply name, a writable place and free space for ``n_points`` (27 bytes each)."""
    from ..outputs import check_output_file

    return check_output_file(path, (".ply",), min(int(n_points), MAX_POINTS) * 27, "point cloud")
