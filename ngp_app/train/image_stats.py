"""Per-training-image loss while training runs: which frames the model fits worst (blurry or misposed ones usually).

Every step folds its rays' squared errors into two per-image device tensors, an exponentially decayed sum of
errors and of ray counts (``index_add_`` by image index: no host read, a few small kernels), so an image's value is
the mean error of its recent rays, whatever share of the batch it happened to get. The app reads them now and then
(``snapshot``), which is the only host read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

DECAY = 0.99  # per step: an image's value follows its last few hundred steps


@dataclass
class ImageLoss:
    """One row of the per-image table: mean squared error per channel of the image's recent rays, its PSNR, and
    how many rays (decayed) it stands on (0: not sampled yet)."""

    index: int
    mse: float
    psnr: float
    rays: float


class ImageStats:
    """Running per-image training error on the device. ``update`` is called by the trainer inside its step."""

    def __init__(self, n_images: int, device: torch.device | str = "cpu", decay: float = DECAY) -> None:
        self.n_images = int(n_images)
        self.decay = float(decay)
        self.err_sum = torch.zeros(self.n_images, dtype=torch.float32, device=device)
        self.ray_sum = torch.zeros(self.n_images, dtype=torch.float32, device=device)

    @torch.no_grad()
    def update(self, images: torch.Tensor, sq_err: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Fold in one step. images: (n_rays,) int64 image index per ray; sq_err: (n_rays,) squared error of each ray
        summed over its 3 channels; weight: (n_rays,) 1 for rays that count, 0 for rays left out of the loss."""
        err = sq_err.detach().float() / 3.0
        w = torch.ones_like(err) if weight is None else weight.detach().float()
        self.err_sum.mul_(self.decay).index_add_(0, images, err * w)
        self.ray_sum.mul_(self.decay).index_add_(0, images, w)

    def snapshot(self) -> list[ImageLoss]:
        """The current values (one host read)."""
        both = torch.stack([self.err_sum, self.ray_sum]).detach().cpu().numpy().astype(np.float64)
        rows = []
        for i, (e, r) in enumerate(zip(both[0], both[1])):
            mse = e / r if r > 1e-6 else math.nan
            psnr = -10.0 * math.log10(max(mse, 1e-10)) if r > 1e-6 else math.nan
            rows.append(ImageLoss(i, float(mse), float(psnr), float(r)))
        return rows

    def reset(self, indices: list[int] | None = None) -> None:
        """Forget the history of ``indices`` (all images by default)."""
        with torch.no_grad():
            if indices is None:
                self.err_sum.zero_()
                self.ray_sum.zero_()
            else:
                idx = torch.as_tensor(indices, dtype=torch.int64, device=self.err_sum.device)
                self.err_sum[idx] = 0.0
                self.ray_sum[idx] = 0.0
