"""What the native-kernel test modules share: the skip when the extension can't build, and the device parameters
(CPU always; CUDA marked ``cuda``, skipped without a GPU and a CUDA build), and the marching test cases."""

from __future__ import annotations

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.native import loader
from ngp_app.render.occupancy import OccupancyGrid


def require_native() -> None:
    """Skip the calling test module when the native extension does not build here."""
    ok, why = loader.available(torch.device("cpu"))
    if not ok:
        pytest.skip(f"native extension unavailable: {why}", allow_module_level=True)


DEVICES = [pytest.param("cpu")] + [pytest.param("cuda", marks=pytest.mark.cuda)]


def device(name: str) -> torch.device:
    """The torch device of a ``DEVICES`` parameter; skips CUDA where it can't run."""
    if name == "cuda" and not (torch.cuda.is_available() and loader.available(torch.device("cuda"))[0]):
        pytest.skip("needs a CUDA device and a CUDA build of the native extension")
    return torch.device(name)


def march_rays_case(g: torch.Generator, n: int, scale: float):
    """Marching test rays (n, 3) around a box of side ``scale`` centred at 0.5: rays from outside aimed near it (some
    miss), rays starting inside, axis-parallel rays."""
    centre = torch.full((3,), 0.5)
    o = centre + torch.randn(n, 3, generator=g) * scale * 1.5
    target = centre + (torch.rand(n, 3, generator=g) - 0.5) * scale * 1.4
    o[: n // 4] = centre + (torch.rand(n // 4, 3, generator=g) - 0.5) * scale * 0.9  # start inside
    d = target - o
    d[n // 4 : n // 4 + 20] = torch.tensor([1.0, 0.0, 0.0])  # parallel to faces
    d[n // 4 + 20 : n // 4 + 40] = torch.tensor([0.0, -1.0, 0.0])
    d = d / d.norm(dim=-1, keepdim=True)
    return o, d


def occupancy_case(g: torch.Generator, aabb_scale: float, fill: str) -> OccupancyGrid:
    """A 32^3-cell occupancy grid: ``full``, ``empty`` or ``random`` (blobs of 4^3 cells and scattered cells)."""
    grid = OccupancyGrid(aabb_scale, resolution=32, ops=get_ops("torch"))
    if fill == "empty":
        grid.occupied.zero_()
    elif fill == "random":
        coarse = torch.rand(grid.n_cascades, 8, 8, 8, generator=g) < 0.3  # blobs of 4^3 cells
        grid.occupied = (
            coarse.repeat_interleave(4, 1).repeat_interleave(4, 2).repeat_interleave(4, 3).reshape(grid.n_cascades, -1)
        )
        grid.occupied |= torch.rand(grid.occupied.shape, generator=g) < 0.02
    return grid
