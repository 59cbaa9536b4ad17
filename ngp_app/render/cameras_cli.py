"""Camera specifications for the command line: training cameras, orbits, or NeRF-convention JSON files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.cameras import Camera, look_at, nerf_to_ngp, orbit_eye
from ..errors import NgpError
from ..schema import read_json, validate
from ..schema.cameras import CameraFile


def orbit_camera(
    azimuth_deg: float, elevation_deg: float, radius: float, center: tuple[float, float, float] = (0.5, 0.5, 0.5)
) -> torch.Tensor:
    """ngp-space c2w (3, 4) on a sphere around ``center`` (y up), looking at it."""
    return look_at(orbit_eye(center, radius, azimuth_deg, elevation_deg), np.asarray(center))


def camera_from_spec(spec: str, scene_meta: dict[str, Any], width: int, height: int, fov_deg: float | None) -> Camera:
    """Build a camera of ``width`` x ``height`` from ``train:N``, ``orbit:AZ,EL,R`` or a JSON file path (checked
    against :class:`ngp_app.schema.cameras.CameraFile`)."""

    def focal(default_fx: float | None) -> float:
        if fov_deg is not None:
            return 0.5 * width / math.tan(0.5 * math.radians(fov_deg))
        return default_fx if default_fx is not None else 0.5 * width / math.tan(0.5 * math.radians(50.0))

    if spec.startswith("train:"):
        try:
            i = int(spec.split(":", 1)[1])
        except ValueError:
            raise NgpError(f"--camera {spec}: expected train:N") from None
        c2ws = scene_meta.get("c2w") or []
        if not 0 <= i < len(c2ws):
            raise NgpError(f"--camera {spec}: the snapshot's scene has {len(c2ws)} training cameras")
        fx, fy, cx, cy = scene_meta["intrinsics"][i]
        w0, h0 = scene_meta["sizes"][i]
        dist = scene_meta.get("distortion") or []
        cam = Camera(
            torch.tensor(c2ws[i], dtype=torch.float32),
            fx,
            fy,
            cx,
            cy,
            w0,
            h0,
            tuple(dist[i]) if i < len(dist) else None,
        )  # type: ignore[arg-type]
        cam = cam.scaled(width, height)
        if fov_deg is not None:
            f = focal(None)
            cam.fx = cam.fy = f
        return cam
    if spec.startswith("orbit:"):
        try:
            az, el, r = (float(v) for v in spec.split(":", 1)[1].split(","))
        except ValueError:
            raise NgpError(f"--camera {spec}: expected orbit:AZIMUTH,ELEVATION,RADIUS") from None
        if not all(math.isfinite(v) for v in (az, el, r)) or not r > 0 or not -90.0 < el < 90.0:
            raise NgpError(
                f"--camera {spec}: expected a finite azimuth, an elevation in (-90, 90) degrees and a radius > 0"
            )
        f = focal(None)
        return Camera(orbit_camera(az, el, r), f, f, width / 2.0, height / 2.0, width, height)
    path = Path(spec)
    if not path.is_file():
        raise NgpError(f"--camera {spec}: not train:N, orbit:AZ,EL,R or an existing JSON file")
    cam = validate(CameraFile, read_json(path), str(path))
    c2w = nerf_to_ngp(
        np.asarray(cam.transform_matrix),
        scene_meta.get("scale", 0.33),
        tuple(scene_meta.get("offset", (0.5, 0.5, 0.5))),
    )
    f = 0.5 * width / math.tan(0.5 * cam.camera_angle_x) if cam.camera_angle_x and fov_deg is None else focal(None)
    return Camera(torch.tensor(c2w, dtype=torch.float32), f, f, width / 2.0, height / 2.0, width, height)
