"""Per-image appearance: a learned exposure (instant-ngp's, per colour channel, in stops) and a learned latent code
(nerfstudio's appearance embedding, instant-ngp's extra dims) per training image.

The code is an extra input of the colour MLP; the exposure scales the predicted colour's linear value by
``2**exposure`` (``data.colour.expose``) before the loss. Neither touches the density. Novel views use the
*default look*: the mean code and no exposure change; a training frame's look, or one fitted to a held-out image
(``train/appearance_fit.py``), is a :class:`Look`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data.colour import expose


@dataclass(frozen=True)
class Look:
    """What the colour network is told about one image or each sample: ``latent`` (n or 1, k) codes, or None
    without codes; ``exposure`` (n or 1, 3) stops, or None for none (the default look)."""

    latent: torch.Tensor | None
    exposure: torch.Tensor | None = None


class Appearance(nn.Module):
    """Per-image exposures ``exposure`` (n_images, 3) (when ``with_exposure``) and codes ``latents``
    (n_images, latent_dims) (when latent_dims > 0), all zero at the start."""

    def __init__(self, n_images: int, latent_dims: int, with_exposure: bool) -> None:
        super().__init__()
        if n_images < 1:
            raise ValueError("per-image appearance needs at least one image")
        self.n_images, self.latent_dims = int(n_images), int(latent_dims)
        self.exposure = nn.Parameter(torch.zeros(n_images, 3)) if with_exposure else None
        self.latents = nn.Parameter(torch.zeros(n_images, latent_dims)) if latent_dims > 0 else None

    def of_frames(self, frames: torch.Tensor) -> Look:
        """The looks of frames (n,) int64, one per sample (differentiable in the tables)."""
        latent = self.latents[frames] if self.latents is not None else None
        exposure = self.exposure[frames] if self.exposure is not None else None
        return Look(latent, exposure)

    def of_frame(self, frame: int) -> Look:
        """Training frame ``frame``'s look: its code and exposure (1, k), (1, 3). Raises ValueError if out of range."""
        if not 0 <= frame < self.n_images:
            raise ValueError(f"frame {frame} is not a training frame (0..{self.n_images - 1})")
        return self.of_frames(torch.tensor([frame], device=self.device))

    def default(self) -> Look:
        """The look of novel views: the mean code (1, k) and no exposure change."""
        latent = self.latents.mean(0, keepdim=True) if self.latents is not None else None
        return Look(latent)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def recenter_(self) -> None:
        """Shift the exposures to zero mean per channel (instant-ngp's renormalisation): the default look's exposure
        0 is then the average training image's."""
        if self.exposure is not None:
            self.exposure.sub_(self.exposure.mean(0, keepdim=True))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The tables by kind, for the optimiser's groups: ``exposure`` and ``latent`` (empty lists when off)."""
        return {
            "exposure": [self.exposure] if self.exposure is not None else [],
            "latent": [self.latents] if self.latents is not None else [],
        }


def latent_inputs(look: Look | None, n: int) -> list[torch.Tensor]:
    """The colour MLP's extra inputs for n samples: [(n, k) codes], or [] without codes."""
    if look is None or look.latent is None:
        return []
    return [look.latent.expand(n, -1)]


def apply_exposure(rgb: torch.Tensor, look: Look | None) -> torch.Tensor:
    """rgb (n, 3) sRGB as seen with ``look``'s exposure (unchanged without one)."""
    if look is None or look.exposure is None:
        return rgb
    return expose(rgb, look.exposure)


class LookedField:
    """A field rendered with one fixed :class:`Look` (a training frame's, or a fitted one); everything else
    (density, ops, encoding, box) is the wrapped field's."""

    def __init__(self, field: Any, look: Look) -> None:
        self.field, self.look = field, look

    def __call__(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, d: (n, 3). Returns sigma (n,) and rgb (n, 3) with the look."""
        return self.field(x, d, self.look)

    def eval(self) -> LookedField:
        """Evaluation mode for the wrapped field; returns the wrapper."""
        self.field.eval()
        return self

    def __getattr__(self, name: str) -> Any:
        field = self.__dict__.get("field")
        if field is None:  # copying: not yet initialised
            raise AttributeError(name)
        return getattr(field, name)


def frame_look(field: Any, frame: int) -> Look | None:
    """Training frame ``frame``'s look in ``field`` (an NGPField), or None for the default look: ``frame`` < 0, a
    field without per-image appearance, or a frame it has no look for."""
    appearance = getattr(field, "appearance", None)
    if frame < 0 or appearance is None or frame >= appearance.n_images:
        return None
    return appearance.of_frame(frame)
