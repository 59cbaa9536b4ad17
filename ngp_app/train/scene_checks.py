"""Cheap sanity checks of a loaded scene that no per-key schema can make, run once when training starts."""

from __future__ import annotations

import logging

import torch

from ..data.cameras import pixel_rays
from ..data.scene import Scene
from ..errors import SceneError
from ..render.raymarch import ray_aabb

log = logging.getLogger(__name__)

PROBE_GRID = 8  # rays per image side
PROBE_IMAGES = 256


def fraction_of_rays_hitting_box(scene: Scene) -> float:
    """Share of probe rays (an 8x8 grid of pixels of up to 256 evenly spaced images) that enter the scene box."""
    n = scene.n_frames
    images = torch.linspace(0, n - 1, min(n, PROBE_IMAGES)).round().long()
    g = (torch.arange(PROBE_GRID, dtype=torch.float32) + 0.5) / PROBE_GRID
    gv, gu = torch.meshgrid(g, g, indexing="ij")
    idx = images.repeat_interleave(PROBE_GRID * PROBE_GRID)
    dev = scene.c2w.device
    idx_d = idx.to(dev)
    u = gu.reshape(-1).repeat(len(images)).to(dev) * scene.widths[idx_d].float()
    v = gv.reshape(-1).repeat(len(images)).to(dev) * scene.heights[idx_d].float()
    rays_o, rays_d = pixel_rays(u, v, scene.c2w[idx_d].float(), scene.intrinsics[idx_d], scene.distortion[idx_d])
    t_near, t_far = ray_aabb(rays_o, rays_d, scene.aabb.to(dev))
    finite = torch.isfinite(rays_o).all(-1) & torch.isfinite(rays_d).all(-1)
    return float(((t_near <= t_far) & finite).float().mean())


def check_rays_hit_box(scene: Scene) -> None:
    """Raise when no training ray enters the scene box (broken poses, scale or offset would otherwise train on
    nothing and write an empty model); warn when almost none do."""
    hit = fraction_of_rays_hitting_box(scene)
    if hit == 0.0:
        raise SceneError(
            f"{scene.path}: no training ray hits the scene box: check the poses, scale and offset "
            f"(aabb_scale {scene.aabb_scale:g})"
        )
    if hit < 0.01:
        log.warning(
            "%s: only %.2f%% of training rays hit the scene box: check the poses, scale and offset",
            scene.path,
            100.0 * hit,
        )
