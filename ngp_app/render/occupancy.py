"""Multi-cascade occupancy grid: which cells of space may hold density, so ray marching can skip the rest.

Cascade ``c`` is a 128^3 grid over the cube of side ``2**c`` centred at (0.5, 0.5, 0.5); there are
``log2(aabb_scale) + 1`` cascades, so the coarsest one covers the scene box. Each cell stores an EMA-max of the
optical thickness ``sigma * min_step`` observed at random points in it; a cell is occupied while that value is
above ``min(threshold, mean)``. Cells marked untrained (seen by no training camera, ``render.visibility``) hold
-1: never occupied, never updated. Cells are indexed linearly, x fastest: ``x + y*R + z*R*R``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..ops import Ops

SQRT3 = math.sqrt(3.0)


def n_cascades_for(aabb_scale: float) -> int:
    """Number of cascades for a scene box of side ``aabb_scale`` (1..8)."""
    return max(1, min(8, int(math.ceil(math.log2(max(aabb_scale, 1.0)))) + 1))


def mip_from_pos(pos: torch.Tensor, n_cascades: int) -> torch.Tensor:
    """Finest cascade containing each point: pos (n, 3) -> (n,) int64 in [0, n_cascades)."""
    maxval = (pos - 0.5).abs().amax(dim=-1)
    _, exponent = torch.frexp(maxval)
    mip = (exponent.to(torch.int64) + 1).clamp(0, n_cascades - 1)
    return torch.where(maxval > 0, mip, torch.zeros_like(mip))  # frexp(0) has exponent 0: the centre is cascade 0


def mip_from_dt(dt: torch.Tensor, resolution: int, n_cascades: int) -> torch.Tensor:
    """Coarsest cascade whose cells are no smaller than the step: dt (n,) -> (n,) int64."""
    _, exponent = torch.frexp(dt * resolution)
    return exponent.to(torch.int64).clamp(0, n_cascades - 1)


def cell_index(pos: torch.Tensor, mip: torch.Tensor, resolution: int) -> torch.Tensor:
    """Linear cell index (within its cascade) of points: pos (n, 3), mip (n,) -> (n,) int64."""
    scale = torch.ldexp(torch.ones_like(pos[:, 0]), -mip.to(torch.int32))  # 2^-mip
    p = (pos - 0.5) * scale[:, None] + 0.5
    i = (p * resolution).to(torch.int64).clamp(0, resolution - 1)  # truncation toward zero, as the kernels do
    return i[:, 0] + i[:, 1] * resolution + i[:, 2] * (resolution * resolution)


def cell_centers(cascade: int, indices: torch.Tensor, jitter: torch.Tensor | None, resolution: int) -> torch.Tensor:
    """Scene positions of cells of a cascade: indices (n,) -> (n, 3); jitter (n, 3) in [0, 1) picks a point in the
    cell (None: its centre)."""
    r = resolution
    ijk = torch.stack([indices % r, (indices // r) % r, indices // (r * r)], dim=-1).float()
    frac = jitter if jitter is not None else torch.full_like(ijk, 0.5)
    unit = (ijk + frac) / r  # [0, 1) within the cascade
    return (unit - 0.5) * (2.0**cascade) + 0.5


class OccupancyGrid:
    """Density grid + occupancy bitfield over all cascades of a scene box."""

    def __init__(
        self,
        aabb_scale: float,
        resolution: int = 128,
        decay: float = 0.95,
        threshold: float = 0.01,
        device: torch.device | str = "cpu",
        *,
        ops: Ops,
    ) -> None:
        self.ops = ops  # cell positions and the decay-max update run in the backend's ops
        self.aabb_scale = float(aabb_scale)
        self.resolution = int(resolution)
        self.n_cascades = n_cascades_for(aabb_scale)
        self.decay = float(decay)
        self.threshold = float(threshold)
        self.min_step = SQRT3 / 1024.0
        n = self.n_cells_per_cascade
        self.density = torch.zeros(self.n_cascades, n, device=device)
        self.occupied = torch.ones(self.n_cascades, n, dtype=torch.bool, device=device)
        self.n_updates = 0
        self._coarse: torch.Tensor | None = None

    @property
    def n_cells_per_cascade(self) -> int:
        return self.resolution**3

    @property
    def device(self) -> torch.device:
        return self.density.device

    def to(self, device: torch.device | str) -> OccupancyGrid:
        self.density = self.density.to(device)
        self.occupied = self.occupied.to(device)
        self._coarse = None
        return self

    def max_step(self) -> float:
        """Largest marching step: one cell diagonal of the coarsest cascade."""
        return SQRT3 * 2 ** (self.n_cascades - 1) / self.resolution

    def cell_centers(self, cascade: int, indices: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
        """Scene positions of cells: indices (n,) -> (n, 3); jitter (n, 3) in [0, 1) picks a point in the cell."""
        return cell_centers(cascade, indices, jitter, self.resolution)

    def is_occupied(self, pos: torch.Tensor, mip: torch.Tensor) -> torch.Tensor:
        """Occupancy of points at the given cascades: pos (n, 3), mip (n,) -> (n,) bool."""
        idx = cell_index(pos, mip, self.resolution)
        return self.occupied.view(-1)[mip * self.n_cells_per_cascade + idx]

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        fraction: float = 1.0,
        generator: torch.Generator | None = None,
        chunk: int = 1 << 18,
    ) -> None:
        """EMA-max update: evaluate ``density_fn`` at random points of a ``fraction`` of cells (half of them drawn
        among occupied cells once training has warmed up), then decay every cell and re-threshold the bitfield.

        density_fn: (n, 3) scene points -> (n,) sigma.
        """
        n = self.n_cells_per_cascade
        dev = self.device
        gdev = generator.device if generator is not None else dev  # draw where the generator lives
        new = torch.zeros_like(self.density)
        for c in range(self.n_cascades):
            if fraction >= 1.0:
                idx = torch.arange(n, device=dev)
            else:
                k = max(1, int(n * fraction))
                uniform = torch.randint(0, n, (k,), generator=generator, device=gdev).to(dev)
                occ = torch.nonzero(self.occupied[c]).flatten()
                if occ.numel() > 0:
                    pick = torch.randint(0, occ.numel(), (k,), generator=generator, device=gdev).to(dev)
                    idx = torch.cat([uniform, occ[pick]])
                else:
                    idx = uniform
            jitter = torch.rand(idx.numel(), 3, generator=generator, device=gdev).to(dev)
            pos = self.ops.cell_positions(c, idx, jitter, self.resolution)
            step = self.min_step * (2.0**c)
            for s in range(0, idx.numel(), chunk):
                thickness = density_fn(pos[s : s + chunk]).float() * step
                new[c].scatter_reduce_(0, idx[s : s + chunk], thickness, reduce="amax")
        self.density = self.ops.decay_max(self.density, new, self.decay)
        self.n_updates += 1
        self.update_bitfield()

    def mark_untrained(self, unseen: torch.Tensor) -> None:
        """Mark cells empty for good: unseen (n_cascades, n) bool (``visibility.unseen_cells``); their density becomes
        -1, which the update keeps and the threshold never passes."""
        unseen = unseen.to(self.device)
        self.density = torch.where(unseen, torch.full_like(self.density, -1.0), self.density)
        self.occupied = self.occupied & ~unseen
        self._coarse = None

    def update_bitfield(self) -> None:
        """Threshold densities into the occupancy field: occupied while above min(threshold, mean of cascade 0)."""
        mean = float(self.density[0].clamp(min=0).mean())
        self.occupied = self.density > min(self.threshold, mean)
        self._coarse = None

    COARSE_FACTOR = 8

    def coarse_occupied(self) -> torch.Tensor:
        """Conservative coarse occupancy: (n_cascades, R/8, R/8, R/8) bool indexed [c, z, y, x], true where any
        fine cell of the coarse cell or of its 26 neighbours is occupied. Used to skip empty space quickly."""
        if self._coarse is None:
            f = self.COARSE_FACTOR
            r = self.resolution // f
            occ = self.occupied.view(self.n_cascades, r, f, r, f, r, f).any(dim=6).any(dim=4).any(dim=2)
            dil = torch.nn.functional.max_pool3d(occ[:, None].float(), kernel_size=3, stride=1, padding=1)[:, 0]
            self._coarse = dil > 0
        return self._coarse

    def packed_bitfield(self) -> torch.Tensor:
        """Occupancy packed 8 cells per byte (cell i -> byte i // 8, bit i % 8): (n_cascades, n // 8) uint8."""
        bits = self.occupied.view(self.n_cascades, -1, 8).to(torch.uint8)
        weights = torch.tensor([1 << b for b in range(8)], dtype=torch.uint8, device=bits.device)
        return (bits * weights).sum(-1, dtype=torch.uint8)

    def occupancy_fraction(self) -> float:
        return float(self.occupied.float().mean())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"density": self.density.cpu(), "occupied": self.occupied.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["density"].shape != self.density.shape:
            raise ValueError(f"occupancy grid shape {tuple(state['density'].shape)} != {tuple(self.density.shape)}")
        self.density = state["density"].to(self.device).float()
        self.occupied = state["occupied"].to(self.device).bool()
        self._coarse = None
