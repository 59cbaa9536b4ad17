"""Analytic ray/primitive intersections and procedural textures for the synthetic demo scene.

Each primitive lives in its own local frame (centre + rotation) and is intersected in canonical
form, so a scene is just a list of instances. Everything is vectorised over rays with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import numpy as np

#: (p_local: (n, 3), n_local: (n, 3)) -> albedo: (n, 3); textures work in the primitive's frame.
Texture = Callable[[np.ndarray, np.ndarray], np.ndarray]

EPS = 1e-7


def rotation(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """Rotation matrix (3, 3) about `axis` by `angle_deg` (Rodrigues); columns = local axes."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    th = np.deg2rad(angle_deg)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(th) * k + (1.0 - np.cos(th)) * (k @ k)


def frame_from_z(z: Sequence[float]) -> np.ndarray:
    """Some orthonormal frame (3, 3) whose third column is the unit vector along `z`."""
    z = np.asarray(z, dtype=np.float64)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def solid(color: Sequence[float]) -> Texture:
    """Constant-colour texture."""
    c = np.asarray(color, dtype=np.float64)
    return lambda p, n: np.broadcast_to(c, p.shape).copy()


def _pick(parity: np.ndarray, a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per-ray colour (n, 3): `a` where parity is even, `b` where odd."""
    return np.where((parity % 2 == 0)[:, None], np.asarray(a, float), np.asarray(b, float))


def solve_quartic(c3: np.ndarray, c2: np.ndarray, c1: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """Real roots (n, 4) of t^4 + c3 t^3 + c2 t^2 + c1 t + c0, nan where complex (Ferrari).

    Coefficients: (n,). Closed form is ~20x faster than batched eigvals, which remain the
    fallback for (near-)biquadratic rows where Ferrari's split degenerates.
    """
    a2 = c3 * c3
    p = c2 - 0.375 * a2
    q = c1 - 0.5 * c3 * c2 + 0.125 * a2 * c3
    r = c0 - 0.25 * c3 * c1 + a2 * c2 / 16.0 - 3.0 * a2 * a2 / 256.0
    # largest (always >= 0) root m of the resolvent cubic m^3 + A m^2 + B m + C
    A, B, C = p, 0.25 * p * p - r, -0.125 * q * q
    P, Q = B - A * A / 3.0, 2.0 * A**3 / 27.0 - A * B / 3.0 + C
    D = 0.25 * Q * Q + P**3 / 27.0
    sq = np.sqrt(np.maximum(D, 0.0))
    one = np.cbrt(-0.5 * Q + sq) + np.cbrt(-0.5 * Q - sq)
    Pn = np.minimum(P, -1e-300)
    cos3 = np.clip(1.5 * Q / Pn * np.sqrt(-3.0 / Pn), -1.0, 1.0)
    three = 2.0 * np.sqrt(-Pn / 3.0) * np.cos(np.arccos(cos3) / 3.0)
    m = np.where(D > 0, one, three) - A / 3.0
    for _ in range(2):  # Newton polish of the resolvent root
        g, dg = ((m + A) * m + B) * m + C, (3.0 * m + 2.0 * A) * m + B
        m = m - np.where(np.abs(dg) > 1e-12, g / np.where(dg == 0, 1.0, dg), 0.0)
    bad = ~(m > 1e-9)
    s = np.sqrt(2.0 * np.where(bad, 1.0, m))
    h = 0.5 * p + m
    k = 0.5 * q / s
    roots = []
    for sign in (1.0, -1.0):  # y^2 -+ s y + (h +- k) = 0
        disc = s * s - 4.0 * (h + sign * k)
        sd = np.where(disc >= 0, np.sqrt(np.maximum(disc, 0.0)), np.nan)
        roots += [0.5 * (sign * s + sd), 0.5 * (sign * s - sd)]
    out = np.stack(roots, axis=1) - 0.25 * c3[:, None]
    if bad.any():
        comp = np.zeros((int(bad.sum()), 4, 4))
        comp[:, 0] = -np.stack([c3[bad], c2[bad], c1[bad], c0[bad]], axis=1)
        comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
        ev = np.linalg.eigvals(comp)
        out[bad] = np.where(np.abs(ev.imag) < 1e-3, ev.real, np.nan)
    return out


class Primitive:
    """A shape in a local frame: world point x maps to local (x - center) @ rot."""

    bound: float = 1.0  # radius of a local-origin-centred sphere enclosing the shape

    def __init__(
        self, center: Sequence[float] = (0, 0, 0), rot: np.ndarray | None = None, texture: Texture | None = None
    ):
        self.center = np.asarray(center, dtype=np.float64)
        self.rot = np.ascontiguousarray(np.eye(3) if rot is None else rot, dtype=np.float64)
        self.rot_t = np.ascontiguousarray(self.rot.T)  # contiguous: numpy's strided matmul is slow
        self.texture = texture if texture is not None else solid((0.8, 0.8, 0.8))

    def _local(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local-frame t (n,) (inf on miss) and normals (n, 3) for local rays o, d: (n, 3)."""
        raise NotImplementedError

    def hits(
        self, rays_o: np.ndarray, rays_d: np.ndarray, od: np.ndarray | None = None, oo: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse hits: ray indices (k,), distances t (k,) and world normals (k, 3).

        rays_o, rays_d: (n_rays, 3), rays_d unit length; od = rays_o.rays_d and oo = |rays_o|^2,
        both (n_rays,), may be passed in to share them between primitives. Rays are culled against
        the bounding sphere with cheap matrix-vector products, and only the survivors are moved to
        the local frame, their origin advanced to the sphere entry (keeps root solving well posed).
        """
        od = np.einsum("ij,ij->i", rays_o, rays_d) if od is None else od
        oo = np.einsum("ij,ij->i", rays_o, rays_o) if oo is None else oo
        b = od - rays_d @ self.center
        c = oo - 2.0 * (rays_o @ self.center) + (self.center @ self.center - self.bound**2)
        disc = b * b - c
        idx = np.nonzero(disc > 0)[0]
        sq = np.sqrt(disc[idx])
        keep = -b[idx] + sq > EPS
        idx, sq = idx[keep], sq[keep]
        if idx.size == 0:
            return idx, np.zeros(0), np.zeros((0, 3))
        # Back off a little from the entry point so surfaces touching the bound are not skipped.
        t0 = np.maximum(-b[idx] - sq - 0.05 * self.bound - 1e-3, 0.0)
        d = rays_d[idx] @ self.rot
        o = (rays_o[idx] - self.center) @ self.rot + t0[:, None] * d
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t, nl = self._local(o, d)
        hit = np.isfinite(t)
        return idx[hit], t[hit] + t0[hit], nl[hit] @ self.rot_t

    def intersect(self, rays_o: np.ndarray, rays_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense hits: distance t (n_rays,) (inf on miss) and world normal (n_rays, 3)."""
        idx, t, nrm = self.hits(rays_o, rays_d)
        t_out, n_out = np.full(rays_o.shape[0], np.inf), np.zeros(rays_o.shape)
        t_out[idx], n_out[idx] = t, nrm
        return t_out, n_out

    def albedo(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Texture colour (n, 3) at world hit points (n, 3) with world normals (n, 3)."""
        return self.texture((points - self.center) @ self.rot, normals @ self.rot)


def _nearest(*cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise min over candidate t arrays (each (n,), inf/nan = invalid) and the argmin."""
    ts = np.stack([np.where(np.isfinite(c) & (c > EPS), c, np.inf) for c in cands], axis=1)
    k = np.argmin(ts, axis=1)
    return ts[np.arange(ts.shape[0]), k], k


def _safe(d: np.ndarray) -> np.ndarray:
    """Direction components with exact zeros nudged away, so slab/cap divisions stay finite."""
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


class Sphere(Primitive):
    """Sphere of `radius` centred on the local origin."""

    def __init__(self, radius: float, **kw):
        super().__init__(**kw)
        self.radius = self.bound = float(radius)

    def _local(self, o, d):
        b = np.einsum("ij,ij->i", o, d)
        disc = b * b - (np.einsum("ij,ij->i", o, o) - self.radius**2)
        sq = np.sqrt(disc)  # nan where disc < 0 -> invalid
        t, _ = _nearest(-b - sq, -b + sq)
        return t, (o + t[:, None] * d) / self.radius


class Box(Primitive):
    """Axis-aligned (in its local frame) box with half extents `half`: (3,)."""

    def __init__(self, half: Sequence[float], **kw):
        super().__init__(**kw)
        self.half = np.asarray(half, dtype=np.float64)
        self.bound = float(np.linalg.norm(self.half))

    def _local(self, o, d):
        ds = _safe(d)
        t1, t2 = (-self.half - o) / ds, (self.half - o) / ds
        tnear, tfar = np.minimum(t1, t2), np.maximum(t1, t2)
        axis = np.argmax(tnear, axis=1)
        tmin, tmax = tnear.max(axis=1), tfar.min(axis=1)
        t = np.where((tmax >= tmin) & (tmin > EPS), tmin, np.inf)
        nl = np.zeros_like(o)
        rows = np.arange(o.shape[0])
        nl[rows, axis] = -np.sign(ds[rows, axis])
        return t, nl


class Cylinder(Primitive):
    """Capped cylinder of `radius` along local z, spanning z in [-half_height, half_height]."""

    def __init__(self, radius: float, half_height: float, **kw):
        super().__init__(**kw)
        self.radius, self.hh = float(radius), float(half_height)
        self.bound = float(np.hypot(radius, half_height))

    @classmethod
    def between(cls, p0: Sequence[float], p1: Sequence[float], radius: float, **kw) -> Cylinder:
        """Thin rod from world point p0 to p1."""
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        return cls(radius, 0.5 * np.linalg.norm(p1 - p0), center=0.5 * (p0 + p1), rot=frame_from_z(p1 - p0), **kw)

    def _local(self, o, d):
        ds = _safe(d)
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
        c = o[:, 0] ** 2 + o[:, 1] ** 2 - self.radius**2
        ts = (-b - np.sqrt(b * b - a * c)) / np.where(a > 1e-14, a, np.nan)
        ts = np.where(np.abs(o[:, 2] + ts * d[:, 2]) <= self.hh, ts, np.inf)
        caps = []
        for z in (self.hh, -self.hh):
            tc = (z - o[:, 2]) / ds[:, 2]
            px, py = o[:, 0] + tc * d[:, 0], o[:, 1] + tc * d[:, 1]
            caps.append(np.where(px * px + py * py <= self.radius**2, tc, np.inf))
        t, k = _nearest(ts, *caps)
        p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
        nl = np.stack([p[:, 0], p[:, 1], np.zeros_like(t)], axis=1) / self.radius
        nl[k == 1] = (0.0, 0.0, 1.0)
        nl[k == 2] = (0.0, 0.0, -1.0)
        return t, nl


class Cone(Primitive):
    """Solid cone along local z: base disc of `radius` at z=0, apex at z=`height`."""

    def __init__(self, radius: float, height: float, **kw):
        super().__init__(**kw)
        self.radius, self.height = float(radius), float(height)
        self.bound = max(self.radius, self.height)

    def _local(self, o, d):
        k2 = (self.radius / self.height) ** 2
        w0 = self.height - o[:, 2]
        a = d[:, 0] ** 2 + d[:, 1] ** 2 - k2 * d[:, 2] ** 2
        b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1] + k2 * w0 * d[:, 2]
        c = o[:, 0] ** 2 + o[:, 1] ** 2 - k2 * w0**2
        sq = np.sqrt(b * b - a * c)
        lin = np.abs(a) < 1e-12
        a_s = np.where(lin, 1.0, a)
        r1 = np.where(lin, -c / (2 * b), (-b - sq) / a_s)
        r2 = np.where(lin, np.inf, (-b + sq) / a_s)
        side = [
            np.where((o[:, 2] + r * d[:, 2] >= 0) & (o[:, 2] + r * d[:, 2] <= self.height), r, np.inf) for r in (r1, r2)
        ]
        tb = -o[:, 2] / _safe(d)[:, 2]
        px, py = o[:, 0] + tb * d[:, 0], o[:, 1] + tb * d[:, 1]
        tb = np.where(px * px + py * py <= self.radius**2, tb, np.inf)
        t, k = _nearest(*side, tb)
        p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
        nl = np.stack([p[:, 0], p[:, 1], k2 * (self.height - p[:, 2])], axis=1)
        nl /= np.maximum(np.linalg.norm(nl, axis=1, keepdims=True), 1e-12)
        nl[k == 2] = (0.0, 0.0, -1.0)
        return t, nl


class Torus(Primitive):
    """Torus around local z: ring `major` radius, tube `minor` radius (quartic, solved exactly)."""

    def __init__(self, major: float, minor: float, **kw):
        super().__init__(**kw)
        self.R, self.r = float(major), float(minor)
        self.bound = self.R + self.r

    def _local(self, o, d):
        R, r = self.R, self.r
        n = o.shape[0]
        t_out = np.full(n, np.inf)
        # Cheap exact cull: the ray's piece inside the slab |z| <= r must reach the annulus.
        ds = _safe(d)
        za, zb = (-r - o[:, 2]) / ds[:, 2], (r - o[:, 2]) / ds[:, 2]
        lo = np.maximum(np.minimum(za, zb), 0.0)
        hi = np.minimum(np.maximum(za, zb), 2.2 * self.bound + 0.01)
        a2 = d[:, 0] ** 2 + d[:, 1] ** 2
        b2 = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
        rho2 = lambda t: o[:, 0] ** 2 + o[:, 1] ** 2 + 2 * b2 * t + a2 * t * t  # noqa: E731
        tv = np.clip(-b2 / np.maximum(a2, 1e-14), lo, hi)
        keep = (hi >= lo) & (rho2(tv) <= (R + r) ** 2) & (np.maximum(rho2(lo), rho2(hi)) >= (R - r) ** 2)
        idx = np.nonzero(keep)[0]
        if idx.size:
            oo, dd = o[idx], d[idx]
            m, p_ = np.einsum("ij,ij->i", oo, oo), np.einsum("ij,ij->i", oo, dd)
            q = m + R * R - r * r
            c3 = 4 * p_
            c2 = 4 * p_ * p_ + 2 * q - 4 * R * R * (dd[:, 0] ** 2 + dd[:, 1] ** 2)
            c1 = 4 * p_ * q - 8 * R * R * (oo[:, 0] * dd[:, 0] + oo[:, 1] * dd[:, 1])
            c0 = q * q - 4 * R * R * (oo[:, 0] ** 2 + oo[:, 1] ** 2)
            tr = solve_quartic(c3, c2, c1, c0)
            for _ in range(3):  # Newton polish on the quartic
                f = (((tr + c3[:, None]) * tr + c2[:, None]) * tr + c1[:, None]) * tr + c0[:, None]
                df = ((4 * tr + 3 * c3[:, None]) * tr + 2 * c2[:, None]) * tr + c1[:, None]
                tr = tr - f / np.where(np.abs(df) > 1e-12, df, np.inf)
            pts = oo[:, None, :] + tr[..., None] * dd[:, None, :]
            dist = np.hypot(np.hypot(pts[..., 0], pts[..., 1]) - R, pts[..., 2])
            on = np.abs(dist - r) < 1e-3 * r
            tr = np.where(on & (tr > EPS), tr, np.inf)
            t_out[idx] = tr.min(axis=1)
        p = o + np.where(np.isfinite(t_out), t_out, 0.0)[:, None] * d
        rho = np.maximum(np.hypot(p[:, 0], p[:, 1]), 1e-12)
        nl = p.copy()
        nl[:, 0] -= R * p[:, 0] / rho
        nl[:, 1] -= R * p[:, 1] / rho
        nl /= np.maximum(np.linalg.norm(nl, axis=1, keepdims=True), 1e-12)
        return t_out, nl


# ---------------------------------------------------------------- procedural textures


def checker_sphere(a: Sequence[float], b: Sequence[float], n_lon: int = 12, n_lat: int = 6) -> Texture:
    """Latitude/longitude checkerboard for spheres."""

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        u = (np.arctan2(n[:, 1], n[:, 0]) / (2 * np.pi) + 0.5) * n_lon
        v = np.arccos(np.clip(n[:, 2], -1, 1)) / np.pi * n_lat
        return _pick(np.floor(u).astype(int) + np.floor(v).astype(int), a, b)

    return tex


def checker_plane(a: Sequence[float], b: Sequence[float], size: float, side: Sequence[float]) -> Texture:
    """Checkerboard (squares of `size` in local x, y) on faces facing +-z; `side` elsewhere."""

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        par = np.floor(p[:, 0] / size).astype(int) + np.floor(p[:, 1] / size).astype(int)
        return np.where((np.abs(n[:, 2]) > 0.5)[:, None], _pick(par, a, b), np.asarray(side, float))

    return tex


def stickers(
    half: float, face_colors: Sequence[Sequence[float]], gap: Sequence[float], n: int = 3, gap_frac: float = 0.12
) -> Texture:
    """Cube texture: each face an n x n grid of coloured stickers separated by dark gaps.

    face_colors: 6 colours for the +x, -x, +y, -y, +z, -z faces.
    """
    cols = np.asarray(face_colors, dtype=np.float64)

    def tex(p: np.ndarray, nl: np.ndarray) -> np.ndarray:
        axis = np.argmax(np.abs(nl), axis=1)
        face = 2 * axis + (nl[np.arange(len(axis)), axis] < 0)
        cell = (p / (2 * half) + 0.5) * n  # in [0, n] along each axis
        frac = cell - np.floor(cell)
        in_gap = (frac < gap_frac) | (frac > 1 - gap_frac)
        in_gap[np.arange(len(axis)), axis] = False  # ignore the normal axis
        return np.where(in_gap.any(axis=1)[:, None], np.asarray(gap, float), cols[face])

    return tex


def bands(a: Sequence[float], b: Sequence[float], period: float, cap: Sequence[float]) -> Texture:
    """Horizontal stripes of `period` along local z on curved sides, `cap` colour on flat caps."""

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        s = _pick(np.floor(p[:, 2] / (0.5 * period)).astype(int), a, b)
        return np.where((np.abs(n[:, 2]) > 0.999)[:, None], np.asarray(cap, float), s)

    return tex


def spiral(a: Sequence[float], b: Sequence[float], turns: float, n_stripes: int) -> Texture:
    """Barber-pole stripes winding around local z (for cones/cylinders)."""

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        ang = np.arctan2(p[:, 1], p[:, 0]) / (2 * np.pi)
        return _pick(np.floor((ang + turns * p[:, 2]) * n_stripes).astype(int), a, b)

    return tex


def torus_checker(a: Sequence[float], b: Sequence[float], major: float, n_u: int = 16, n_v: int = 6) -> Texture:
    """Checkerboard in the torus (ring angle, tube angle) parametrisation."""

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        u = (np.arctan2(p[:, 1], p[:, 0]) / (2 * np.pi) + 0.5) * n_u
        rho = np.hypot(p[:, 0], p[:, 1])
        v = (np.arctan2(p[:, 2], rho - major) / (2 * np.pi) + 0.5) * n_v
        return _pick(np.floor(u).astype(int) + np.floor(v).astype(int), a, b)

    return tex


def _lattice_hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Pseudo-random values in [0, 1) (n,) at integer lattice points (n,) (a 32-bit integer hash)."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (iz.astype(np.int64) * 83492791)
    h = (h ^ seed * 2654435761) & 0xFFFFFFFF
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    h = (h >> 16) ^ h
    return (h & 0xFFFFFF).astype(np.float64) / float(0x1000000)


def value_noise(p: np.ndarray, seed: int = 0) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] (n,) at points p (n, 3) with unit lattice spacing (trilinear,
    smoothstep-weighted). Unlike a checkerboard it never repeats, so feature matchers find unique matches."""
    base = np.floor(p)
    f = p - base
    w = f * f * (3.0 - 2.0 * f)
    ib = base.astype(np.int64)
    out = np.zeros(p.shape[0])
    for corner in range(8):
        bits = np.array([corner & 1, corner >> 1 & 1, corner >> 2 & 1])
        weight = np.prod(np.where(bits, w, 1.0 - w), axis=1)
        out += weight * _lattice_hash(ib[:, 0] + bits[0], ib[:, 1] + bits[1], ib[:, 2] + bits[2], seed)
    return out


def noise_texture(palette: Sequence[Sequence[float]], scale: float, octaves: int = 4, seed: int = 0) -> Texture:
    """Blotchy multi-octave noise (feature size ~1/`scale`) mapped through a colour ramp `palette`
    (k, 3) with sharp-ish steps, so corners and blobs appear at every scale (a backdrop for SIFT)."""
    ramp = np.asarray(palette, dtype=np.float64)

    def tex(p: np.ndarray, n: np.ndarray) -> np.ndarray:
        v, amp, total = np.zeros(p.shape[0]), 1.0, 0.0
        for o in range(octaves):
            v += amp * value_noise(p * scale * 2.0**o, seed + o)
            total += amp
            amp *= 0.55
        v = np.clip((v / total - 0.5) * 2.2 + 0.5, 0.0, 1.0) * (len(ramp) - 1)  # stretch the contrast
        i = np.minimum(np.floor(v).astype(int), len(ramp) - 2)
        t = np.clip((v - i - 0.5) * 3.0 + 0.5, 0.0, 1.0)[:, None]  # steep blend between ramp colours
        return ramp[i] * (1.0 - t) + ramp[i + 1] * t

    return tex
