"""Dynamic resolution: render a fraction of the window so frames keep the target rate, with hysteresis so the
fraction does not flicker, and progressive refinement towards full resolution while the camera is still."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class DynamicResolution:
    """``scale`` is the linear fraction of the output size rendered while the view moves.

    A frame slower than ``target * slow`` (or faster than ``target * fast``) counts towards a change; only
    ``patience`` such frames in a row change the scale, so one odd frame never does. Render time goes with
    pixel count, so the new scale is ``scale * sqrt(target / measured)`` (damped when growing).
    """

    target_fps: float = 30.0
    scale: float = 0.05
    min_scale: float = 0.01
    max_scale: float = 1.0
    slow: float = 1.25
    fast: float = 0.7
    patience: int = 3
    max_step: float = 2.0
    floor: float = 0.0  # learned: below this, smaller frames stopped being faster (fixed per-frame costs)
    floor_frames: int = 120  # the floor is forgotten after this many frames (conditions change, noise fades)
    _floor_age: int = 0
    _slow_run: int = 0
    _fast_run: int = 0
    _before_shrink: tuple[float, float] | None = None  # (scale, ms) measured before the last shrink

    @property
    def target_ms(self) -> float:
        return 1000.0 / max(self.target_fps, 1e-3)

    def update(self, frame_ms: float, rendered_scale: float | None = None) -> float:
        """Feed the time of a frame rendered at ``rendered_scale`` (default: the current scale)."""
        used = self.scale if rendered_scale is None else rendered_scale
        target = self.target_ms
        if self.floor:
            self._floor_age += 1
            if self._floor_age > self.floor_frames:
                self.floor, self._floor_age = 0.0, 0
        if frame_ms > target * self.slow:
            self._slow_run, self._fast_run = self._slow_run + 1, 0
            # Far too slow (>2x): act at once; otherwise wait for ``patience`` frames.
            if self._slow_run >= self.patience or frame_ms > 2.0 * target * self.slow:
                self._slow_run = 0
                prev = self._before_shrink
                if prev is not None and used < prev[0] and frame_ms > 0.75 * prev[1]:
                    # Shrinking bought less than 25%: time is not in the pixels, so keep the sharper picture.
                    self.floor, self._floor_age = prev[0], 0
                    self.scale = self._clamp(prev[0])
                    self._before_shrink = None
                    return self.scale
                ratio = math.sqrt(target / max(frame_ms, 1e-6))
                new = self._clamp(used * max(ratio, 1.0 / self.max_step))
                if new < used:
                    self._before_shrink = (used, frame_ms)
                self.scale = new
        elif frame_ms < target * self.fast:
            self._fast_run, self._slow_run = self._fast_run + 1, 0
            if self._fast_run >= self.patience:
                ratio = math.sqrt(target / max(frame_ms, 1e-6))
                grow = min(1.0 + 0.5 * (ratio - 1.0), self.max_step)  # damped growth
                self.scale = self._clamp(max(self.scale, used * grow))
                self._fast_run = 0
        else:
            self._slow_run = self._fast_run = 0
        return self.scale

    def _clamp(self, s: float) -> float:
        return float(min(self.max_scale, max(self.min_scale, self.floor, s)))

    def reset(self, scale: float | None = None) -> None:
        """Forget what was learned (new scene or device)."""
        self.floor, self._before_shrink, self._slow_run, self._fast_run = 0.0, None, 0, 0
        if scale is not None:
            self.scale = scale

    def refine_scales(self, start: float | None = None) -> list[float]:
        """Scales to render, in order, once the camera stops: doubling from ``start`` (default: the current scale)
        up to ``max_scale``."""
        out, s = [], self.scale if start is None else max(start, self.min_scale)
        while s < self.max_scale:
            s = min(self.max_scale, s * 2.0)
            out.append(s)
        return out


def render_size(width: int, height: int, scale: float, min_side: int = 8) -> tuple[int, int]:
    """Pixel size rendered for an output of ``width`` x ``height`` at linear ``scale`` (aspect kept)."""
    w = max(min_side, int(round(width * scale)))
    h = max(min_side, int(round(height * scale)))
    return min(w, width), min(h, height)
