"""Differentiable volume compositing over packed samples (colour, opacity, depth)."""

from __future__ import annotations

import torch


def exclusive_segment_cumsum(values: torch.Tensor, ray_indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Per-ray exclusive prefix sum of packed values. values, ray_indices: (n,); offsets: (n_rays,). Returns (n,).

    Runs in float64 so that long batches do not lose precision in the global running sum.
    """
    if values.numel() == 0:
        return values
    inclusive = torch.cumsum(values.double(), 0)
    exclusive = inclusive - values.double()
    start = exclusive[offsets.clamp(max=values.numel() - 1)]  # running sum before each ray's first sample
    return (exclusive - start[ray_indices]).to(values.dtype)


def composite(
    sigmas: torch.Tensor,
    rgbs: torch.Tensor,
    t: torch.Tensor,
    dt: torch.Tensor,
    ray_indices: torch.Tensor,
    offsets: torch.Tensor,
    n_rays: int,
    transmittance_threshold: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Alpha-composite samples front to back.

    sigmas: (n,); rgbs: (n, 3); t, dt: (n,); ray_indices: (n,) sorted; offsets: (n_rays,).
    Samples whose transmittance has fallen below ``transmittance_threshold`` get zero weight (early termination).
    Returns rgb (n_rays, 3), opacity (n_rays,), depth (n_rays,), weights (n,), transmittance (n,) before each sample.
    """
    tau = sigmas * dt
    trans = torch.exp(-exclusive_segment_cumsum(tau, ray_indices, offsets))
    alpha = 1.0 - torch.exp(-tau)
    weights = trans * alpha
    if transmittance_threshold > 0.0:
        weights = torch.where(trans.detach() >= transmittance_threshold, weights, torch.zeros_like(weights))
    dev = sigmas.device
    rgb = torch.zeros(n_rays, 3, device=dev, dtype=rgbs.dtype).index_add(0, ray_indices, weights[:, None] * rgbs)
    opacity = torch.zeros(n_rays, device=dev, dtype=weights.dtype).index_add(0, ray_indices, weights)
    depth = torch.zeros(n_rays, device=dev, dtype=weights.dtype).index_add(0, ray_indices, weights * t)
    return {"rgb": rgb, "opacity": opacity, "depth": depth, "weights": weights, "transmittance": trans}
