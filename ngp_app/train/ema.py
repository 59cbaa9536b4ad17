"""Exponential moving average of the model's weights (instant-ngp's "Ema" optimizer wrapper, decay 0.95 per step).

Training updates the raw weights; evaluation, rendering and snapshots read the average, which smooths out the last
steps' noise. The average is debiased as tiny-cuda-nn's is (an accumulator started at zero and divided by
``1 - decay^t``), which in place reads: ``ema += (w - ema) * (1 - decay) / (1 - decay^t)``, so the first update
copies the weights. One in-place lerp per parameter per step (11.7 M floats for the ``base`` table).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


class WeightEMA:
    """A copy of ``model`` (``self.model``, same class, no gradients) holding the moving average of its parameters.

    Buffers (the aabb) are copied as they are.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.steps = 0

    def weight(self) -> float:
        """The lerp weight of the next update (1 at the first: the average starts as the weights)."""
        t = self.steps + 1
        return (1.0 - self.decay) / (1.0 - self.decay**t)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current parameters into the average (call after each optimiser step)."""
        w = self.weight()
        self.steps += 1
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in model.parameters()], w)

    @torch.no_grad()
    def reset(self, model: nn.Module, steps: int = 0) -> None:
        """Make the average equal to ``model``'s weights, as if ``steps`` updates had run."""
        for dst, src in zip(self.model.parameters(), model.parameters()):
            dst.copy_(src)
        for dst, src in zip(self.model.buffers(), model.buffers()):
            dst.copy_(src)
        self.steps = int(steps)


def raw_weight_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """The parameters of ``model`` as arrays named ``raw.<parameter>`` (the training weights in a snapshot whose
    model holds the average)."""
    return {f"raw.{k}": v.detach().cpu().numpy() for k, v in model.named_parameters()}


@torch.no_grad()
def load_raw_weight_arrays(model: nn.Module, arrays: dict[str, np.ndarray]) -> bool:
    """Load ``raw.<parameter>`` arrays into ``model`` when all are there; returns whether they were. Raises
    ValueError on a shape mismatch."""
    params = dict(model.named_parameters())
    if not all(f"raw.{k}" in arrays for k in params):
        return False
    for k, p in params.items():
        value = torch.from_numpy(np.asarray(arrays[f"raw.{k}"]))
        if value.shape != p.shape:
            raise ValueError(f"raw weights {k} have shape {tuple(value.shape)}, expected {tuple(p.shape)}")
        p.copy_(value)
    return True
