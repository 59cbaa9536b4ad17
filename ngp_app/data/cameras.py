"""Cameras and rays in ngp space (see docs/conventions.md).

A camera-to-world matrix in ngp space has columns (right, down, forward, position): OpenCV's camera axes. Rays
through pixel centres (u + 0.5, v + 0.5) are undistorted with the camera's lens model (OpenCV radial-tangential
k1 k2 k3 k4 p1 p2, or OpenCV fisheye k1..k4) before they leave the camera, so distorted captures train sharp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch

NERF_SCALE = 0.33
NERF_OFFSET = (0.5, 0.5, 0.5)


@dataclass
class Camera:
    """A camera in ngp space. c2w: (3, 4); distortion: 7 numbers (k1, k2, k3, k4, p1, p2, model), see
    ``as_distortion`` (the legacy 4 numbers k1, k2, p1, p2 are accepted)."""

    c2w: torch.Tensor
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion: tuple[float, ...] = (0.0,) * 7
    model: str = "pinhole"  # or "equirectangular": a 360 x 180 degree panorama (``equirect_directions``)

    def __post_init__(self) -> None:
        self.distortion = as_distortion(self.distortion)
        if self.model not in CAMERA_MODELS:
            raise ValueError(f"unknown camera model {self.model!r} (choose from {', '.join(CAMERA_MODELS)})")

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera at another resolution (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        return Camera(
            self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height, self.distortion, self.model
        )

    def panorama(self) -> Camera:
        """The equirectangular camera at this one's place and orientation (the principal point at the centre)."""
        return replace(self, model="equirectangular", cx=self.width / 2.0, cy=self.height / 2.0)


CAMERA_MODELS = ("pinhole", "equirectangular")


def equirect_directions(u: torch.Tensor, v: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Camera-frame unit directions (n, 3) (x right, y down, z forward) of equirectangular image positions u, v (n,)
    (pixels): the image's width spans longitude -180..180 degrees (0 at ``cx``, positive to the right) and its
    height latitude 90..-90 (0 at ``cy``, up at the top)."""
    lon = (u - camera.cx) / camera.width * (2.0 * math.pi)
    lat = -(v - camera.cy) / camera.height * math.pi
    return torch.stack([torch.cos(lat) * torch.sin(lon), -torch.sin(lat), torch.cos(lat) * torch.cos(lon)], dim=-1)


def nerf_to_ngp(
    matrix: np.ndarray, scale: float = NERF_SCALE, offset: tuple[float, float, float] = NERF_OFFSET
) -> np.ndarray:
    """instant-ngp's transform of a NeRF/Blender camera-to-world matrix (OpenGL camera) into ngp space.

    matrix: (3|4, 4). Flips the camera's y and z axes (OpenGL -> OpenCV), scales and offsets the position, then
    cycles the world axes (x, y, z) <- (y, z, x). Returns (3, 4).
    """
    m = np.array(matrix, dtype=np.float64)[:3, :4].copy()
    m[:, 1] *= -1.0
    m[:, 2] *= -1.0
    m[:, 3] = m[:, 3] * scale + np.asarray(offset, dtype=np.float64)
    return m[[1, 2, 0], :]


def ngp_to_nerf(
    matrix: np.ndarray, scale: float = NERF_SCALE, offset: tuple[float, float, float] = NERF_OFFSET
) -> np.ndarray:
    """Inverse of :func:`nerf_to_ngp`: (3|4, 4) ngp camera-to-world -> (4, 4) NeRF camera-to-world."""
    m = np.array(matrix, dtype=np.float64)[:3, :4][[2, 0, 1], :].copy()
    m[:, 3] = (m[:, 3] - np.asarray(offset, dtype=np.float64)) / scale
    m[:, 1] *= -1.0
    m[:, 2] *= -1.0
    out = np.eye(4)
    out[:3] = m
    return out


# Lens distortion of a camera: 7 numbers (k1, k2, k3, k4, p1, p2, model), model 0 = OpenCV radial-tangential
# (radial 1 + k1 r^2 + k2 r^4 + k3 r^6 + k4 r^8, nerfstudio's OPENCV; k3 = k4 = 0 is the classic 4-parameter one),
# model 1 = OpenCV fisheye (Kannala-Brandt: theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8),
# p1 = p2 = 0). Older snapshots store 4 numbers (k1, k2, p1, p2): ``as_distortion`` reads both.
N_DISTORTION = 7
OPENCV, FISHEYE = 0, 1


def as_distortion(values: Sequence[float] | None) -> tuple[float, ...]:
    """The 7-number distortion of ``values``: 7 numbers, the legacy 4 (k1, k2, p1, p2), or none (no distortion)."""
    v = [float(x) for x in (values or [])]
    if len(v) == 0:
        return (0.0,) * N_DISTORTION
    if len(v) == 4:
        return (v[0], v[1], 0.0, 0.0, v[2], v[3], float(OPENCV))
    if len(v) == N_DISTORTION:
        return tuple(v)
    raise ValueError(f"distortion needs 4 or {N_DISTORTION} numbers, got {len(v)}")


def _radial(r2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, k3: torch.Tensor, k4: torch.Tensor) -> torch.Tensor:
    return 1.0 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))


def undistort(
    xd: torch.Tensor, yd: torch.Tensor, dist: torch.Tensor, iterations: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert the OpenCV radial-tangential model by Newton iterations.

    xd, yd: (n,) distorted normalised coordinates; dist: (n, 7) or (7,) (see ``as_distortion``; the model entry is
    not read). Returns undistorted (n,).
    """
    k1, k2, k3, k4, p1, p2 = dist[..., :6].unbind(-1)
    x, y = xd.clone(), yd.clone()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = _radial(r2, k1, k2, k3, k4)
        fx = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - xd
        fy = y * radial + 2.0 * p2 * x * y + p1 * (r2 + 2.0 * y * y) - yd
        # Jacobian of the distortion map (d radial / d r2 times 2x or 2y).
        d_radial = k1 + r2 * (2.0 * k2 + r2 * (3.0 * k3 + r2 * 4.0 * k4))
        jxx = radial + 2.0 * x * x * d_radial + 2.0 * p1 * y + 6.0 * p2 * x
        jxy = 2.0 * x * y * d_radial + 2.0 * p1 * x + 2.0 * p2 * y
        jyx = 2.0 * x * y * d_radial + 2.0 * p2 * y + 2.0 * p1 * x
        jyy = radial + 2.0 * y * y * d_radial + 2.0 * p2 * x + 6.0 * p1 * y
        det = jxx * jyy - jxy * jyx
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        x = x - (fx * jyy - fy * jxy) / det
        y = y - (fy * jxx - fx * jyx) / det
    return x, y


def distort(x: torch.Tensor, y: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the OpenCV radial-tangential model to normalised coordinates (n,); dist: (n, 7) or (7,)."""
    k1, k2, k3, k4, p1, p2 = dist[..., :6].unbind(-1)
    r2 = x * x + y * y
    radial = _radial(r2, k1, k2, k3, k4)
    return (
        x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
        y * radial + 2.0 * p2 * x * y + p1 * (r2 + 2.0 * y * y),
    )


def fisheye_theta_d(theta: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Distorted radius theta_d of rays at angle ``theta`` (n,) from the optical axis (OpenCV fisheye)."""
    k1, k2, k3, k4 = dist[..., :4].unbind(-1)
    return theta * _radial(theta * theta, k1, k2, k3, k4)


def fisheye_directions(xd: torch.Tensor, yd: torch.Tensor, dist: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Camera-space unit directions (n, 3) of distorted normalised fisheye coordinates (n,): theta from
    theta_d = |(xd, yd)| by Newton iterations, then (sin theta * unit(xd, yd), cos theta). Works past 90 degrees."""
    k1, k2, k3, k4 = dist[..., :4].unbind(-1)
    rd = torch.sqrt(xd * xd + yd * yd)
    theta = rd.clone()
    for _ in range(iterations):
        t2 = theta * theta
        f = theta * _radial(t2, k1, k2, k3, k4) - rd
        df = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
        theta = theta - f / torch.where(df.abs() < 1e-12, torch.full_like(df, 1e-12), df)
    theta = theta.clamp(0.0, math.pi)
    scale = torch.where(rd > 1e-12, torch.sin(theta) / rd.clamp(min=1e-12), torch.ones_like(rd))
    return torch.stack([xd * scale, yd * scale, torch.cos(theta)], dim=-1)


class LensKinds(NamedTuple):
    """Which lens models a set of cameras uses: any distortion at all, any fisheye, only fisheyes."""

    distorted: bool
    any_fisheye: bool
    all_fisheye: bool


def lens_kinds(distortion: torch.Tensor) -> LensKinds:
    """The lens kinds of distortion rows (n, 7) or (7,) (reads them on the host: compute once, not per batch)."""
    fisheye = distortion[..., 6] == FISHEYE
    any_fisheye = bool(fisheye.any())
    return LensKinds(bool((distortion[..., :6] != 0).any()) or any_fisheye, any_fisheye, bool(fisheye.all()))


def pixel_rays(
    u: torch.Tensor,
    v: torch.Tensor,
    c2w: torch.Tensor,
    intrinsics: torch.Tensor,
    distortion: torch.Tensor | None = None,
    kinds: LensKinds | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through image positions (in pixels, pixel centres at +0.5).

    u, v: (n,); c2w: (n, 3, 4) or (3, 4); intrinsics: (n, 4) or (4,) as (fx, fy, cx, cy); distortion: (n, 7) or (7,)
    (``as_distortion``) or None; kinds: its ``lens_kinds`` when known (saves host reads). Returns origins (n, 3) and
    unit directions (n, 3).
    """
    fx, fy, cx, cy = intrinsics.unbind(-1)
    x = (u - cx) / fx
    y = (v - cy) / fy
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    if distortion is not None and kinds is None:
        kinds = lens_kinds(distortion)
    if distortion is not None and kinds is not None and kinds.distorted:
        dist = distortion.expand(x.shape[0], N_DISTORTION) if distortion.dim() == 1 else distortion
        if not kinds.all_fisheye:  # perspective lenses (every ray undistorted; fisheye rows replaced below)
            xu, yu = undistort(x, y, dist)
            d_cam = torch.stack([xu, yu, torch.ones_like(xu)], dim=-1)
        if kinds.any_fisheye:
            d_cam = torch.where((dist[:, 6] == FISHEYE)[:, None], fisheye_directions(x, y, dist), d_cam)
    rot = c2w[..., :3]
    d = torch.einsum("...ij,...j->...i", rot, d_cam)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[..., 3].expand_as(d)
    return o, d


def camera_rays(camera: Camera, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through every pixel centre of ``camera``, row-major: origins, directions (H*W, 3)."""
    v, u = torch.meshgrid(
        torch.arange(camera.height, device=device, dtype=torch.float32) + 0.5,
        torch.arange(camera.width, device=device, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    if camera.model == "equirectangular":
        c2w = camera.c2w.to(device).float()
        d = equirect_directions(u.reshape(-1), v.reshape(-1), camera) @ c2w[:, :3].T
        return c2w[:, 3].expand_as(d), d / d.norm(dim=-1, keepdim=True)
    intr = torch.tensor([camera.fx, camera.fy, camera.cx, camera.cy], dtype=torch.float32, device=device)
    # A plain pinhole needs no distortion tensor (and pixel_rays then reads nothing back from the device).
    lens = camera.distortion
    plain = not any(lens[:6]) and lens[6] != FISHEYE
    dist = None if plain else torch.tensor(lens, dtype=torch.float32, device=device)
    return pixel_rays(u.reshape(-1), v.reshape(-1), camera.c2w.to(device).float(), intr, dist)


def orbit_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector (3,) from an orbit's centre to its eye, angles in radians (ngp axes: y up; azimuth 0 is +z)."""
    ce = math.cos(elevation)
    return np.array([ce * math.sin(azimuth), math.sin(elevation), ce * math.cos(azimuth)])


def orbit_eye(
    center: np.ndarray | tuple[float, ...], radius: float, azimuth_deg: float, elevation_deg: float
) -> np.ndarray:
    """The eye (3,) of an orbit camera ``radius`` from ``center`` at the given azimuth and elevation (degrees)."""
    return np.asarray(center, dtype=np.float64) + radius * orbit_direction(
        math.radians(azimuth_deg), math.radians(elevation_deg)
    )


def look_at(
    eye: np.ndarray | list[float], target: np.ndarray | list[float], up: np.ndarray | list[float] = (0.0, 1.0, 0.0)
) -> torch.Tensor:
    """ngp-space camera-to-world (3, 4) at ``eye`` looking at ``target``; ``up`` is the world's up (ngp: +y,
    Blender's +z)."""
    eye_a, target_a, up_a = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    forward = target_a - eye_a
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up_a)  # OpenCV axes: right x down = forward
    if np.linalg.norm(right) < 1e-8:
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    m = np.stack([right, down, forward, eye_a], axis=1)
    return torch.tensor(m, dtype=torch.float32)
