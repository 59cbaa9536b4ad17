"""Where the two windows go: the panel at the screen's left edge and the viewport beside it (never under it),
shrunk to fit the screen with its aspect kept; positions the user chose are remembered between runs.

The positions file is ``$XDG_CONFIG_HOME/ngp_app/windows.json`` (``~/.config/...``), written atomically.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)
PANEL_WIDTH = 480
TITLE_BAR = 40  # room for window decorations above each window


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )

    def on_screen(self, screen_w: int, screen_h: int, min_visible: int = 60) -> bool:
        """Whether enough of it is on a screen of that size to grab it."""
        return (
            self.x + self.width >= min_visible
            and self.x <= screen_w - min_visible
            and self.y >= 0
            and self.y <= screen_h - min_visible
        )


def initial_layout(
    screen_w: int, screen_h: int, viewport_w: int, viewport_h: int, panel_w: int = PANEL_WIDTH
) -> tuple[Rect, Rect]:
    """(panel, viewport) rectangles: the panel on the left, full height; the viewport to its right at the size
    asked for, or shrunk (aspect kept) to what the screen has left."""
    panel = Rect(0, 0, panel_w, max(400, screen_h - TITLE_BAR))
    room_w, room_h = max(320, screen_w - panel_w), max(240, screen_h - TITLE_BAR)
    k = min(1.0, room_w / viewport_w, room_h / viewport_h)
    w, h = max(160, int(viewport_w * k)), max(90, int(viewport_h * k))
    x = panel_w + max(0, (room_w - w) // 2)
    y = max(0, (room_h - h) // 2)
    return panel, Rect(x, y, w, h)


def positions_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ngp_app" / "windows.json"


def load_positions(path: Path | None = None) -> dict[str, Rect]:
    """Remembered window rectangles by name ("panel", "viewport"); empty when none or unreadable."""
    p = path or positions_file()
    try:
        data = json.loads(p.read_text())
        return {k: Rect(*(int(v[f]) for f in ("x", "y", "width", "height"))) for k, v in data.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def save_positions(rects: dict[str, Rect], path: Path | None = None) -> None:
    """Remember window rectangles (best effort: a read-only home only logs)."""
    from ..fileio import atomic_write_text

    try:
        atomic_write_text(path or positions_file(), json.dumps({k: asdict(r) for k, r in rects.items()}, indent=1))
    except OSError as exc:
        log.info("cannot remember window positions: %s", exc)


def choose_layout(
    screen_w: int, screen_h: int, size: tuple[int, int] | None = None, remembered: dict[str, Rect] | None = None
) -> tuple[Rect, Rect]:
    """(panel, viewport): remembered rectangles where they are still on this screen, else ``initial_layout``'s.
    ``size`` (the viewport size asked for, e.g. ``ngp app --size``) wins over a remembered size, not its place."""
    remembered = remembered or {}
    p, v = remembered.get("panel"), remembered.get("viewport")
    v = v if v is not None and v.on_screen(screen_w, screen_h) else None
    want = size or ((v.width, v.height) if v is not None else (1920, 1080))
    panel, viewport = initial_layout(screen_w, screen_h, *want)
    if p is not None and p.on_screen(screen_w, screen_h):
        panel = p
    if v is not None:
        viewport = Rect(v.x, v.y, viewport.width, viewport.height)
    return panel, viewport
