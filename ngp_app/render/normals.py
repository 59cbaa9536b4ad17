"""Surface normals of a density field for display: n = -grad(sigma) / |grad(sigma)|, by central differences.

Rendering :class:`NormalsField` instead of the field composites normals where colours would be, shown as
(n + 1) / 2 (instant-ngp's "Normals" render mode). Differences, not autograd: they need no gradient graph (the
model may be training in another thread) and, with a step of two finest grid cells, they smooth the hash grid's
cell-scale noise (half a cell shows it as speckle).
"""

from __future__ import annotations

from typing import Any

import torch

_OFFSETS = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float32)


def density_normals(density: Any, x: torch.Tensor, step: float) -> torch.Tensor:
    """Unit normals (n, 3) pointing out of the density at points x (n, 3); zero where the density is flat."""
    probes = (x[:, None, :] + step * _OFFSETS.to(x.device)[None]).reshape(-1, 3)
    sigma = density(probes).reshape(-1, 3, 2)
    grad = (sigma[..., 0] - sigma[..., 1]) / (2.0 * step)
    norm = grad.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, -grad / norm.clamp(min=1e-20), torch.zeros_like(grad))


class NormalsField:
    """A field whose "colour" is its surface normal, (n + 1) / 2; densities are the wrapped field's."""

    def __init__(self, field: Any, step: float | None = None) -> None:
        self.field = field
        if step is None:  # two finest cells of the hash grid, in scene units
            geometry = field.encoding.geometry
            aabb_size = float((field.aabb[1] - field.aabb[0]).max())
            step = 2.0 * aabb_size / max(geometry.resolutions)
        self.step = float(step)

    @property
    def ops(self) -> Any:
        """The wrapped field's backend ops (the renderer marches and composites with them)."""
        return getattr(self.field, "ops", None)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return self.field.density(x)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, d: (n, 3). Returns sigma (n,) and the normal colour (n, 3) in [0, 1]."""
        sigma = self.field.density(x)
        return sigma, density_normals(self.field.density, x, self.step) * 0.5 + 0.5
