"""tiny-cuda-nn's FullyFusedMLP running our bias-free ReLU MLPs (the ``tcnn`` backend), with our weights.

Our ``nn.Linear`` weights stay the parameters (optimiser, snapshots and the other backends are unchanged); every
call lays them out as tcnn's flat parameter vector, which is differentiable, so gradients reach them. The layout
(tiny-cuda-nn ``FullyFusedMLP``): the matrices of the input, hidden and output layers one after another, each
row-major ``(fan_out, fan_in)`` like ``nn.Linear.weight``; the input width and the output width are padded to
multiples of 16. Padding columns of the first matrix and padding rows of the last are zero, so the values tcnn puts
in padded inputs do not matter and padded outputs (sliced off by tcnn) are constant.
tcnn's MLPs compute in half precision: outputs agree with the float32 MLP to about 1e-3 relative.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

SUPPORTED_WIDTHS = (16, 32, 64, 128)
ALIGNMENT = 16


def _pad(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def linear_layers(mlp: nn.Sequential) -> list[nn.Linear]:
    """The bias-free linear layers of an MLP made by ``model.field.make_mlp``."""
    layers = [m for m in mlp if isinstance(m, nn.Linear)]
    if not layers or any(m.bias is not None for m in layers):
        raise ValueError("expected a bias-free MLP")
    return layers


def fully_fused_supported(mlp: nn.Sequential) -> tuple[bool, str]:
    """Whether FullyFusedMLP can run this MLP: one hidden width in 16/32/64/128 and at least one hidden layer."""
    layers = linear_layers(mlp)
    if len(layers) < 2:
        return False, "FullyFusedMLP needs at least one hidden layer"
    widths = {m.out_features for m in layers[:-1]}
    if len(widths) != 1 or next(iter(widths)) not in SUPPORTED_WIDTHS:
        return False, f"hidden widths {sorted(widths)} are not one of {SUPPORTED_WIDTHS}"
    return True, ""


def network_config(mlp: nn.Sequential) -> dict[str, Any]:
    """The tcnn network config of ``mlp`` (output activation applied by the caller)."""
    layers = linear_layers(mlp)
    return {
        "otype": "FullyFusedMLP",
        "activation": "ReLU",
        "output_activation": "None",
        "n_neurons": layers[0].out_features,
        "n_hidden_layers": len(layers) - 1,
    }


def flat_parameters(mlp: nn.Sequential) -> torch.Tensor:
    """Our weights as tcnn's flat parameter vector (differentiable). Returns (n_params,) float32."""
    layers = linear_layers(mlp)
    parts = []
    for i, m in enumerate(layers):
        w = m.weight
        if i == 0 and w.shape[1] % ALIGNMENT:
            w = torch.nn.functional.pad(w, (0, _pad(w.shape[1]) - w.shape[1]))  # zero columns for padded inputs
        if i == len(layers) - 1 and w.shape[0] % ALIGNMENT:
            w = torch.nn.functional.pad(w, (0, 0, 0, _pad(w.shape[0]) - w.shape[0]))  # zero rows: padded outputs
        parts.append(w.reshape(-1))
    return torch.cat(parts)


def n_flat_parameters(mlp: nn.Sequential) -> int:
    layers = linear_layers(mlp)
    n = 0
    for i, m in enumerate(layers):
        rows = _pad(m.out_features) if i == len(layers) - 1 else m.out_features
        cols = _pad(m.in_features) if i == 0 else m.in_features
        n += rows * cols
    return n


class TcnnMLP:
    """One ``tinycudann.Network`` computing ``mlp`` (kept out of the module tree, so it adds no parameters)."""

    def __init__(self, mlp: nn.Sequential) -> None:
        import tinycudann as tcnn

        layers = linear_layers(mlp)
        self.n_out = layers[-1].out_features
        self.module = tcnn.Network(layers[0].in_features, self.n_out, network_config(mlp))
        n_params, expected = int(self.module.params.numel()), n_flat_parameters(mlp)
        if n_params != expected:
            raise RuntimeError(f"tinycudann FullyFusedMLP has {n_params} parameters, the mapping {expected}")
        self.module._parameters.pop("params", None)

    def __call__(self, mlp: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """x: (n, n_in) on CUDA. Returns (n, n_out) float32."""
        self.module.params = flat_parameters(mlp)
        return self.module(x.contiguous()).float()


_NETWORKS: weakref.WeakKeyDictionary[nn.Sequential, TcnnMLP] = weakref.WeakKeyDictionary()


def tcnn_mlp_forward(mlp: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run ``mlp`` on ``x`` with tiny-cuda-nn (network made on first use per MLP). x: (n, n_in). Returns (n, n_out)."""
    net = _NETWORKS.get(mlp)
    if net is None:
        net = _NETWORKS[mlp] = TcnnMLP(mlp)
    return net(mlp, x)
