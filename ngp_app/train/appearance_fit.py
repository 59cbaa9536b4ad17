"""The evaluation protocol of NeRF in the Wild (Martin-Brualla et al. 2021) for models with per-image appearance:
a held-out image has no learned look, so its look (appearance code and exposure) is fitted on the *left* half of
the image with the model frozen, and the *right* half is scored with it.

The fit is exact and cheap: densities do not depend on the look, so the samples of the fitting rays, their
compositing weights and geometry features are computed once; each Adam step runs only the colour MLP on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

from ..data.cameras import Camera, camera_rays
from ..model.appearance import Look
from ..nerf_model import NerfModel
from ..schema.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """How a look is fitted: ``steps`` Adam steps at ``learning_rate`` on at most ``rays`` left-half pixels."""

    steps: int = 48
    rays: int = 4096
    learning_rate: float = 5e-2


@dataclass
class FrozenRays:
    """What the colour of a set of rays needs from a frozen model: per kept sample its geometry features ``h``
    (m, F), encoded direction ``sh`` (m, S), compositing weight ``weights`` (m,) and ray ``ray`` (m,) int64; per
    ray the transmittance left for the background ``rest`` (n,)."""

    h: torch.Tensor
    sh: torch.Tensor
    weights: torch.Tensor
    ray: torch.Tensor
    rest: torch.Tensor

    def colour(self, nerf: NerfModel, look: Look, background: torch.Tensor) -> torch.Tensor:
        """The rays' colours (n, 3) over ``background`` (3,) with ``look`` (differentiable in the look)."""
        rgb = nerf.field.colour(self.h, self.sh, look)
        out = torch.zeros(self.rest.shape[0], 3, device=rgb.device).index_add(0, self.ray, self.weights[:, None] * rgb)
        return out + self.rest[:, None] * background


def left_width(camera: Camera) -> int:
    """Columns of the left half (the fitted one); the right half is the rest."""
    return camera.width // 2


def right_half(camera: Camera) -> Camera:
    """The camera of the right half of ``camera``'s image (the scored pixels): same rays, columns from
    ``left_width`` on."""
    w0 = left_width(camera)
    return replace(camera, cx=camera.cx - w0, width=camera.width - w0)


@torch.no_grad()
def freeze_rays(nerf: NerfModel, rays_o: torch.Tensor, rays_d: torch.Tensor, threshold: float = 1e-4) -> FrozenRays:
    """March rays (n, 3) through ``nerf`` once and keep the samples that carry weight (see :class:`FrozenRays`)."""
    field, ops = nerf.field, nerf.ops
    n = rays_o.shape[0]
    samples = ops.march(rays_o.contiguous(), rays_d.contiguous(), nerf.grid, nerf.aabb, nerf.march)
    sigma = field.density(samples.positions)
    no_colour = torch.zeros(sigma.shape[0], 3, device=sigma.device)
    out = ops.composite(sigma, no_colour, samples.t, samples.dt, samples.ray_indices, samples.offsets, n, threshold)
    keep = out["weights"] > 0
    positions, directions = samples.positions[keep], samples.directions[keep]
    h = field.geometry_features(positions)
    sh = ops.sh(directions, field.sh_degree)
    return FrozenRays(h, sh, out["weights"][keep], samples.ray_indices[keep].long(), 1.0 - out["opacity"])


def fit_pixels(camera: Camera, mask: torch.Tensor | None, n_rays: int, seed: int) -> torch.Tensor:
    """Up to ``n_rays`` pixels (flat indices y * width + x, int64) of the left half that count (``mask`` (H, W)
    bool, or every pixel), drawn without replacement with ``seed``: they depend on nothing but these arguments."""
    w0 = left_width(camera)
    left = torch.zeros(camera.height, camera.width, dtype=torch.bool)
    left[:, :w0] = True
    if mask is not None:
        left &= mask.cpu()
    candidates = torch.nonzero(left.reshape(-1)).squeeze(1)
    if candidates.numel() <= n_rays:
        return candidates
    generator = torch.Generator().manual_seed(seed)
    return candidates[torch.randperm(candidates.numel(), generator=generator)[:n_rays]].sort().values


def fit_look(
    nerf: NerfModel,
    camera: Camera,
    image: torch.Tensor,
    background: torch.Tensor,
    settings: FitSettings,
    mask: torch.Tensor | None = None,
    seed: int = 0,
) -> Look:
    """Fit a look to ``image`` (H, W, 3) floats in [0, 1] (composited over ``background`` (3,)) seen by
    ``camera``, on its left half only (``fit_pixels``), with the model frozen. Starts from the default look (the
    mean code, no exposure change); returns the fitted look, (1, k) and (1, 3), detached."""
    appearance = nerf.field.appearance
    dev = nerf.device
    pixels = fit_pixels(camera, mask, settings.rays, seed)
    rays_o, rays_d = camera_rays(camera, device=dev)
    pick = pixels.to(dev)
    frozen = freeze_rays(nerf, rays_o[pick], rays_d[pick])
    target = image.reshape(-1, 3)[pixels].to(dev).float()
    bg = background.to(dev).float()
    start = appearance.default()
    latent = start.latent.detach().clone().requires_grad_(True) if start.latent is not None else None
    exposure = torch.zeros(1, 3, device=dev, requires_grad=True) if appearance.exposure is not None else None
    params = [p for p in (latent, exposure) if p is not None]
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    with torch.enable_grad():
        for _ in range(settings.steps):
            pred = frozen.colour(nerf, Look(latent, exposure), bg)
            loss = ((pred - target) ** 2).mean()
            # gradients of the look only: the model's parameters (maybe training elsewhere) get none
            grads = torch.autograd.grad(loss, params)
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()
    log.debug("fitted a look on %d pixels: loss %.5f", pixels.numel(), float(loss.detach()))
    return Look(latent.detach() if latent is not None else None, exposure.detach() if exposure is not None else None)


def fit_settings(config: Config) -> FitSettings:
    """The fit of ``config.appearance`` (``fit_steps``, ``fit_rays``, ``fit_learning_rate``)."""
    look = config.appearance
    return FitSettings(look.fit_steps, look.fit_rays, look.fit_learning_rate)


def protocol(nerf: NerfModel, settings: FitSettings) -> str:
    """What ``psnr_nerfw`` measures for ``nerf`` (metrics.json's ``test_nerfw_protocol``)."""
    if getattr(nerf.field, "appearance", None) is None:
        return "right half of each held-out image as rendered (no per-image look to fit)"
    return (
        f"look fitted on the left half of each held-out image ({settings.steps} Adam steps on up to "
        f"{settings.rays} pixels, model frozen), right half scored"
    )
