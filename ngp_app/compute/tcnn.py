"""The ``tcnn`` backend: tiny-cuda-nn's HashGrid (on our table) and FullyFusedMLP (on our weights); tiny-cuda-nn
has no marching or compositing, so those, the SH encoding, the occupancy helpers and the optimiser steps are the
native ones where they build, else the reference."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..encoding.hashgrid import HashGridEncoding
from ..encoding.tcnn_grid import tcnn_hash_grid_encode
from ..model.precision import mlp_forward
from ..model.tcnn_mlp import fully_fused_supported, tcnn_mlp_forward
from ..ops import Ops


def encode(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    return tcnn_hash_grid_encode(x, enc.table, enc.geometry, enc.precision)


def mlp(net: nn.Sequential, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """FullyFusedMLP where it supports the MLP's shape (it computes in float16 whatever ``dtype`` says), torch in
    ``dtype`` otherwise."""
    return tcnn_mlp_forward(net, x) if fully_fused_supported(net)[0] else mlp_forward(net, x, dtype)


def ops(rendering: Ops) -> Ops:
    """tcnn's encoding and MLPs on top of ``rendering``'s marching, compositing and grid helpers."""
    return dataclasses.replace(rendering, name="tcnn", encode=encode, mlp=mlp)
