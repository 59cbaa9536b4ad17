"""Evaluation: render every frame of a scene with a trained model and compare with its images (PSNR, SSIM)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.scene import Scene
from ..nerf_model import NerfModel
from .metrics import mse, mse_to_psnr, ssim


@torch.no_grad()
def evaluate(
    nerf: NerfModel,
    scene: Scene,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    on_image: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Render every frame of ``scene`` with ``nerf`` and compare with its images composited on ``background``.

    Returns ``psnr``: the mean of the per-image PSNRs (the convention of instant-ngp, nerfacc and nerfstudio),
    ``psnr_pooled``: the PSNR of the mean squared error over all pixels (with images of one size never above
    ``psnr``: it weighs the worst images more), mean ``ssim``, ``n_images`` and per-image values (``images``).
    Pixels a mask leaves out (``Scene.mask``) count in none of them.
    """
    nerf.field.eval()
    bg = torch.tensor(background, dtype=torch.float32)
    per_image = []
    sq_err, n_px = 0.0, 0
    indices = range(scene.n_frames)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="img")
    for i in indices:
        gt = scene.image(i).float().cpu() / 255.0
        if gt.shape[-1] == 4:
            gt = gt[..., :3] * gt[..., 3:] + bg * (1.0 - gt[..., 3:])
        pred = nerf.render(scene.camera(i), background)["rgb"].cpu().clamp(0, 1)
        mask = scene.mask(i)
        mask = mask.cpu() if mask is not None else None
        err = mse(pred, gt, mask)
        n = int(mask.sum()) if mask is not None else gt.shape[0] * gt.shape[1]
        sq_err += err * n
        n_px += n
        per_image.append({"file": scene.file_names[i], "psnr": mse_to_psnr(err), "ssim": ssim(pred, gt, mask=mask)})
        if on_image is not None:
            on_image(i, pred, gt)
    return {
        "psnr": sum(p["psnr"] for p in per_image) / max(len(per_image), 1),
        "psnr_pooled": mse_to_psnr(sq_err / max(n_px, 1)),
        "ssim": sum(p["ssim"] for p in per_image) / max(len(per_image), 1),
        "n_images": len(per_image),
        "images": per_image,
    }
