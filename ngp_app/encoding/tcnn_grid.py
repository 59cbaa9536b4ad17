"""tiny-cuda-nn's fully fused HashGrid as a backend of :class:`HashGridEncoding`, sharing our table.

Our table layout is tiny-cuda-nn's (docs/conventions.md), so the tcnn encoding runs directly on
``table.view(-1)``: gradients flow into the same parameter, the optimiser and snapshots are unchanged, and the
torch, native and tcnn backends can be switched at any step. Only the public ``tinycudann.Encoding`` API is used;
its own ``params`` parameter is replaced by a view of our table. With ``precision="float16"`` the tcnn grid is built
with ``dtype=torch.float16``: tcnn then reads a half copy of the (float32) table, like our half-precision lookups.
"""

from __future__ import annotations

from typing import Any

import torch

from .hashgrid import GridGeometry


def tcnn_encoding_config(geometry: GridGeometry) -> dict[str, Any]:
    """The tiny-cuda-nn HashGrid config equivalent to ``geometry``."""
    return {
        "otype": "HashGrid",
        "n_levels": geometry.n_levels,
        "n_features_per_level": geometry.n_features,
        "log2_hashmap_size": geometry.log2_hashmap_size,
        "base_resolution": geometry.base_resolution,
        "per_level_scale": geometry.per_level_scale,
    }


class TcnnGrid:
    """Holds one ``tinycudann.Encoding`` (kept out of the module tree, so it adds no parameters)."""

    def __init__(self, geometry: GridGeometry, precision: str = "float32") -> None:
        import tinycudann as tcnn

        self.geometry = geometry
        dtype = torch.float16 if precision == "float16" else torch.float32
        self.module = tcnn.Encoding(3, tcnn_encoding_config(geometry), dtype=dtype)
        n_params = int(self.module.params.numel())
        expected = geometry.n_rows * geometry.n_features
        if n_params != expected:
            raise RuntimeError(f"tinycudann HashGrid has {n_params} parameters, ours {expected}: layouts differ")
        self.module._parameters.pop("params", None)

    def __call__(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """x: (n, 3) in [0, 1] on CUDA; table: (n_rows, F). Returns (n, L*F) float32."""
        self.module.params = table.view(-1)  # a view: gradients reach ``table``
        return self.module(x.contiguous()).float()


_CACHE: dict[tuple[GridGeometry, str], TcnnGrid] = {}


def tcnn_hash_grid_encode(
    x: torch.Tensor, table: torch.Tensor, geometry: GridGeometry, precision: str = "float32"
) -> torch.Tensor:
    """Encode with tiny-cuda-nn using our table (one tcnn module per geometry and precision, made on first use)."""
    key = (geometry, precision)
    grid = _CACHE.get(key)
    if grid is None:
        grid = _CACHE[key] = TcnnGrid(geometry, precision)
    return grid(x, table)
