"""Image quality metrics: PSNR and SSIM (Gaussian window 11, sigma 1.5, as in Wang et al. 2004)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB of images in [0, 1] from their mean squared error."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of two images (..., 3) in [0, 1]."""
    return mse_to_psnr(float(torch.mean((pred.float() - target.float()) ** 2)))


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM of two images (H, W, C) in [0, 1], averaged over channels, 'valid' window positions only."""
    x = pred.float().permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    y = target.float().permute(2, 0, 1)[:, None]
    g = _gaussian_window(window, sigma, x.device)
    kx, ky = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx), ky)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float((num / den).mean())
