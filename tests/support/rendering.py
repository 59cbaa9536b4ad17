"""Test-only render entry points: the oracle of inference, rays in one call, and a trainer's camera through its
evaluation model."""

from __future__ import annotations

from typing import Any

import torch

from ngp_app.ops import Ops
from ngp_app.render.composite import composite
from ngp_app.render.frame import march_frame
from ngp_app.render.occupancy import OccupancyGrid
from ngp_app.render.raymarch import MarchParams, march_rays
from ngp_app.render.renderer import FieldFn, field_ops, render_image


@torch.no_grad()
def render_rays_reference(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor,
    transmittance_threshold: float = 1e-4,
) -> dict[str, torch.Tensor]:
    """The oracle of inference: march every sample (torch), evaluate them all, composite packed. Returns rgb (n, 3)
    over the background, opacity (sum of weights) and depth (n,). Slow."""
    samples = march_rays(rays_o, rays_d, grid, aabb, params)
    sigmas, rgbs = field(samples.positions, samples.directions)
    out = composite(
        sigmas,
        rgbs,
        samples.t,
        samples.dt,
        samples.ray_indices,
        samples.offsets,
        rays_o.shape[0],
        transmittance_threshold,
    )
    rgb = out["rgb"] + (1.0 - out["opacity"])[:, None] * background
    return {"rgb": rgb, "opacity": out["opacity"], "depth": out["depth"]}


@torch.no_grad()
def render_rays_infer(
    field: FieldFn,
    grid: OccupancyGrid,
    aabb: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    params: MarchParams,
    background: torch.Tensor,
    ops: Ops | None = None,
    transmittance_threshold: float = 1e-4,
) -> dict[str, torch.Tensor]:
    """Render rays without gradients, all in one call (render/frame.py: passes over sample slots, early
    termination, finished rays compacted away on the device). rays_o, rays_d: (n, 3); background: (3,).
    Returns rgb (n, 3) over the background, opacity (n,) = 1 - transmittance, depth (n,)."""
    frame = field_ops(field, grid, ops).frame(grid, aabb, params)
    state = march_frame(field, frame, rays_o, rays_d, transmittance_threshold)
    bg = torch.as_tensor(background, dtype=torch.float32, device=rays_o.device)
    return {"rgb": state.rgb + state.trans[:, None] * bg, "opacity": 1.0 - state.trans, "depth": state.depth}


@torch.no_grad()
def render_camera(
    trainer: Any, camera: Any, background: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> dict[str, torch.Tensor]:
    """Render one camera with the trainer's evaluation model (holds its lock)."""
    with trainer.lock:
        model = trainer.eval_model.eval()
        return render_image(model, trainer.grid, trainer.aabb, camera, trainer.march, background)
