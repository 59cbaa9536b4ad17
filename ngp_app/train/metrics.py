"""Image quality metrics: PSNR and SSIM (Gaussian window 11, sigma 1.5, as in Wang et al. 2004)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB of images in [0, 1] from their mean squared error."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean squared error of two images (H, W, 3), over the pixels of ``mask`` (H, W) bool when given."""
    sq = (pred.float() - target.float()) ** 2
    return float(sq.mean() if mask is None else sq[mask].mean())


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of two images (..., 3) in [0, 1] (over the pixels of ``mask`` (H, W) when given)."""
    return mse_to_psnr(mse(pred, target, mask))


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5, mask: torch.Tensor | None = None
) -> float:
    """Mean SSIM of two images (H, W, C) in [0, 1], averaged over channels, 'valid' window positions only; with
    ``mask`` (H, W) bool, only windows centred on its pixels (all windows when none is)."""
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
    value = num / den  # (C, 1, H - window + 1, W - window + 1)
    if mask is not None:
        r = (window - 1) // 2
        centres = mask[r : r + value.shape[2], r : r + value.shape[3]].to(value.device)
        if bool(centres.any()):
            return float(value[:, 0][:, centres].mean())
    return float(value.mean())
