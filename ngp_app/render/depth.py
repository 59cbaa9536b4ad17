"""Metric depth of a render: the expected depth where a ray's opacity passes 0.5, in the scene's own units, along
the ray ("ray") or the camera's viewing axis ("z"); 0 where nothing is hit (``export/depth.py`` writes it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.cameras import Camera, camera_rays
from ..errors import NgpError
from .pictures import HIT_OPACITY

DEPTH_KINDS = ("ray", "z")


def metric_depth(out: dict[str, Any], camera: Camera, scale: float, kind: str = "ray") -> np.ndarray:
    """(H, W) float32 depth in scene units from a render's ``depth`` and ``opacity`` (H, W) of ``camera``; 0 where
    the opacity is at most 0.5. ``scale``: the scene's (ngp units per scene unit)."""
    if kind not in DEPTH_KINDS:
        raise NgpError(f"unknown depth kind {kind!r} (use ray or z)")
    if kind == "z" and camera.model != "pinhole":
        raise NgpError("z-depth needs a pinhole camera: a panorama has no viewing axis (use --depth-kind ray)")
    opacity = out["opacity"].detach().float().cpu()
    depth = out["depth"].detach().float().cpu() / opacity.clamp(min=1e-6)
    if kind == "z":
        _, d = camera_rays(camera)
        forward = camera.c2w[:, 2].float().cpu()  # the camera looks along its +z (OpenCV axes in ngp space)
        depth = depth * (d @ (forward / forward.norm())).view(camera.height, camera.width)
    depth = torch.where(opacity > HIT_OPACITY, depth / scale, torch.zeros_like(depth))
    return depth.numpy().astype(np.float32)
