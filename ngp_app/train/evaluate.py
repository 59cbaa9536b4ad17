"""Evaluation: render every frame of a scene with a trained model and compare with its images (PSNR, SSIM), plus
the right-half PSNR of the NeRF-in-the-Wild protocol (``appearance_fit.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data.cameras import Camera
from ..data.scene import Scene
from ..nerf_model import NerfModel
from ..render.depth import metric_depth
from .appearance_fit import FitSettings, fit_look, left_width, protocol, right_half
from .metrics import mse, mse_to_psnr, ssim


@torch.no_grad()
def evaluate(
    nerf: NerfModel,
    scene: Scene,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    on_image: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
    fit: FitSettings | None = None,
    depth_kind: str | None = None,
    on_depth: Callable[[int, np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """Render every frame of ``scene`` with ``nerf`` and compare with its images composited on ``background``.

    Returns ``psnr``: the mean of the per-image PSNRs (the convention of instant-ngp, nerfacc and nerfstudio),
    ``psnr_pooled``: the PSNR of the mean squared error over all pixels (with images of one size never above
    ``psnr``: it weighs the worst images more), mean ``ssim``, ``n_images`` and per-image values (``images``).
    These render the default look (the mean appearance code, no exposure change). ``psnr_nerfw``: the mean PSNR of
    the images' right halves, with a model with per-image appearance after fitting each image's look on its left
    half (``fit``, default ``FitSettings()``), else as rendered; ``nerfw_protocol`` says which.
    Pixels a mask leaves out (``Scene.mask``) count in none of them. ``on_depth(i, depth)`` gets each image's metric
    depth of ``depth_kind`` (ray or z) when both are given.
    """
    nerf.field.eval()
    indices = range(scene.n_frames)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="img")
    scores = []
    for i in indices:
        kind = depth_kind if on_depth is not None else None
        score = score_image(nerf, scene, i, background, fit, keep_image=on_image is not None, depth_kind=kind)
        scores.append(score)
        if on_image is not None:
            on_image(i, score.pred, score.gt)
        if on_depth is not None and score.depth is not None:
            on_depth(i, score.depth)
    return summarize(nerf, scores, fit)


@dataclass
class ImageScore:
    """One evaluated image: its per-image metrics (``record``: file, psnr, ssim, psnr_nerfw), its squared error
    summed over the ``pixels`` that count, and (when asked for) the rendered and ground-truth images."""

    record: dict[str, Any]
    sq_err: float
    pixels: int
    pred: torch.Tensor | None = None
    gt: torch.Tensor | None = None
    depth: np.ndarray | None = None  # metric depth (H, W) when asked for (``render.depth``)


@torch.no_grad()
def score_image(
    nerf: NerfModel,
    scene: Scene,
    i: int,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    fit: FitSettings | None = None,
    keep_image: bool = False,
    depth_kind: str | None = None,
) -> ImageScore:
    """Render frame ``i`` of ``scene`` and compare it with its image (``evaluate``'s per-image work; independent of
    the other frames, so ranks can share a scene's frames); ``depth_kind`` (ray or z) keeps its metric depth."""
    fit = fit or FitSettings()
    bg = torch.tensor(background, dtype=torch.float32)
    gt = scene.image(i).float().cpu() / 255.0
    if gt.shape[-1] == 4:
        gt = gt[..., :3] * gt[..., 3:] + bg * (1.0 - gt[..., 3:])
    out = nerf.render(scene.camera(i), background)
    pred = out["rgb"].cpu().clamp(0, 1)
    depth = metric_depth(out, scene.camera(i), scene.scale, depth_kind) if depth_kind is not None else None
    mask = scene.mask(i)
    mask = mask.cpu() if mask is not None else None
    err = mse(pred, gt, mask)
    n = int(mask.sum()) if mask is not None else gt.shape[0] * gt.shape[1]
    right = right_half_psnr(nerf, scene.camera(i), pred, gt, mask, background, fit, seed=i)
    record = {
        "file": scene.file_names[i],
        "psnr": mse_to_psnr(err),
        "ssim": ssim(pred, gt, mask=mask),
        "psnr_nerfw": right,
    }
    return ImageScore(record, err * n, n, pred if keep_image else None, gt if keep_image else None, depth)


def summarize(nerf: NerfModel, scores: Sequence[ImageScore], fit: FitSettings | None = None) -> dict[str, Any]:
    """``evaluate``'s result from the images' scores, in frame order."""
    per_image = [s.record for s in scores]
    sq_err, n_px = 0.0, 0
    for s in scores:
        sq_err += s.sq_err
        n_px += s.pixels
    halves = [p["psnr_nerfw"] for p in per_image if p["psnr_nerfw"] is not None]
    return {
        "psnr": sum(p["psnr"] for p in per_image) / max(len(per_image), 1),
        "psnr_pooled": mse_to_psnr(sq_err / max(n_px, 1)),
        "ssim": sum(p["ssim"] for p in per_image) / max(len(per_image), 1),
        "psnr_nerfw": sum(halves) / len(halves) if halves else None,
        "nerfw_protocol": protocol(nerf, fit or FitSettings()),
        "n_images": len(per_image),
        "images": per_image,
    }


def right_half_psnr(
    nerf: NerfModel,
    camera: Camera,
    pred: torch.Tensor,
    gt: torch.Tensor,
    mask: torch.Tensor | None,
    background: tuple[float, float, float],
    fit: FitSettings,
    seed: int,
) -> float | None:
    """The NeRF-W score of one image: the PSNR of its right half (H, W - left_width), rendered with the look fitted
    on its left half when the model has per-image appearance, else taken from the plain render ``pred`` (H, W, 3).
    None when a mask leaves no pixel of the right half."""
    w0 = left_width(camera)
    right_mask = mask[:, w0:] if mask is not None else None
    if right_mask is not None and not bool(right_mask.any()):
        return None
    if getattr(nerf.field, "appearance", None) is not None:
        look = fit_look(nerf, camera, gt, torch.tensor(background), fit, mask, seed)
        pred = nerf.render(right_half(camera), background, look=look)["rgb"].cpu().clamp(0, 1)
    else:
        pred = pred[:, w0:]
    return mse_to_psnr(mse(pred, gt[:, w0:], right_mask))
