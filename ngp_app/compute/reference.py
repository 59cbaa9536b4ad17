"""The ``torch`` backend: the pure-PyTorch reference of every op (readable, runs anywhere, the tests' oracle)."""

from __future__ import annotations

import torch
from torch import nn

from ..encoding.hashgrid import HashGridEncoding, hash_grid_encode
from ..render.composite import composite
from ..render.occupancy import cell_centers
from ..render.raymarch import march_rays
from .ops import Ops


def encode(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    """Reference lookups with the module's cached per-level constants."""
    return hash_grid_encode(x, enc.table, enc.geometry, enc.constants(), enc.precision)


def mlp(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    return net(x)


def decay_max(density: torch.Tensor, fresh: torch.Tensor, decay: float) -> torch.Tensor:
    return torch.maximum(density * decay, fresh)


def ops() -> Ops:
    return Ops(
        name="torch", encode=encode, mlp=mlp, march=march_rays, composite=composite, march_from=None,
        cell_positions=cell_centers, decay_max=decay_max, optimizer=torch.optim.Adam,
    )
