"""The ``torch`` backend: the pure-PyTorch reference of every op (readable, runs anywhere, the tests' oracle)."""

from __future__ import annotations

import torch
from torch import nn

from ..encoding.hashgrid import HashGridEncoding, hash_grid_encode
from ..encoding.sh import sh_encode
from ..model.precision import mlp_forward
from ..render.batch import compact, march_fixed
from ..render.composite import composite
from ..render.occupancy import cell_centers
from ..render.raymarch import march_rays
from ..render.slots import TorchFrameOps
from ..train.optim import TableAdam
from .ops import Ops


def encode(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    """Reference lookups with the module's cached per-level constants."""
    return hash_grid_encode(x, enc.table, enc.geometry, enc.constants(), enc.precision)


def mlp(net: nn.Sequential, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``net(x)`` in float32; matmuls in ``dtype`` with float32 master weights otherwise."""
    return mlp_forward(net, x, dtype)


def decay_max(density: torch.Tensor, fresh: torch.Tensor, decay: float) -> torch.Tensor:
    """max(density * decay, fresh), except where density < 0: cells marked untrained keep their mark."""
    return torch.where(density < 0, density, torch.maximum(density * decay, fresh))


def ops() -> Ops:
    return Ops(
        name="torch", encode=encode, mlp=mlp, sh=sh_encode, march=march_rays, composite=composite,
        frame=TorchFrameOps, march_fixed=march_fixed, compact=compact,
        cell_positions=cell_centers, decay_max=decay_max, optimizer=TableAdam,
    )
