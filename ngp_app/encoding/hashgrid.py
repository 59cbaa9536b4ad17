"""Multiresolution hash encoding (Müller et al. 2022), pure-PyTorch reference.

Grid conventions follow tiny-cuda-nn's ``HashGrid`` exactly (see docs/conventions.md), so a parameter table
trained here can be loaded into tiny-cuda-nn and vice versa:

- level ``l`` has scale ``s_l = N_min * b**l - 1`` (float32) and resolution ``ceil(s_l) + 1``;
- a point ``x`` in [0, 1]^3 maps to ``x * s_l + 0.5``; its cell corner is the floor, the fraction the remainder;
- a level is indexed densely (``x + y*res + z*res^2``) while ``res^3`` fits its table, otherwise by the spatial
  hash ``x*1 ^ y*2654435761 ^ z*805459861`` in uint32 arithmetic; either index is taken modulo the table size;
- per-level table sizes are ``min(next_multiple_of_8(res^3), 2**log2_hashmap_size)`` rows of ``F`` features,
  levels concatenated; the output is ``(n, L*F)`` with level-major feature order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..ops import Ops
from ..schema.config import TABLE_PRECISIONS

PRIMES = (1, 2654435761, 805459861)
_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class GridGeometry:
    """Static layout of a hash grid: per-level scale, resolution, table offset and whether it is hashed."""

    n_levels: int
    n_features: int
    log2_hashmap_size: int
    base_resolution: int
    per_level_scale: float
    scales: tuple[float, ...]
    resolutions: tuple[int, ...]
    offsets: tuple[int, ...]  # (n_levels + 1,) row offsets of each level in the concatenated table
    hashed: tuple[bool, ...]

    @staticmethod
    def create(
        n_levels: int = 8,
        n_features: int = 4,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float | None = None,
        finest_resolution: float | None = None,
    ) -> GridGeometry:
        """Build the layout; give either ``per_level_scale`` or ``finest_resolution`` (instant-ngp: 2048*aabb_scale)."""
        if per_level_scale is None:
            if finest_resolution is None:
                raise ValueError("give per_level_scale or finest_resolution")
            per_level_scale = math.exp(math.log(finest_resolution / base_resolution) / max(n_levels - 1, 1))
        log2_pls = np.float32(math.log2(per_level_scale))
        table_cap = 1 << log2_hashmap_size
        scales, resolutions, offsets, hashed = [], [], [0], []
        for level in range(n_levels):
            # float32 arithmetic, as tiny-cuda-nn computes it on the device.
            scale = np.float32(np.exp2(np.float32(level) * log2_pls) * np.float32(base_resolution) - np.float32(1.0))
            res = int(math.ceil(float(scale))) + 1
            dense = min(res**3, 2**31 - 1)
            size = min(-(-dense // 8) * 8, table_cap)
            scales.append(float(scale))
            resolutions.append(res)
            offsets.append(offsets[-1] + size)
            hashed.append(res**3 > size)
        return GridGeometry(
            n_levels,
            n_features,
            log2_hashmap_size,
            base_resolution,
            float(per_level_scale),
            tuple(scales),
            tuple(resolutions),
            tuple(offsets),
            tuple(hashed),
        )

    @property
    def n_rows(self) -> int:
        """Total number of table rows over all levels."""
        return self.offsets[-1]

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features

    def level_sizes(self) -> list[int]:
        return [self.offsets[i + 1] - self.offsets[i] for i in range(self.n_levels)]

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-level constants as tensors on ``device`` (cached by the encoding module)."""
        return {
            "scales": torch.tensor(self.scales, dtype=torch.float32, device=device),
            "resolutions": torch.tensor(self.resolutions, dtype=torch.int64, device=device),
            "offsets": torch.tensor(self.offsets[:-1], dtype=torch.int64, device=device),
            "sizes": torch.tensor(self.level_sizes(), dtype=torch.int64, device=device),
            "hashed": torch.tensor(self.hashed, dtype=torch.bool, device=device),
        }


def _wrap_int32(value: int) -> int:
    """The int32 whose bits equal ``value`` taken modulo 2^32 (int32 products then wrap like uint32 ones)."""
    value &= _MASK32
    return value - (1 << 32) if value >= 1 << 31 else value


_PRIMES32 = tuple(_wrap_int32(p) for p in PRIMES)


def hash_grid_corners(
    x: torch.Tensor, geometry: GridGeometry, consts: dict[str, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows and trilinear weights of the 8 cell corners of each point on each level.

    x: (n, 3) in [0, 1]. Returns rows (n, L, 8) int64 into the concatenated table and weights (n, L, 8) of x's
    dtype, corner ``c`` having offset bits (c & 1, c >> 1 & 1, c >> 2 & 1) along (x, y, z).
    Index arithmetic runs in int32, whose products wrap exactly like tiny-cuda-nn's uint32 ones.
    """
    c = consts if consts is not None else geometry.tensors(x.device)
    n, n_levels = x.shape[0], geometry.n_levels
    # Points outside the unit cube are clamped onto it, NaN to 0, so every index stays inside the table (as in the
    # kernels; tiny-cuda-nn leaves such inputs to the caller).
    x = torch.nan_to_num(x, nan=0.0).clamp(0.0, 1.0)
    scales = c["scales"].to(x.dtype)
    pos = x[:, None, :] * scales[None, :, None] + 0.5  # (n, L, 3)
    base = torch.floor(pos)
    frac = pos - base
    base32 = base.to(torch.int32)
    corner = torch.stack([base32, base32 + 1], dim=-1)  # (n, L, 3, 2): per axis, low and high corner coordinate
    n_dense = sum(1 for h in geometry.hashed if not h)
    rows = torch.empty(n, n_levels, 2, 2, 2, dtype=torch.int32, device=x.device)  # (z, y, x) corner bits
    if n_dense:
        res = c["resolutions"][:n_dense].to(torch.int32)[None, :, None]
        size = c["sizes"][:n_dense].to(torch.int32)[None, :, None, None, None]
        cd = corner[:, :n_dense]
        dense = (cd[:, :, 0, None, None, :] + (cd[:, :, 1] * res)[:, :, None, :, None]) + (cd[:, :, 2] * (res * res))[
            :, :, :, None, None
        ]
        # tiny-cuda-nn takes the index modulo the table size; a dense index exceeds it by less than one size.
        dense = torch.where(dense >= size, dense - size, dense)
        rows[:, :n_dense] = dense + c["offsets"][:n_dense].to(torch.int32)[None, :, None, None, None]
    if n_dense < n_levels:
        ch = corner[:, n_dense:]
        hashv = (ch[:, :, 0, None, None, :] ^ (ch[:, :, 1] * _PRIMES32[1])[:, :, None, :, None]) ^ (
            ch[:, :, 2] * _PRIMES32[2]
        )[:, :, :, None, None]
        # Hashed levels always have 2^log2_hashmap_size rows, so the modulo is a mask.
        hashv &= (1 << geometry.log2_hashmap_size) - 1
        rows[:, n_dense:] = hashv + c["offsets"][n_dense:].to(torch.int32)[None, :, None, None, None]
    w = torch.stack([1.0 - frac, frac], dim=-1)  # (n, L, 3, 2)
    wx, wy, wz = w[:, :, 0], w[:, :, 1], w[:, :, 2]
    weights = ((wz[:, :, :, None] * wy[:, :, None, :])[..., None] * wx[:, :, None, None, :]).reshape(n, n_levels, 8)
    return rows.reshape(n, n_levels, 8).to(torch.int64), weights


def hash_grid_encode(
    x: torch.Tensor,
    table: torch.Tensor,
    geometry: GridGeometry,
    consts: dict[str, torch.Tensor] | None = None,
    precision: str = "float32",
) -> torch.Tensor:
    """Encode points by trilinear interpolation of every level's table; differentiable in ``x`` and ``table``.

    x: (n, 3) in [0, 1]; table: (n_rows, F). Returns (n, L*F).
    precision ``"float16"`` reads every table entry rounded to half precision (what the kernels read from a half
    copy of the table) while the gradient reaches ``table`` unrounded, as in mixed-precision training.
    """
    rows, weights = hash_grid_corners(x, geometry, consts)
    n = x.shape[0]
    feats = table.index_select(0, rows.reshape(-1)).view(n, geometry.n_levels, 8, geometry.n_features)
    if precision == "float16":
        feats = feats + (feats.to(torch.float16).to(feats.dtype) - feats).detach()  # rounded values, identity gradient
    elif precision != "float32":
        raise ValueError(f"unknown table precision {precision!r} (float32 or float16)")
    out = torch.einsum("nlc,nlcf->nlf", weights.to(table.dtype), feats)
    return out.reshape(n, geometry.n_output_dims)


class HashGridEncoding(nn.Module):
    """Hash grid with a learnable table; lookups run in the backend's ``ops.encode`` (torch reference, native
    kernels or tcnn: the :class:`Ops` that ``compute`` resolved), and every backend reads and trains the same table.

    ``precision="float16"`` makes lookups read a half-precision copy of the float32 table (refreshed whenever the
    table changes): half the memory traffic of the lookups, float32 gradients and optimiser state.
    """

    def __init__(
        self, geometry: GridGeometry, init_scale: float = 1e-4, *, ops: Ops, precision: str = "float32"
    ) -> None:
        super().__init__()
        if precision not in TABLE_PRECISIONS:
            raise ValueError(f"unknown table precision {precision!r} (choose from {', '.join(TABLE_PRECISIONS)})")
        self.geometry = geometry
        self.ops = ops
        self.precision = precision
        table = torch.empty(geometry.n_rows, geometry.n_features).uniform_(-init_scale, init_scale)
        self.table = nn.Parameter(table)
        self._consts: dict[str, torch.Tensor] | None = None
        self._half: tuple[tuple[int, int, int], torch.Tensor] | None = None

    @property
    def n_output_dims(self) -> int:
        return self.geometry.n_output_dims

    def constants(self) -> dict[str, torch.Tensor]:
        """The geometry's per-level constants on the table's device (made once per device)."""
        dev = self.table.device
        if self._consts is None or self._consts["scales"].device != dev:
            self._consts = self.geometry.tensors(dev)
        return self._consts

    def half_table(self) -> torch.Tensor:
        """(n_rows, F) float16 copy of the table, recomputed only after the table changed (optimiser step, load)."""
        t = self.table
        key = (t._version, t.data_ptr(), t.device.index if t.device.index is not None else -1)
        if self._half is None or self._half[0] != key:
            self._half = (key, t.detach().to(torch.float16))
        return self._half[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 3) in [0, 1]. Returns (n, L*F) float32."""
        return self.ops.encode(self, x)

    def extra_repr(self) -> str:
        g = self.geometry
        return (
            f"L={g.n_levels}, F={g.n_features}, T=2^{g.log2_hashmap_size}, N_min={g.base_resolution}, "
            f"b={g.per_level_scale:.4f}, table={self.precision}"
        )
