"""The app's render settings: what the viewport shows and how (mode, resolution, background, crop box, overlays)."""

from __future__ import annotations

from dataclasses import dataclass, fields

CONFIGS = ("small", "base", "big")


@dataclass
class RenderSettings:
    mode: str = "rgb"  # one of overlays.MODES (the names ``ngp render --mode`` uses)
    target_fps: float = 30.0
    resolution_scale: float = 1.0  # cap on the fraction of the window rendered (dynamic resolution stays below)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    crop_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    show_hud: bool = True
    ground_truth: bool = False
    gt_index: int = 0
    look: int = -1  # the training frame whose exposure and appearance code the view shows (-1: the default look)
    overlays: tuple[str, ...] = ()  # overlays.OVERLAYS switched on (drawn over the image, not into it)

    def key(self) -> tuple:
        """Everything that changes the rendered picture (compared between frames); not the HUD or the overlays."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in ("show_hud", "overlays"))

    def toggle_overlay(self, name: str, on: bool | None = None) -> None:
        """Switch an overlay on or off (``on`` None: flip it)."""
        have = name in self.overlays
        if on is None:
            on = not have
        self.overlays = tuple(n for n in self.overlays if n != name) + ((name,) if on else ())
