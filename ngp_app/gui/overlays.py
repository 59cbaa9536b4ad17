"""Turning render outputs into viewport pixels: depth/opacity maps, occupied cells and training-camera frusta."""

from __future__ import annotations

import numpy as np

from ..data.cameras import Camera

MODES = ("shaded", "depth", "opacity", "occupancy", "cameras", "normals")
MODE_LABELS = {
    "shaded": "Shaded",
    "depth": "Depth",
    "opacity": "Opacity",
    "occupancy": "Occupancy cells",
    "cameras": "Training cameras",
    "normals": "Normals",
}


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def depth_image(depth: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """Depth as a warm-to-cool ramp (near = bright), normalised over the pixels that hit something."""
    hit = opacity > 0.5
    d = depth / np.maximum(opacity, 1e-6)
    if hit.any():
        lo, hi = float(d[hit].min()), float(d[hit].max())
    else:
        lo, hi = 0.0, 1.0
    t = 1.0 - np.clip((d - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    rgb = np.stack([t, t**2, 0.35 + 0.4 * (1.0 - t)], axis=-1) * hit[..., None]
    return to_uint8(rgb)


def gray(values: np.ndarray) -> np.ndarray:
    return to_uint8(np.repeat(values[..., None], 3, axis=-1))


def project(points: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World points (n, 3) -> pixel coordinates (n, 2) and a mask of points in front of the camera."""
    m = cam.c2w.detach().cpu().numpy().astype(np.float64)
    local = (points - m[:, 3]) @ m[:, :3]  # rows dotted with right, down, forward
    z = local[:, 2]
    front = z > 1e-4
    zs = np.where(front, z, 1.0)
    uv = np.stack([cam.fx * local[:, 0] / zs + cam.cx, cam.fy * local[:, 1] / zs + cam.cy], axis=-1)
    return uv, front


def splat_points(img: np.ndarray, uv: np.ndarray, mask: np.ndarray, color: tuple[int, int, int]) -> None:
    h, w = img.shape[:2]
    px = np.floor(uv[mask]).astype(np.int64)
    keep = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    px = px[keep]
    img[px[:, 1], px[:, 0]] = color


def draw_segments(img: np.ndarray, a: np.ndarray, b: np.ndarray, cam: Camera, color: tuple[int, int, int]) -> None:
    """3D segments a[i] -> b[i] (n, 3), drawn by sampling points along each (clipped at the near plane)."""
    n_pts = max(8, int(max(img.shape[:2]) * 0.75))
    t = np.linspace(0.0, 1.0, n_pts)[None, :, None]
    pts = (a[:, None, :] * (1.0 - t) + b[:, None, :] * t).reshape(-1, 3)
    uv, front = project(pts, cam)
    splat_points(img, uv, front, color)


def occupancy_points(occupied: np.ndarray, resolution: int, max_points: int = 30000,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Centres of the occupied cells of the finest cascade, subsampled to ``max_points``."""
    idx = np.flatnonzero(occupied)
    if idx.size > max_points:
        idx = (rng or np.random.default_rng(0)).choice(idx, max_points, replace=False)
    r = resolution
    ijk = np.stack([idx % r, (idx // r) % r, idx // (r * r)], axis=-1).astype(np.float64)
    return (ijk + 0.5) / r


def occupancy_overlay(shaded: np.ndarray, points: np.ndarray, cam: Camera) -> np.ndarray:
    img = (shaded.astype(np.float32) * 0.4).astype(np.uint8)
    uv, front = project(points, cam)
    splat_points(img, uv, front, (80, 255, 120))
    return img


def frusta_overlay(shaded: np.ndarray, c2ws: np.ndarray, intrinsics: np.ndarray, sizes: np.ndarray, cam: Camera,
                   length: float = 0.08, highlight: int | None = None) -> np.ndarray:
    """Draw each training camera as a small pyramid (apex at its centre, base ``length`` ahead)."""
    img = shaded.copy()
    if len(c2ws) == 0:
        return img
    starts, ends = [], []
    for m, k, (w, h) in zip(c2ws, intrinsics, sizes):
        fx, fy, cx, cy = k
        corners_px = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        dirs = np.stack([(corners_px[:, 0] - cx) / fx, (corners_px[:, 1] - cy) / fy, np.ones(4)], axis=-1)
        base = m[:, 3] + (dirs @ m[:, :3].T) * length
        apex = np.repeat(m[:, 3][None], 4, axis=0)
        a = np.concatenate([apex, base])
        b = np.concatenate([base, np.roll(base, -1, axis=0)])
        starts.append(a)
        ends.append(b)
    a_all, b_all = np.concatenate(starts), np.concatenate(ends)
    draw_segments(img, a_all, b_all, cam, (255, 160, 40))
    if highlight is not None and 0 <= highlight < len(starts):
        draw_segments(img, starts[highlight], ends[highlight], cam, (40, 200, 255))
    return img
