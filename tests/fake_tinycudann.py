"""A stand-in for the ``tinycudann`` module, written from its documented behaviour, to test our adapters on CPU.

It is not tiny-cuda-nn: it reproduces what our code relies on, so that the wiring (parameter replacement, layouts,
padding, dtypes, gradient flow) is exercised where tinycudann can't be installed. What it mirrors (tiny-cuda-nn's
``bindings/torch/tinycudann/modules.py``): modules hold their parameters as one float32 ``params`` Parameter; the
forward reads ``self.params``, casts it to the module's parameter precision, pads the batch to a multiple of 128,
and returns ``output[:batch, :n_output_dims]``. ``Encoding`` computes in ``dtype`` (float16 tables when asked);
``Network`` is a FullyFusedMLP: row-major ``(fan_out, fan_in)`` matrices of the input, hidden and output layers in
one flat vector, input width padded to 16 with ones, output width padded to 16. It computes in float32 (the real
one in float16), so our tests can compare exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

BATCH_GRANULARITY = 128


def _pad16(n: int) -> int:
    return -(-n // 16) * 16


class _Module(nn.Module):
    def __init__(self, n_params: int, n_output_dims: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.params = nn.Parameter(torch.zeros(n_params, dtype=torch.float32))
        self.n_output_dims = n_output_dims
        self.dtype = dtype

    def _compute(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        padded = -(-batch // BATCH_GRANULARITY) * BATCH_GRANULARITY
        x_padded = torch.nn.functional.pad(x, [0, 0, 0, padded - batch]) if padded != batch else x
        out = self._compute(x_padded.to(torch.float).contiguous(), self.params.to(self.dtype).contiguous())
        return out[:batch, : self.n_output_dims]


class Encoding(_Module):
    """HashGrid only (the one encoding our code asks for)."""

    def __init__(
        self, n_input_dims: int, encoding_config: dict[str, Any], seed: int = 1337, dtype: torch.dtype | None = None
    ) -> None:
        from ngp_app.encoding.hashgrid import GridGeometry

        assert n_input_dims == 3 and encoding_config["otype"] == "HashGrid"
        self.geometry = GridGeometry.create(
            encoding_config["n_levels"],
            encoding_config["n_features_per_level"],
            encoding_config["log2_hashmap_size"],
            encoding_config["base_resolution"],
            per_level_scale=encoding_config["per_level_scale"],
        )
        super().__init__(
            self.geometry.n_rows * self.geometry.n_features, self.geometry.n_output_dims, dtype or torch.float16
        )
        with torch.no_grad():
            self.params.uniform_(-1e-4, 1e-4)

    def _compute(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        from ngp_app.encoding.hashgrid import hash_grid_encode

        table = params.view(self.geometry.n_rows, self.geometry.n_features)
        return hash_grid_encode(x, table, self.geometry).to(self.dtype)


class Network(_Module):
    """FullyFusedMLP with ReLU hidden layers and no output activation (what our adapter configures)."""

    def __init__(self, n_input_dims: int, n_output_dims: int, network_config: dict[str, Any], seed: int = 1337) -> None:
        assert network_config["otype"] == "FullyFusedMLP" and network_config["output_activation"] == "None"
        width, hidden = int(network_config["n_neurons"]), int(network_config["n_hidden_layers"])
        self.n_in, self.width = n_input_dims, width
        self.shapes = (
            [(width, _pad16(n_input_dims))] + [(width, width)] * (hidden - 1) + [(_pad16(n_output_dims), width)]
        )
        super().__init__(sum(r * c for r, c in self.shapes), n_output_dims, torch.float32)
        with torch.no_grad():  # the real one initialises every matrix, padding included
            pos = 0
            for r, c in self.shapes:
                bound = math.sqrt(6.0 / (r + c))
                self.params[pos : pos + r * c].uniform_(-bound, bound)
                pos += r * c

    def _compute(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        pad = self.shapes[0][1] - self.n_in
        h = torch.cat([x, torch.ones(x.shape[0], pad, dtype=x.dtype)], dim=1) if pad else x
        pos = 0
        for i, (r, c) in enumerate(self.shapes):
            h = h @ params[pos : pos + r * c].view(r, c).T
            pos += r * c
            if i < len(self.shapes) - 1:
                h = torch.relu(h)
        return h
