"""Batch sizing for training on live samples: how many rays a step draws and how many marched samples its buffers
hold, from counters read back from the device every few steps (never in between, so steps need no host sync)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def round_up(n: float, multiple: int) -> int:
    return int(math.ceil(max(n, 1.0) / multiple)) * multiple


@dataclass
class BatchSizer:
    """Rays per step sized so that the *kept* (live) samples meet ``target``; the march buffer holds the samples
    those rays are expected to march times ``headroom``. Rays whose samples do not fit are dropped from the step."""

    target: int
    kept_per_ray: float = 32.0
    marched_per_ray: float = 32.0
    headroom: float = 1.15
    smoothing: float = 0.2  # weight of the previous estimate at each read-back
    min_rays: int = 64

    def n_rays(self) -> int:
        """Rays of the next step: target / kept samples per ray, rounded down to a multiple of 64, in
        [min_rays, target]."""
        n = int(self.target / max(self.kept_per_ray, 1e-3)) // 64 * 64
        return max(self.min_rays, min(n, self.target))

    def march_capacity(self, n_rays: int) -> int:
        """Marched-sample slots of a step with ``n_rays`` rays: at least the target, at most 16 times it."""
        expected = n_rays * self.marched_per_ray * self.headroom
        return min(max(round_up(expected, 1024), self.target), 16 * self.target)

    def update(self, n_rays: int, marched: float, march_fit_rays: float, kept: float) -> None:
        """Fold in one step's counters: ``marched`` samples of all its rays, ``march_fit_rays`` rays that fit the
        march buffer and ``kept`` live samples among those."""
        a = self.smoothing
        self.marched_per_ray = a * self.marched_per_ray + (1 - a) * max(marched / max(n_rays, 1), 1e-3)
        if march_fit_rays > 0:
            self.kept_per_ray = a * self.kept_per_ray + (1 - a) * max(kept / march_fit_rays, 1e-3)
