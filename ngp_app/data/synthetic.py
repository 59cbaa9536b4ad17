"""Procedural demo scene: ray-traces an analytic object into a NeRF-synthetic (Blender) dataset.

The bundled `scenes/demo` is made by `make_scene`; it needs only numpy, so it can be rebuilt
anywhere and gives tests and the app a small, known scene with textures, edges and thin parts.
Conventions follow Blender/NeRF-synthetic: world z up, camera looks along its -Z with +Y up.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from ..fileio import atomic_write_bytes
from .colour import expose
from .synthetic_shapes import (
    Box,
    Cone,
    Cylinder,
    Primitive,
    Sphere,
    Torus,
    bands,
    checker_plane,
    checker_sphere,
    noise_texture,
    rotation,
    solid,
    spiral,
    stickers,
    torus_checker,
)

logger = logging.getLogger(__name__)

#: Horizontal field of view of Blender's lego scene, in radians.
CAMERA_ANGLE_X = 0.6911112070083618
#: Distance of every camera from the origin.
CAMERA_RADIUS = 4.0
#: Direction *towards* the key light (world space, unit).
LIGHT_DIR = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
AMBIENT, DIFFUSE, SPECULAR, SHININESS = 0.28, 0.72, 0.22, 48.0


#: Radius of the backdrop dome and the ground disc (``backdrop=True``); the ground's top is at GROUND_Z.
BACKDROP_RADIUS, GROUND_Z = 10.0, -1.0
#: Range of a far backdrop's radius (``make_scene(backdrop_radius=...)``): around the cameras, inside aabb_scale 128.
FAR_BACKDROP_RADII = (CAMERA_RADIUS + 1.0, 180.0)
#: Camera paths of the training split: random views on the upper hemisphere, or one smooth turn (a video).
PATHS = ("random", "orbit")
#: Where ``make_scene(exposure_stops=...)`` records each image's exposure change (stops, per split).
EXPOSURE_FILE = "exposure_stops.json"


def backdrop(far_radius: float | None = None) -> tuple[Primitive, ...]:
    """An opaque ground disc and a dome around the object, both covered in non-repeating noise, so that every
    pixel has texture (structure-from-motion tests need features everywhere, not a transparent background).
    ``far_radius``: the dome alone, of that radius, its blotches as large in the views as the default dome's."""
    dome = BACKDROP_RADIUS + 0.5 if far_radius is None else far_radius
    sky = noise_texture(
        [(0.15, 0.25, 0.45), (0.55, 0.65, 0.80), (0.95, 0.90, 0.75), (0.60, 0.25, 0.20)],
        scale=0.6 if far_radius is None else 0.6 * (BACKDROP_RADIUS + 0.5) / far_radius,
        seed=23,
    )
    if far_radius is not None:
        return (Sphere(dome, center=(0, 0, 0), texture=sky),)
    ground = noise_texture(
        [(0.20, 0.16, 0.10), (0.55, 0.45, 0.30), (0.85, 0.80, 0.65), (0.35, 0.45, 0.20)], scale=2.5, seed=11
    )
    return (Cylinder(BACKDROP_RADIUS, 0.05, center=(0, 0, GROUND_Z - 0.05), texture=ground), Sphere(dome, texture=sky))


@functools.lru_cache(maxsize=2)
def build_scene(with_backdrop: bool = False, backdrop_radius: float | None = None) -> tuple[Primitive, ...]:
    """The demo object: textured primitives plus thin rods and rings, inside a radius-1.5 ball (plus the
    ground and dome of :func:`backdrop` when asked, or its far dome of ``backdrop_radius``)."""
    extra = backdrop(backdrop_radius) if with_backdrop else ()
    z_top = -0.86  # top of the base disc
    return (
        # base disc, checkerboard on top and bottom
        Cylinder(
            1.05,
            0.07,
            center=(0, 0, z_top - 0.07),
            texture=checker_plane((0.85, 0.84, 0.80), (0.22, 0.24, 0.28), 0.21, side=(0.16, 0.27, 0.58)),
        ),
        # checkered ball at the origin on a stalk (keeps the image centre opaque)
        Sphere(
            0.5,
            center=(0, 0, 0),
            rot=rotation((1, 0, 0), 20),
            texture=checker_sphere((0.86, 0.14, 0.12), (0.96, 0.92, 0.80)),
        ),
        Cylinder(0.11, 0.5 * (-0.45 - z_top), center=(0, 0, 0.5 * (-0.45 + z_top)), texture=solid((0.55, 0.56, 0.62))),
        # "Rubik" cube with a barber-pole cone on top
        Box(
            (0.24, 0.24, 0.24),
            center=(0.62, -0.42, z_top + 0.24),
            rot=rotation((0, 0, 1), 25),
            texture=stickers(
                0.24,
                [
                    (0.95, 0.95, 0.95),
                    (0.98, 0.85, 0.10),
                    (0.85, 0.10, 0.10),
                    (1.00, 0.50, 0.05),
                    (0.10, 0.30, 0.85),
                    (0.10, 0.65, 0.25),
                ],
                gap=(0.04, 0.04, 0.05),
            ),
        ),
        Cone(
            0.2,
            0.4,
            center=(0.62, -0.42, z_top + 0.48),
            texture=spiral((0.15, 0.35, 0.90), (0.95, 0.95, 0.95), turns=2.0, n_stripes=4),
        ),
        # fat tilted torus
        Torus(
            0.28,
            0.1,
            center=(-0.6, 0.45, -0.5),
            rot=rotation((1, 0.3, 0), 65),
            texture=torus_checker((1.0, 0.55, 0.10), (0.45, 0.15, 0.60), 0.28),
        ),
        # striped cylinder with a ball on top and a thin floating hoop around it
        Cylinder(
            0.17,
            0.3,
            center=(-0.55, -0.55, z_top + 0.3),
            texture=bands((0.95, 0.85, 0.15), (0.15, 0.60, 0.30), 0.12, cap=(0.10, 0.35, 0.20)),
        ),
        Sphere(0.13, center=(-0.55, -0.55, z_top + 0.73), texture=solid((0.85, 0.20, 0.65))),
        Torus(0.3, 0.015, center=(-0.55, -0.55, z_top + 0.36), texture=solid((0.85, 0.85, 0.90))),
        # thin "Saturn" ring around the ball
        Torus(0.78, 0.018, center=(0, 0, 0), rot=rotation((1, 1, 0), -22), texture=solid((0.95, 0.75, 0.20))),
        # antenna on the ball, a mast with a cross bar, and a slanted rod
        Cylinder.between((0, 0, 0.45), (0, 0, 1.05), 0.015, texture=solid((0.80, 0.80, 0.85))),
        Sphere(0.05, center=(0, 0, 1.08), texture=solid((0.10, 0.80, 0.85))),
        Cylinder.between((0.55, 0.55, z_top), (0.55, 0.55, 0.75), 0.02, texture=solid((0.70, 0.70, 0.75))),
        Cylinder.between((0.30, 0.80, 0.55), (0.80, 0.30, 0.55), 0.015, texture=solid((0.90, 0.90, 0.30))),
        Sphere(0.06, center=(0.55, 0.55, 0.80), texture=solid((0.90, 0.15, 0.15))),
        Cylinder.between((0.98, 0.0, z_top), (0.70, 0.20, 0.25), 0.018, texture=solid((0.30, 0.80, 0.90))),
    ) + extra


def trace_rays(
    rays_o: np.ndarray, rays_d: np.ndarray, with_backdrop: bool = False, backdrop_radius: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shade each ray's nearest hit: rgb (n_rays, 3) in [0, 1], hit (n_rays,) bool, t (n_rays,).

    rays_o, rays_d: (n_rays, 3), world space (directions need not be unit; t is in units of |d|=1).
    Misses get rgb 0 and t inf. Lambert + ambient from a fixed light, plus a mild Blinn specular.
    """
    rays_o = np.asarray(rays_o, dtype=np.float64).reshape(-1, 3)
    rays_d = np.asarray(rays_d, dtype=np.float64).reshape(-1, 3)
    rays_d = rays_d / np.linalg.norm(rays_d, axis=1, keepdims=True)
    n = rays_o.shape[0]
    t_best, prim_id, normal = np.full(n, np.inf), np.full(n, -1), np.zeros((n, 3))
    scene = build_scene(with_backdrop, backdrop_radius)
    od, oo = np.einsum("ij,ij->i", rays_o, rays_d), np.einsum("ij,ij->i", rays_o, rays_o)
    for k, prim in enumerate(scene):
        ids, t, nrm = prim.hits(rays_o, rays_d, od, oo)
        closer = t < t_best[ids]
        ids = ids[closer]
        t_best[ids], prim_id[ids], normal[ids] = t[closer], k, nrm[closer]
    hit = prim_id >= 0
    rgb = np.zeros((n, 3))
    idx = np.nonzero(hit)[0]
    if idx.size:
        d, nrm = rays_d[idx], normal[idx]
        nrm = np.where((np.einsum("ij,ij->i", nrm, d) > 0)[:, None], -nrm, nrm)  # face the viewer
        pts = rays_o[idx] + t_best[idx, None] * d
        albedo = np.zeros((idx.size, 3))
        for k, prim in enumerate(scene):
            m = prim_id[idx] == k
            if m.any():
                albedo[m] = prim.albedo(pts[m], nrm[m])
        lam = np.clip(nrm @ LIGHT_DIR, 0.0, None)
        half = LIGHT_DIR - d
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
        spec = SPECULAR * np.clip(np.einsum("ij,ij->i", nrm, half), 0.0, None) ** SHININESS
        sky = AMBIENT * (0.8 + 0.2 * nrm[:, 2])  # slightly brighter from above
        rgb[idx] = albedo * (sky + DIFFUSE * lam)[:, None] + (spec * (lam > 0))[:, None]
    return np.clip(rgb, 0.0, 1.0), hit, t_best


def focal_length(width: int, camera_angle_x: float) -> float:
    """Pinhole focal length in pixels from the horizontal FOV."""
    return 0.5 * width / np.tan(0.5 * camera_angle_x)


def pixel_rays(
    c2w: np.ndarray, px: np.ndarray, py: np.ndarray, width: int, height: int, camera_angle_x: float
) -> tuple[np.ndarray, np.ndarray]:
    """World rays through continuous pixel positions px, py (n,) (pixel (i, j) centre = i+.5, j+.5).

    c2w: (4, 4) camera-to-world, OpenGL/Blender convention. Returns rays_o, rays_d: (n, 3).
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    f = focal_length(width, camera_angle_x)
    dirs = np.stack([(px - 0.5 * width) / f, -(py - 0.5 * height) / f, -np.ones_like(px)], axis=-1)
    rays_d = dirs @ np.ascontiguousarray(c2w[:3, :3].T)  # strided 3x3 operands hit a slow path
    rays_d /= np.linalg.norm(rays_d, axis=1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], rays_d.shape).copy(), rays_d


def _subpixel_grid(pixels: np.ndarray, width: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions px, py (n_pixels * s * s,) of an s x s grid in each pixel; pixels: (n_pixels,)."""
    off = (np.arange(supersample) + 0.5) / supersample
    py = (pixels // width)[:, None, None] + off[None, :, None]
    px = (pixels % width)[:, None, None] + off[None, None, :]
    px, py = np.broadcast_arrays(px, py)
    return px.reshape(-1).astype(np.float64), py.reshape(-1).astype(np.float64)


def camera_rays(
    c2w: np.ndarray, width: int, height: int, camera_angle_x: float, supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """World rays for an s x s sub-pixel grid in every pixel (s=1: pixel centres).

    Returns rays_o, rays_d: (height * width * s * s, 3), ordered (row j, column i, sub_y, sub_x).
    """
    px, py = _subpixel_grid(np.arange(width * height), width, supersample)
    return pixel_rays(c2w, px, py, width, height, camera_angle_x)


def _edge_pixels(rgb: np.ndarray, hit: np.ndarray, t: np.ndarray, tol: float = 0.03) -> np.ndarray:
    """Mask (H, W) of pixels differing from one of their 8 neighbours in colour, coverage or depth.

    rgb: (H, W, 3), hit: (H, W), t: (H, W) from one ray per pixel centre.
    """
    feat = np.concatenate([rgb, hit[..., None], np.where(hit, 0.5 * t, 0.0)[..., None]], axis=-1)
    h, w = hit.shape
    pad = np.pad(feat, ((1, 1), (1, 1), (0, 0)), mode="edge")
    flag = np.zeros((h, w), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                nb = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                flag |= (np.abs(feat - nb) > tol).any(axis=-1)
    return flag


def render_view(
    c2w: np.ndarray,
    width: int,
    height: int,
    camera_angle_x: float = CAMERA_ANGLE_X,
    supersample: int = 3,
    adaptive: bool = True,
    with_backdrop: bool = False,
    backdrop_radius: float | None = None,
) -> np.ndarray:
    """Anti-aliased straight-alpha RGBA image (height, width, 4) in [0, 1]; alpha 0 on misses.

    Each pixel averages an s x s grid of rays. With `adaptive`, pixels are first traced once at
    their centre and only those differing from a neighbour (edges, texture seams) get the grid;
    ~2x faster, but features thinner than a pixel may be missed, so tiny images should not use it.
    """
    s2 = supersample * supersample
    n_pix = height * width
    rgba = np.zeros((n_pix, 4))
    todo = np.arange(n_pix)
    if adaptive and s2 > 1:
        rgb, hit, t = trace_rays(*camera_rays(c2w, width, height, camera_angle_x, 1), with_backdrop, backdrop_radius)
        rgba[:, :3], rgba[:, 3] = rgb, hit
        flag = _edge_pixels(rgb.reshape(height, width, 3), hit.reshape(height, width), t.reshape(height, width))
        todo = np.nonzero(flag.reshape(-1))[0]
    px, py = _subpixel_grid(todo, width, supersample)
    rgb, hit, _ = trace_rays(*pixel_rays(c2w, px, py, width, height, camera_angle_x), with_backdrop, backdrop_radius)
    rgb, hit = rgb.reshape(-1, s2, 3), hit.reshape(-1, s2).astype(np.float64)
    count = hit.sum(axis=1)
    rgba[todo, :3] = (rgb * hit[..., None]).sum(axis=1) / np.maximum(count, 1.0)[:, None]
    rgba[todo, 3] = count / s2
    return rgba.reshape(height, width, 4)


def look_at(
    eye: Sequence[float], target: Sequence[float] = (0.0, 0.0, 0.0), up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """Camera-to-world (4, 4) at `eye` whose -Z axis points at `target`, +Y roughly along `up`."""
    eye = np.asarray(eye, dtype=np.float64)
    z = eye - np.asarray(target, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, dtype=np.float64), z)
    if np.linalg.norm(x) < 1e-8:  # looking straight along `up`: any right vector will do
        x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, np.cross(z, x), z, eye
    return c2w


def _sphere_point(z: np.ndarray, azimuth: np.ndarray, radius: float) -> np.ndarray:
    """Points (n, 3) on a sphere of `radius` from unit height z (n,) and azimuth (n,)."""
    rho = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    return radius * np.stack([rho * np.cos(azimuth), rho * np.sin(azimuth), z], axis=1)


def random_poses(n: int, seed: Sequence[int], radius: float = CAMERA_RADIUS, below_fraction: float = 0.0) -> np.ndarray:
    """c2w (n, 4, 4) uniform on the upper hemisphere, with `below_fraction` of them below it."""
    rng = np.random.default_rng(list(seed))
    n_below = int(round(n * below_fraction))
    z = np.concatenate([rng.uniform(0.03, 0.95, n - n_below), rng.uniform(-0.45, -0.03, n_below)])
    z = z[rng.permutation(n)]
    eyes = _sphere_point(z, rng.uniform(0.0, 2.0 * np.pi, n), radius)
    return np.stack([look_at(e) for e in eyes]) if n else np.zeros((0, 4, 4))


def ring_poses(
    n: int, radius: float = CAMERA_RADIUS, elevation_deg: float = 30.0, wobble_deg: float = 10.0
) -> np.ndarray:
    """c2w (n, 4, 4) on one turn around z at `elevation_deg` +- a gentle wave (test-split path)."""
    k = np.arange(n)
    az = 2.0 * np.pi * k / max(n, 1)
    elev = np.deg2rad(elevation_deg + wobble_deg * np.sin(2.0 * az))
    eyes = _sphere_point(np.sin(elev), az, radius)
    return np.stack([look_at(e) for e in eyes]) if n else np.zeros((0, 4, 4))


def aabb_scale_containing(radius: float) -> float:
    """The smallest power-of-two ``aabb_scale`` whose box holds a ball of ``radius`` (world units) about the origin
    (scenes here use the NeRF-synthetic mapping: ``NERF_SCALE`` and the box centred on the origin)."""
    from .cameras import NERF_SCALE  # here: the module needs only numpy until a far backdrop is asked for

    return float(2 ** math.ceil(math.log2(2.0 * radius * NERF_SCALE)))


def exposure_changes(n: int, stops: float, seed: Sequence[int]) -> np.ndarray:
    """(n,) exposure changes in stops, uniform in [-stops, stops] from ``seed`` (all 0 for ``stops`` 0)."""
    if stops <= 0:
        return np.zeros(n)
    return np.random.default_rng(list(seed)).uniform(-stops, stops, n)


def encode_png(rgba: np.ndarray) -> bytes:
    """8-bit PNG bytes from a float image (H, W, 4 or 3) in [0, 1] (RGBA or RGB)."""
    img = np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
    return iio.imwrite("<bytes>", img, extension=".png", compress_level=9)


def make_scene(
    out_dir: str | Path,
    *,
    width: int = 200,
    height: int = 200,
    n_train: int = 80,
    n_val: int = 10,
    n_test: int = 20,
    seed: int = 0,
    progress: bool = True,
    supersample: int = 3,
    camera_angle_x: float = CAMERA_ANGLE_X,
    with_backdrop: bool = False,
    path: str = "random",
    backdrop_radius: float | None = None,
    exposure_stops: float = 0.0,
) -> Path:
    """Render the demo object into `out_dir` in NeRF-synthetic layout and return `out_dir`.

    Writes {train,val,test}/r_<i>.png (RGBA; RGB with the opaque `with_backdrop`) and transforms_<split>.json;
    same seed, same bytes. `path`: the training views are random on the sphere ("random", 15% below the
    equator unless the ground hides them) or one smooth turn around the object ("orbit", like a video).
    `backdrop_radius` (world units, implies the backdrop): a far backdrop, the dome alone at that radius, and an
    ``aabb_scale`` in the transforms whose box contains it.
    `exposure_stops` > 0: every image of every split is exposed by its own change u, uniform in [-stops, stops]
    (its linear colour times 2**u, clipped; alpha unchanged), as a camera with auto-exposure would; the changes
    are written to `exposure_stops.json` ({"stops": S, "train": [u, ...], "val": [...], "test": [...]}).
    """
    if path not in PATHS:
        raise ValueError(f"unknown camera path {path!r} (choose from {', '.join(PATHS)})")
    extra_meta: dict[str, float] = {}
    if backdrop_radius is not None:
        lo, hi = FAR_BACKDROP_RADII
        if not lo <= backdrop_radius <= hi:
            raise ValueError(f"backdrop radius must be in {lo:g}..{hi:g}, not {backdrop_radius:g}")
        with_backdrop = True
        extra_meta["aabb_scale"] = aabb_scale_containing(backdrop_radius)
    out = Path(out_dir)
    train = (
        ring_poses(n_train, elevation_deg=25.0)
        if path == "orbit"
        else random_poses(n_train, (seed, 0), below_fraction=0.0 if with_backdrop else 0.15)
    )
    splits = {
        "train": train,
        "val": random_poses(n_val, (seed, 1)),
        "test": ring_poses(n_test),
    }
    total = sum(len(p) for p in splits.values())
    logger.info(
        "rendering %d views (%dx%d, %dx%d supersampling) into %s", total, width, height, supersample, supersample, out
    )
    start = time.perf_counter()
    adaptive = min(width, height) >= 100  # thin rods span >1 px, so edge-only supersampling is safe
    bar = tqdm(total=total, desc="make-scene", unit="view", disable=not progress)
    changes = {
        name: exposure_changes(len(p), exposure_stops, (seed, 100 + k)) for k, (name, p) in enumerate(splits.items())
    }
    for split, poses in splits.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        frames: list[dict] = []
        rot_step = 2.0 * np.pi / len(poses) if split == "test" and len(poses) else 0.0
        for i, c2w in enumerate(poses):
            rgba = render_view(
                c2w,
                width,
                height,
                camera_angle_x,
                supersample,
                adaptive,
                with_backdrop,
                backdrop_radius,
            )
            if exposure_stops > 0:
                rgba[..., :3] = expose(rgba[..., :3], changes[split][i])
            atomic_write_bytes(out / split / f"r_{i}.png", encode_png(rgba[..., :3] if with_backdrop else rgba))
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": rot_step, "transform_matrix": c2w.tolist()})
            bar.update(1)
        for stale in (out / split).iterdir():  # frames left over from a bigger earlier run
            m = re.fullmatch(r"r_(\d+)\.png", stale.name)
            if m and int(m.group(1)) >= len(poses):
                stale.unlink()
        meta = {"camera_angle_x": float(camera_angle_x), **extra_meta, "frames": frames}
        text = json.dumps(meta, indent=4) + "\n"
        atomic_write_bytes(out / f"transforms_{split}.json", text.encode())
    bar.close()
    record = out / EXPOSURE_FILE
    if exposure_stops > 0:
        data = {
            "stops": float(exposure_stops),
            **{name: [round(float(u), 6) for u in c] for name, c in changes.items()},
        }
        atomic_write_bytes(record, (json.dumps(data, indent=1) + "\n").encode())
    elif record.exists():  # left by an earlier run with exposure changes
        record.unlink()
    logger.info("scene written to %s in %.1f s", out, time.perf_counter() - start)
    return out
