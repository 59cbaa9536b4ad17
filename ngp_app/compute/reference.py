"""The ``torch`` backend: the pure-PyTorch reference of every op (readable, runs anywhere, the tests' oracle)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..encoding.hashgrid import HashGridEncoding, hash_grid_encode
from ..encoding.sh import sh_encode
from ..model.precision import mlp_forward
from ..ops import Ops
from ..render.batch import compact, march_fixed
from ..render.composite import composite
from ..render.occupancy import cell_centers
from ..render.raymarch import march_rays
from ..render.slots import TorchFrameOps


def encode(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    """Reference lookups with the module's cached per-level constants."""
    return hash_grid_encode(x, enc.table, enc.geometry, enc.constants(), enc.precision)


def mlp(net: nn.Sequential, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``net(x)`` in float32; matmuls in ``dtype`` with float32 master weights otherwise."""
    return mlp_forward(net, x, dtype)


def decay_max(density: torch.Tensor, fresh: torch.Tensor, decay: float) -> torch.Tensor:
    """max(density * decay, fresh), except where density < 0: cells marked untrained keep their mark."""
    return torch.where(density < 0, density, torch.maximum(density * decay, fresh))


def sparse_adam_reference_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    counts: torch.Tensor,
    corrections: torch.Tensor,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """PyTorch reference of the native ``adam_step_counted``: updates (in place) only the entries whose gradient is
    non-zero, each with its own step count (``counts``, int32 like ``param``, saturating at len(corrections) - 1).

    Written with masks rather than indices, so it needs no host synchronisation; it costs ~20 passes over the table.
    """
    live = grad != 0
    g = grad + weight_decay * param if weight_decay else grad
    counts.add_(live).clamp_(max=corrections.shape[0] - 1)
    flat = counts.view(-1)
    step_size = corrections[:, 0].index_select(0, flat).view_as(param).mul_(lr)
    bc2_sqrt = corrections[:, 1].index_select(0, flat).view_as(param)
    m = exp_avg.lerp(g, 1.0 - beta1)
    v = exp_avg_sq.mul(beta2).addcmul_(g, g, value=1.0 - beta2)
    step = (m / v.sqrt().div_(bc2_sqrt).add_(eps)).mul_(step_size)
    param.copy_(torch.where(live, param - step, param))
    exp_avg.copy_(torch.where(live, m, exp_avg))
    exp_avg_sq.copy_(torch.where(live, v, exp_avg_sq))


def dense_adam_reference_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """``torch.optim.Adam``'s update (L2 weight decay, no amsgrad) of every entry at global step ``step``, in place."""
    g = grad + weight_decay * param if weight_decay else grad
    exp_avg.lerp_(g, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    step_size = lr / (1.0 - beta1**step)
    denom = exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**step) + eps
    param.addcdiv_(exp_avg, denom, value=-step_size)


def ops() -> Ops:
    return Ops(
        name="torch",
        encode=encode,
        mlp=mlp,
        sh=sh_encode,
        march=march_rays,
        composite=composite,
        frame=TorchFrameOps,
        march_fixed=march_fixed,
        compact=compact,
        cell_positions=cell_centers,
        decay_max=decay_max,
        sparse_adam=sparse_adam_reference_,
        dense_adam=dense_adam_reference_,
    )
