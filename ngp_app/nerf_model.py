"""The trained NeRF as one value: field, occupancy grid, march parameters, render box and backend.

:func:`build_model` is the one factory: the trainer, the snapshot loader and, through them, the app and every
export get their :class:`NerfModel` from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import torch

from .data.cameras import Camera
from .model.appearance import Look, LookedField
from .model.field import NGPField
from .ops import Ops
from .render.occupancy import OccupancyGrid
from .render.raymarch import MarchParams
from .render.renderer import render_image, render_rgba
from .render.supersample import render_supersampled, rgba8_of
from .schema.config import Config


@dataclass(frozen=True)
class SceneBox:
    """Where a scene lives in ngp space: its box ``aabb`` (2, 3) and instant-ngp's ``aabb_scale`` (grid cascades)."""

    aabb: torch.Tensor
    aabb_scale: float

    @staticmethod
    def of(scene: Any) -> SceneBox:
        """The box of anything with ``aabb`` and ``aabb_scale`` (a :class:`~ngp_app.data.scene.Scene`)."""
        return SceneBox(scene.aabb, float(scene.aabb_scale))


@dataclass
class NerfModel:
    """A trained NeRF, ready to render: ``field`` (density and colour), its occupancy ``grid``, the ``march``
    parameters, the box ``aabb`` (2, 3) rendered (the scene's, or a crop of it) and the ``ops`` it runs on."""

    field: NGPField
    grid: OccupancyGrid
    march: MarchParams
    aabb: torch.Tensor
    ops: Ops

    @property
    def backend(self) -> str:
        return self.ops.name

    @property
    def device(self) -> torch.device:
        return self.grid.device

    def to(self, device: torch.device | str) -> NerfModel:
        """Move field, grid and box to ``device`` (in place); returns self."""
        self.field.to(device)
        self.grid.to(device)
        self.aabb = self.aabb.to(device)
        return self

    def with_field(self, field: NGPField) -> NerfModel:
        """The same grid, march and box with another field (the trainer's weight average)."""
        return replace(self, field=field)

    def look(self, frame: int) -> Look:
        """Training frame ``frame``'s look (its appearance code and exposure). Raises ValueError when the model has
        no per-image appearance or ``frame`` is not one of its training frames."""
        appearance = getattr(self.field, "appearance", None)
        if appearance is None:
            raise ValueError("the model was trained without per-image appearance (config appearance.enabled)")
        return appearance.of_frame(frame)

    def with_look(self, look: int | Look | None) -> NerfModel:
        """The model rendering ``look`` (a training frame's index, or a :class:`Look`) instead of the default look
        (the mean appearance code, no exposure change); ``None``: unchanged."""
        if look is None:
            return self
        chosen = self.look(look) if isinstance(look, int) else look
        base = self.field.field if isinstance(self.field, LookedField) else self.field
        return replace(self, field=LookedField(base, chosen))

    def cropped(self, aabb: torch.Tensor) -> NerfModel:
        """The same model rendered inside ``aabb`` (2, 3)."""
        return replace(self, aabb=aabb)

    def frozen(self) -> NerfModel:
        """A private copy (evaluation mode) that training can go on beside: the field deep-copied, the grid
        shallow-copied (the trainer replaces the grid's tensors rather than mutating them)."""
        return replace(self, field=copy.deepcopy(self.field).eval(), grid=copy.copy(self.grid))

    def render(
        self,
        camera: Camera,
        background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
        look: int | Look | None = None,
        spp: int = 1,
        **kw: Any,
    ) -> dict[str, torch.Tensor]:
        """``render.renderer.render_image`` of ``camera`` (rgb (H, W, 3), opacity and depth (H, W), floats) with
        ``look`` (as :meth:`with_look`), averaged over ``spp`` jittered samples per pixel
        (``render.supersample``); ``kw``: its ``chunk``, ``progress``, ``stats``."""
        field = self.with_look(look).field
        if spp > 1:
            draw = lambda cam, **k: render_image(field, self.grid, self.aabb, cam, self.march, background, **k)
            return render_supersampled(draw, camera, spp, **kw)
        return render_image(field, self.grid, self.aabb, camera, self.march, background, **kw)

    def render_rgba(
        self,
        camera: Camera,
        background: torch.Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),
        look: int | Look | None = None,
        spp: int = 1,
        **kw: Any,
    ) -> dict[str, torch.Tensor]:
        """``render.renderer.render_rgba`` of ``camera`` (rgba (H, W, 4) uint8; with ``floats`` opacity and
        depth) with ``look`` (as :meth:`with_look`); ``spp`` > 1 averages that many jittered samples per pixel in
        floats first. ``kw``: its ``chunk``, ``progress``, ``floats``, ``stats``."""
        if spp > 1:
            floats = kw.pop("floats", False)
            out = self.render(camera, background, look, spp, **kw)
            return {"rgba": rgba8_of(out), **({"opacity": out["opacity"], "depth": out["depth"]} if floats else {})}
        field = self.with_look(look).field
        return render_rgba(field, self.grid, self.aabb, camera, self.march, background, **kw)


def build_model(
    config: Config,
    box: SceneBox,
    ops: Ops,
    device: torch.device | str = "cpu",
    grid_resolution: int | None = None,
    n_images: int = 0,
) -> NerfModel:
    """A fresh :class:`NerfModel` for ``config`` in ``box`` on ``ops``: the field (with per-image appearance for
    ``n_images`` training images, none for 0), an occupancy grid of ``density_grid.resolution`` (or
    ``grid_resolution``) cells per side in every cascade, instant-ngp's march."""
    dg = config.density_grid
    field = NGPField(config, box.aabb, ops=ops, n_images=n_images).to(device)
    grid = OccupancyGrid(box.aabb_scale, grid_resolution or dg.resolution, dg.decay, dg.threshold, device, ops=ops)
    march = MarchParams.for_grid(grid, config.training.max_steps_per_ray, config.training.near_distance)
    return NerfModel(field, grid, march, box.aabb.to(device), ops)
