"""The per-image loss table's state: one row per training frame with its recent training error, sortable, with
frames left out of training and brought back without restarting (``Scene.set_excluded``).

Rows come from the trainer's ``image_stats`` (one host read per refresh, at most every ``interval`` seconds).
No windowing toolkit here; the panel draws ``rows`` and calls ``sort_by``, ``toggle_excluded`` and ``focus``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

SORT_KEYS = ("loss", "index", "name")


@dataclass
class ImageRow:
    index: int
    name: str
    mse: float  # nan until the frame has been sampled
    psnr: float
    rays: float
    excluded: bool


class ImageTable:
    """Rows of the training frames, refreshed from a trainer; ``version`` bumps when they change."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.rows: list[ImageRow] = []
        self.sort_key = "loss"
        self.descending = True  # worst first
        self.version = 0
        self._last = -math.inf
        self._trainer: Any = None

    def refresh(self, trainer: Any, force: bool = False, now: float | None = None) -> bool:
        """Re-read the per-image losses (at most every ``interval`` s unless ``force``); returns whether it did."""
        now = time.perf_counter() if now is None else now
        if trainer is None:
            changed = bool(self.rows)
            self.rows, self._trainer = [], None
            if changed:
                self.version += 1
            return changed
        if not force and trainer is self._trainer and now - self._last < self.interval:
            return False
        self._trainer, self._last = trainer, now
        stats = getattr(trainer, "image_stats", None)
        if stats is None:
            return False
        names = short_names(list(getattr(trainer.scene, "file_names", [])))
        excluded = set(getattr(trainer.scene, "excluded", ()))
        self.rows = [
            ImageRow(
                r.index,
                names[r.index] if r.index < len(names) else str(r.index),
                r.mse,
                r.psnr,
                r.rays,
                r.index in excluded,
            )
            for r in stats.snapshot()
        ]
        self._sort()
        self.version += 1
        return True

    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Sort by ``loss`` (worst first by default), ``index`` or ``name``; the same key again flips the order."""
        if key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {key!r}")
        if descending is None:
            descending = (not self.descending) if key == self.sort_key else key == "loss"
        self.sort_key, self.descending = key, descending
        self._sort()
        self.version += 1

    def _sort(self) -> None:
        if self.sort_key == "loss":
            # frames not sampled yet (nan) go last whichever way the loss is sorted
            seen = sorted((r for r in self.rows if not math.isnan(r.mse)), key=lambda r: r.mse, reverse=self.descending)
            self.rows = seen + [r for r in self.rows if math.isnan(r.mse)]
        else:
            self.rows.sort(key=lambda r: r.index if self.sort_key == "index" else r.name, reverse=self.descending)

    def toggle_excluded(self, trainer: Any, index: int) -> bool:
        """Leave frame ``index`` out of training, or bring it back; returns whether it is now excluded. Training goes
        on: the next batches are drawn from the other frames. Raises ValueError for the last included frame."""
        scene = trainer.scene
        excluded = set(scene.excluded)
        now_excluded = index not in excluded
        excluded ^= {index}
        scene.set_excluded(sorted(excluded))
        for r in self.rows:
            if r.index == index:
                r.excluded = now_excluded
        self.version += 1
        return now_excluded

    def worst(self, n: int = 5) -> list[ImageRow]:
        """The ``n`` included frames with the highest loss."""
        seen = [r for r in self.rows if not math.isnan(r.mse) and not r.excluded]
        return sorted(seen, key=lambda r: r.mse, reverse=True)[:n]


def short_names(paths: list[str]) -> list[str]:
    """Image paths relative to the folder they all share (``train/r_0.png``), as the table shows them."""
    if len(paths) < 2:
        return [os.path.basename(p) for p in paths]
    try:
        common = os.path.commonpath(paths)
    except ValueError:  # mixed drives or absolute and relative
        return list(paths)
    return [os.path.relpath(p, common) for p in paths]
