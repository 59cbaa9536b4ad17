"""Progress and cancellation of an import: stages with a share of the whole, reported to a callback (the CLI's
progress bar, the app's panel), and a cancel flag checked between and during stages."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ...errors import ImportCancelled

#: The stages of an import and their rough share of its time on a CPU (they sum to 1).
STAGES: dict[str, float] = {
    "images": 0.08,  # copy/link the photos, or extract frames from a video
    "features": 0.27,  # SIFT extraction
    "matching": 0.35,
    "mapping": 0.25,  # incremental structure from motion
    "writing": 0.05,  # transforms.json, the sparse points, the model
}

_ORDER = {name: i for i, name in enumerate(STAGES)}


@dataclass(frozen=True)
class ImportProgress:
    """One progress report: the stage, how far it is (0..1), the whole import's fraction, and a short note."""

    stage: str
    fraction: float
    overall: float
    message: str = ""


ProgressCallback = Callable[[ImportProgress], None]


class Reporter:
    """Turns per-stage fractions into ``ImportProgress`` reports and checks the cancel flag.

    Thread-safe: SfM stages report from a polling thread. ``skip`` marks stages that will not run (an existing
    COLMAP model needs no SfM), so ``overall`` still reaches 1.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        self.callback = callback
        self.cancel_event = cancel or threading.Event()
        weights = {k: (0.0 if k in skip else w) for k, w in STAGES.items()}
        total = sum(weights.values()) or 1.0
        self._weights = {k: w / total for k, w in weights.items()}
        self._lock = threading.Lock()
        self._last: tuple[str, float] = ("", -1.0)
        self._last_time = 0.0
        self._started: dict[str, float] = {}  # when each stage first reported

    def seconds(self) -> dict[str, float]:
        """Wall-clock seconds each stage took so far (from its first report to the next stage's, or now)."""
        with self._lock:
            order = sorted(self._started.items(), key=lambda kv: kv[1])
            now = time.monotonic()
        return {
            name: round((order[i + 1][1] if i + 1 < len(order) else now) - t, 2) for i, (name, t) in enumerate(order)
        }

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise ImportCancelled when the caller asked to stop."""
        if self.cancelled:
            raise ImportCancelled("import cancelled")

    def overall(self, stage: str, fraction: float) -> float:
        before = 0.0
        for name, w in self._weights.items():
            if name == stage:
                return min(1.0, before + w * min(max(fraction, 0.0), 1.0))
            before += w
        raise KeyError(stage)

    def __call__(self, stage: str, fraction: float, message: str = "", force: bool = False) -> None:
        """Report ``stage`` at ``fraction`` (0..1); throttled to ~10 reports a second unless the stage changes,
        it ends, or ``force``. A late report of an earlier stage (from a polling thread) is dropped."""
        with self._lock:
            now = time.monotonic()
            if self._last[0] and _ORDER[stage] < _ORDER[self._last[0]]:
                return
            self._started.setdefault(stage, now)
            if self.callback is None:
                self._last = (stage, fraction)
                return
            changed = stage != self._last[0] or fraction >= 1.0
            if not (changed or force) and (now - self._last_time < 0.1 or fraction <= self._last[1]):
                return
            self._last, self._last_time = (stage, fraction), now
        self.callback(ImportProgress(stage, min(max(fraction, 0.0), 1.0), self.overall(stage, fraction), message))
