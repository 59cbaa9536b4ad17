"""MLP precision (``network.precision`` in a config): float32, or half precision on CUDA tensor cores.

The MLPs keep float32 parameters (the optimiser's master weights); a half-precision forward casts the input and each
weight to float16 or bfloat16 per call, runs the matmuls and ReLUs in that type (tensor cores, half the memory
traffic of the activations) and returns float32, and the gradients reach the input and weights as float32.

- ``"float16"``: tiny-cuda-nn's and instant-ngp's choice (11-bit significand). Its range is small (smallest normal
  6e-5), and the gradients reaching the MLP are tiny (the loss is a mean over ~2^15 rays), so they are scaled by a
  static 128 (instant-ngp's loss scale) inside the MLP and unscaled where they leave it: no change to the loss, the
  optimiser or the trainer, and no host synchronisation as dynamic scaling would need. A gradient that overflows the
  half range anyway is zeroed where it leaves the MLP instead of writing inf/NaN into the weights.
- ``"bfloat16"``: float32's range (no scaling), 8-bit significand; needs compute capability 8.0+.
- ``"auto"`` (the default): float16 on CUDA, float32 elsewhere.

On the CPU the MLPs always run in float32: half-precision matmuls are slower there, and CPU results stay those of
the reference. The tcnn backend's FullyFusedMLP computes in half precision on its own.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..schema.config import MLP_PRECISIONS

FLOAT16_GRAD_SCALE = 128.0
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_precision(precision: Any) -> str:
    """``precision`` if it names an MLP precision, else a ConfigError naming the config key."""
    if precision not in MLP_PRECISIONS:
        raise ConfigError(f"network.precision must be one of {', '.join(MLP_PRECISIONS)}, not {precision!r}")
    return str(precision)


def mlp_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The type the MLPs compute in on ``device``: float32 on the CPU whatever is asked; ``auto`` is float16 on
    CUDA."""
    precision = check_precision(precision)
    if torch.device(device).type != "cuda":
        return torch.float32
    return _DTYPES["float16" if precision == "auto" else precision]


class _ScaleGrad(torch.autograd.Function):
    """Identity whose backward multiplies the gradient by ``scale``; with ``sanitize``, non-finite results become 0
    (an overflow of the half-precision range must not reach the optimiser)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float, sanitize: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.scale, ctx.sanitize = scale, sanitize
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:  # type: ignore[override]
        grad = grad * ctx.scale
        if ctx.sanitize:
            grad = torch.nan_to_num_(grad, nan=0.0, posinf=0.0, neginf=0.0)
        return grad, None, None


def _leaving(t: torch.Tensor, scale: float) -> torch.Tensor:
    """``t`` as it enters the scaled region: its gradient is divided by ``scale`` (and sanitised) on the way out."""
    return _ScaleGrad.apply(t, 1.0 / scale, True) if scale != 1.0 and torch.is_grad_enabled() else t


def mlp_forward(mlp: nn.Sequential, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Apply a ReLU MLP of ``nn.Linear`` layers computing in ``dtype``; x: (n, n_in) float32 -> (n, n_out) float32.

    float32 is ``mlp(x)`` itself. float16 scales the gradients by ``FLOAT16_GRAD_SCALE`` inside the MLP (see the
    module docstring); the gradients of ``x`` and the weights are float32 and unscaled.
    """
    if dtype == torch.float32:
        return mlp(x)
    scale = FLOAT16_GRAD_SCALE if dtype == torch.float16 else 1.0
    h = _leaving(x, scale).to(dtype)
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            bias = None if layer.bias is None else _leaving(layer.bias, scale).to(dtype)
            h = F.linear(h, _leaving(layer.weight, scale).to(dtype), bias)
        elif isinstance(layer, nn.ReLU):
            h = torch.relu_(h)  # in place, like the float32 MLP's nn.ReLU(inplace=True)
        else:
            raise TypeError(f"half-precision MLPs take Linear and ReLU layers, not {type(layer).__name__}")
    out = h.float()
    return _ScaleGrad.apply(out, scale, False) if scale != 1.0 and torch.is_grad_enabled() else out
