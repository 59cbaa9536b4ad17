"""Viewport pictures and overlay geometry: depth/opacity maps, and the 3D lines and points drawn over the render
(training-camera frusta, occupied cells, the crop box, the scene box, axes, a camera path).

Overlays are plain geometry in ngp space (``Layer``); the viewport draws them with OpenGL at window resolution
(``gl_overlay.py``), and screenshots rasterise the same layers into the image (``rasterize``). No toolkit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.cameras import Camera

MODES = ("rgb", "depth", "opacity", "occupancy", "cameras", "normals", "points")
MODE_LABELS = {
    "rgb": "RGB",
    "depth": "Depth",
    "opacity": "Opacity",
    "occupancy": "Occupancy cells",
    "cameras": "Training cameras",
    "normals": "Normals",
    "points": "Sparse points + cameras",
}
# Overlay layers the user can switch on (the modes "occupancy", "cameras" and "points" switch on theirs too).
OVERLAYS = ("cameras", "occupancy", "crop", "box", "axes", "points")
OVERLAY_LABELS = {
    "cameras": "cameras",
    "occupancy": "cells",
    "crop": "crop box",
    "box": "scene box",
    "axes": "axes",
    "points": "points",
}
# the sparse-points view: the points (those outside the scene box in OUTSIDE_COLOR), the cameras and the box, which
# is also how far rays march (to the box edge; docs/conventions.md)
MODE_OVERLAYS = {"cameras": ("cameras",), "occupancy": ("occupancy",), "points": ("points", "cameras", "box")}
MODE_DIMMED = {"occupancy": 0.4, "points": 0.3}  # modes whose picture is darkened so what is drawn over it stands out

CAMERA_COLOR = (255, 160, 40, 255)
HIGHLIGHT_COLOR = (40, 200, 255, 255)
OCCUPANCY_COLOR = (80, 255, 120, 255)
CROP_COLOR = (255, 230, 60, 255)
BOX_COLOR = (120, 170, 255, 255)
OUTSIDE_COLOR = (255, 40, 200, 255)  # sparse points outside the scene box: what the model cannot reach


def opaque(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w, 4) uint8 with alpha 255 (the viewport's upload format)."""
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)], axis=-1)


# ---------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Layer:
    """One overlay: ``kind`` "lines" (``vertices`` (2n, 3): segment i is rows 2i, 2i+1) or "points" ((n, 3)), in
    ngp space, with a colour per vertex ``colors`` (len(vertices), 4) uint8. ``key`` changes whenever the geometry
    does, so the GL side re-uploads only then."""

    name: str
    kind: str
    vertices: np.ndarray
    colors: np.ndarray
    key: tuple = ()


def layer(
    name: str, kind: str, vertices: np.ndarray, color: tuple[int, int, int, int] | np.ndarray, key: tuple = ()
) -> Layer:
    """A layer with one colour for every vertex, or a colour per vertex ((n, 4))."""
    v = np.ascontiguousarray(np.asarray(vertices, dtype=np.float32).reshape(-1, 3))
    c = np.asarray(color, dtype=np.uint8)
    c = np.ascontiguousarray(np.broadcast_to(c, (len(v), 4)) if c.ndim == 1 else c.reshape(len(v), 4))
    return Layer(name, kind, v, c, key)


def frustum_segments(c2w: np.ndarray, intrinsics: np.ndarray, size: np.ndarray, length: float) -> np.ndarray:
    """A camera as a pyramid (apex at its centre, base ``length`` ahead, image corners): (8, 2, 3) segments.
    c2w: (3, 4) OpenCV axes; intrinsics: fx, fy, cx, cy; size: width, height."""
    m = np.asarray(c2w, dtype=np.float64)
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    w, h = (float(v) for v in size)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    dirs = np.stack([(corners[:, 0] - cx) / fx, (corners[:, 1] - cy) / fy, np.ones(4)], axis=-1)
    base = m[:, 3] + (dirs @ m[:, :3].T) * length
    apex = np.repeat(m[:, 3][None], 4, axis=0)
    return np.concatenate([np.stack([apex, base], 1), np.stack([base, np.roll(base, -1, axis=0)], 1)])


def frusta_layer(
    name: str,
    c2ws: np.ndarray,
    intrinsics: np.ndarray,
    sizes: np.ndarray,
    length: float = 0.08,
    highlight: int | None = None,
    color=CAMERA_COLOR,
    highlight_color=HIGHLIGHT_COLOR,
    key: tuple = (),
) -> Layer:
    """Frusta of cameras (n, 3, 4) with intrinsics (n, 4) and sizes (n, 2); camera ``highlight`` in its own colour."""
    if len(c2ws) == 0:
        return layer(name, "lines", np.zeros((0, 3)), color, key)
    segs = np.stack([frustum_segments(m, k, s, length) for m, k, s in zip(c2ws, intrinsics, sizes)])  # (n, 8, 2, 3)
    colors = np.broadcast_to(np.asarray(color, dtype=np.uint8), (len(c2ws), 16, 4)).copy()
    if highlight is not None and 0 <= highlight < len(c2ws):
        colors[highlight] = highlight_color
    return layer(name, "lines", segs.reshape(-1, 3), colors.reshape(-1, 4), key)


def box_layer(name: str, lo, hi, color=CROP_COLOR, key: tuple = ()) -> Layer:
    """The 12 edges of the axis-aligned box [lo, hi]."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    corners = np.array([[(hi if (i >> a) & 1 else lo)[a] for a in range(3)] for i in range(8)])
    edges = [(i, i | (1 << a)) for i in range(8) for a in range(3) if not (i >> a) & 1]
    return layer(name, "lines", corners[np.array(edges).reshape(-1)], color, key)


def axes_layer(name: str = "axes", origin=(0.5, 0.5, 0.5), length: float = 0.25) -> Layer:
    """x red, y (up) green, z blue, from ``origin``."""
    o = np.asarray(origin, dtype=np.float64)
    verts = np.concatenate([[o, o + length * np.eye(3)[a]] for a in range(3)])
    colors = np.repeat(np.array([[255, 60, 60, 255], [60, 230, 60, 255], [70, 120, 255, 255]]), 2, axis=0)
    return layer(name, "lines", verts, colors, ("axes", tuple(o), length))


def polyline_layer(name: str, points: np.ndarray, color, closed: bool = False, key: tuple = ()) -> Layer:
    """Segments joining consecutive points (n, 3) (and the last to the first when ``closed``)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(p) < 2:
        return layer(name, "lines", np.zeros((0, 3)), color, key)
    ends = np.roll(p, -1, axis=0) if closed else p[1:]
    starts = p if closed else p[:-1]
    return layer(name, "lines", np.stack([starts, ends], 1).reshape(-1, 3), color, key)


def occupancy_points(
    occupied: np.ndarray, resolution: int, max_points: int = 30000, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Centres of the occupied cells of the finest cascade, subsampled to ``max_points``."""
    idx = np.flatnonzero(occupied)
    if idx.size > max_points:
        idx = (rng or np.random.default_rng(0)).choice(idx, max_points, replace=False)
    r = resolution
    ijk = np.stack([idx % r, (idx // r) % r, idx // (r * r)], axis=-1).astype(np.float64)
    return (ijk + 0.5) / r


# ---------------------------------------------------------------------------------------------- projection
def view_projection(cam: Camera, near: float = 0.01, far: float = 100.0) -> np.ndarray:
    """(4, 4) matrix taking ngp-space points (homogeneous) to OpenGL clip space for ``cam`` (OpenCV axes, pixel
    centres at integer + 0.5, y down in pixels and up in NDC), so GL lines land on the pixels ``project`` gives."""
    m = cam.c2w.detach().cpu().numpy().astype(np.float64)
    w2c = np.eye(4)
    w2c[:3, :3] = m[:, :3].T
    w2c[:3, 3] = -m[:, :3].T @ m[:, 3]
    w, h = float(cam.width), float(cam.height)
    proj = np.array(
        [
            [2.0 * cam.fx / w, 0.0, 2.0 * cam.cx / w - 1.0, 0.0],
            [0.0, -2.0 * cam.fy / h, 1.0 - 2.0 * cam.cy / h, 0.0],
            [0.0, 0.0, (far + near) / (far - near), -2.0 * far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    return proj @ w2c


def project(points: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World points (n, 3) -> pixel coordinates (n, 2) and a mask of points in front of the camera."""
    m = cam.c2w.detach().cpu().numpy().astype(np.float64)
    local = (points - m[:, 3]) @ m[:, :3]  # rows dotted with right, down, forward
    z = local[:, 2]
    front = z > 1e-4
    zs = np.where(front, z, 1.0)
    uv = np.stack([cam.fx * local[:, 0] / zs + cam.cx, cam.fy * local[:, 1] / zs + cam.cy], axis=-1)
    return uv, front


def rasterize(img: np.ndarray, layers: list[Layer], cam: Camera, near: float = 0.01) -> np.ndarray:
    """Draw ``layers`` into a copy of ``img`` (h, w, 3) uint8, 1-pixel lines and points, segments clipped at the
    near plane (for screenshots: the viewport draws the same layers with OpenGL)."""
    out = img.copy()
    m = cam.c2w.detach().cpu().numpy().astype(np.float64)
    for lay in layers:
        if len(lay.vertices) == 0:
            continue
        pts = lay.vertices.astype(np.float64)
        rgb = lay.colors[:, :3]
        if lay.kind == "points":
            uv, front = project(pts, cam)
            _splat(out, uv[front], rgb[front])
            continue
        a, b, ca = pts[0::2], pts[1::2], rgb[0::2]
        za = (a - m[:, 3]) @ m[:, 2]
        zb = (b - m[:, 3]) @ m[:, 2]
        keep = (za > near) | (zb > near)
        a, b, za, zb, ca = a[keep], b[keep], za[keep], zb[keep], ca[keep]
        t = np.clip((near - za) / np.where(np.abs(zb - za) > 1e-12, zb - za, 1e-12), 0.0, 1.0)[:, None]
        a = np.where((za < near)[:, None], a + (b - a) * t, a)  # move the end behind the camera onto the plane
        b = np.where((zb < near)[:, None], b + (a - b) * (1.0 - t), b)
        ua, _ = project(a, cam)
        ub, _ = project(b, cam)
        n = np.clip(np.ceil(np.abs(ub - ua).max(axis=1)).astype(np.int64) + 1, 2, 4 * max(img.shape[:2]))
        for i in range(len(ua)):  # pixel-dense samples along each projected segment
            s = np.linspace(0.0, 1.0, n[i])[:, None]
            _splat(out, ua[i] * (1.0 - s) + ub[i] * s, np.broadcast_to(ca[i], (n[i], 3)))
    return out


def _splat(img: np.ndarray, uv: np.ndarray, rgb: np.ndarray) -> None:
    h, w = img.shape[:2]
    px = np.floor(uv).astype(np.int64)
    keep = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    img[px[keep, 1], px[keep, 0]] = rgb[keep]
