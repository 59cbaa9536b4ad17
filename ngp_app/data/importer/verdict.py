"""A plain verdict on a reconstruction (issue 18 item 7): reprojection error alone validates nothing, so after SfM the
import checks what makes poses trustworthy and says what to try when they are not.

Checks (thresholds in the constants below, in ``docs/import.md``): the share of frames registered; the number of
points; the share of points seen by at least 3 views (short tracks: weak matches); a flat scene (the points lie
near one plane: a floor of repeated tiles, a wall, a table top, where SfM can find other poses that fit as well);
the cameras' baseline against their distance to the points (cameras that barely move constrain no depth); and
focal lengths that differ in x and y (real pixels are square: the intrinsics, and so the poses, are unfit; what
SfM on frames of a flat floor gives, with sub-pixel reprojection error); and, for frames in time order (a video, or
photos whose neighbours in name order barely move), jumps of the camera between neighbouring frames: SfM folded the
path onto itself (repeated floor tiles, a symmetric object), as in both reconstructions of the beer capture
(docs/import.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_REGISTERED = 0.9  # share of the frames given to SfM
MIN_POINTS = 200
MIN_LONG_TRACKS = 0.3  # share of points seen by >= 3 views
FLAT = 0.03  # the points' thickness (smallest spread) over their second-largest spread, below: a flat scene
MIN_BASELINE = 0.05  # the cameras' spread over their median distance to the points, below: too little motion
MAX_ASPECT = 0.05  # |fl_x / fl_y - 1| above: non-square pixels, which no phone or camera has: intrinsics unfit
ORDERED_STEP = 20.0  # degrees: neighbouring frames (name order) turning less than this in the median are in time order
JUMP = 60.0  # degrees: a turn between neighbouring frames of an ordered set above this and JUMP_RATIO x the median
JUMP_RATIO = 5.0
MIN_PATH = 8  # frames: fewer, and the path is not checked


def turns(c2w: np.ndarray) -> np.ndarray:
    """Rotation angles in degrees (k - 1,) between neighbouring camera-to-world matrices (k, 3|4, 4)."""
    r = np.asarray(c2w, dtype=np.float64)[:, :3, :3]
    rel = np.einsum("nji,njk->nik", r[:-1], r[1:])
    chord = np.linalg.norm(rel - np.eye(3), axis=(1, 2)) / (2.0 * np.sqrt(2.0))  # 2 sqrt(2) sin(angle / 2)
    return np.degrees(2.0 * np.arcsin(np.clip(chord, 0.0, 1.0)))


def path_jumps(c2w: np.ndarray) -> tuple[list[int], float]:
    """Where an ordered camera path (k, 3|4, 4), in time or name order, jumps: the indices i whose turn to frame
    i + 1 exceeds JUMP degrees and JUMP_RATIO times the median turn, and that median. No jumps when the frames do
    not look ordered (median turn above ORDERED_STEP, or more than a quarter of the steps jumping) or are few."""
    if len(c2w) < MIN_PATH:
        return [], 0.0
    t = turns(c2w)
    median = float(np.median(t))
    jumps = [int(i) for i in np.nonzero((t > JUMP) & (t > JUMP_RATIO * median))[0]]
    if median > ORDERED_STEP or len(jumps) > len(t) / 4:
        return [], median
    return jumps, median


@dataclass(frozen=True)
class Verdict:
    """``verdict``: "good" or "doubtful"; ``problems``: one sentence each, with what to try; ``checks``: the figures."""

    verdict: str
    problems: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The keys the import's summary gets: ``verdict``, ``verdict_problems``, ``checks``."""
        return {"verdict": self.verdict, "verdict_problems": list(self.problems), "checks": dict(self.checks)}

    def line(self) -> str:
        """One line for a status bar: the verdict and its first problem."""
        if not self.problems:
            return "poses look good"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"poses doubtful: {self.problems[0]}{more}"


def spreads(points: np.ndarray) -> np.ndarray:
    """Standard deviations of points (n, 3) along their principal axes, largest first (3,), from the central 96 %
    of the points by distance to their median (stray matches do not count)."""
    centre = np.median(points, axis=0)
    dist = np.linalg.norm(points - centre, axis=1)
    core = points[dist <= np.percentile(dist, 96)] if len(points) > 25 else points
    cov = np.cov((core - core.mean(0)).T)
    return np.sqrt(np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None))


def assess(
    n_input: int,
    centres: np.ndarray,
    points: np.ndarray,
    track_lengths: np.ndarray | None = None,
    focals: list[tuple[float, float]] | None = None,
    c2w: np.ndarray | None = None,
    names: list[str] | None = None,
) -> Verdict:
    """Judge a reconstruction: ``n_input`` frames given to SfM, ``centres`` (k, 3) registered camera centres,
    ``points`` (n, 3) sparse points (any one frame of reference), ``track_lengths`` (n,) views per point (None or
    all 0: a model without tracks, not checked), ``focals``: each camera's (fl_x, fl_y) in pixels, ``c2w`` (k, 4, 4)
    the registered cameras in time or name order (``names``: theirs) for the path check."""
    problems: list[str] = []
    checks: dict[str, Any] = {}
    if c2w is not None and len(c2w) >= MIN_PATH:
        jumps, median = path_jumps(c2w)
        t = turns(c2w)
        checks["median_turn_deg"] = round(median, 2)
        checks["path_jumps"] = jumps
        if jumps:
            label = (lambda i: f"{names[i]}/{names[i + 1]}") if names else (lambda i: f"{i}/{i + 1}")
            said = ", ".join(f"{label(i)} ({t[i]:.0f}°)" for i in jumps[:3]) + (" ..." if len(jumps) > 3 else "")
            problems.append(
                f"the camera path jumps between neighbouring frames ({said}) where they otherwise turn "
                f"{median:.0f}° apart: SfM folded the path onto itself (repeated textures, a symmetric object); "
                "import the photos or video again with ngp import (it matches neighbours only when a path folds), "
                "or film with more of the surroundings in view"
            )
    if focals:
        aspect = max(abs(fx / fy - 1.0) for fx, fy in focals)
        checks["focal_aspect"] = round(aspect, 4)
        if aspect > MAX_ASPECT:
            problems.append(
                f"the focal lengths found differ by {aspect:.0%} between x and y, which no camera has: the intrinsics "
                "and so the poses are poorly constrained, as in a flat or barely moving capture (try --camera-model "
                "SIMPLE_RADIAL, film objects that stand off the floor, move around more)"
            )
    k, n = len(centres), len(points)
    share = k / max(n_input, 1)
    checks["registered_share"] = round(share, 4)
    if share < MIN_REGISTERED:
        problems.append(
            f"only {k} of {n_input} frames registered: the others may show too little overlap or texture "
            "(try --matcher exhaustive, more frames, or a slower sweep)"
        )
    checks["points"] = n
    if n < MIN_POINTS:
        problems.append(f"only {n} sparse points: too few matches to trust the poses (more texture, more frames)")
    if track_lengths is not None and len(track_lengths) and np.any(track_lengths > 0):
        long_share = float(np.mean(track_lengths >= 3))
        checks["points_seen_by_3_or_more"] = round(long_share, 4)
        checks["median_track_length"] = float(np.median(track_lengths))
        if long_share < MIN_LONG_TRACKS:
            problems.append(
                f"only {long_share:.0%} of the points are seen by 3 or more frames: weak matches "
                "(more overlap between frames)"
            )
    if n >= 10:
        s = spreads(points)
        flatness = float(s[2] / max(s[1], 1e-12))
        checks["flatness"] = round(flatness, 4)
        if flatness < FLAT:
            problems.append(
                f"the points lie near one plane (thickness {flatness:.1%} of their extent): a flat scene such as a "
                "tiled floor lets SfM find other poses that fit as well; film objects that stand off the plane, or "
                "check that the result trains well on held-out frames (ngp train --eval)"
            )
        if k >= 2:
            distance = float(np.median(np.linalg.norm(centres[:, None] - np.median(points, 0)[None], axis=-1)))
            baseline = float(np.linalg.norm(centres.std(0)) / max(distance, 1e-12))
            checks["baseline"] = round(baseline, 4)
            if baseline < MIN_BASELINE:
                problems.append(
                    f"the cameras barely move (spread {baseline:.1%} of their distance to the scene): depth is "
                    "poorly constrained (walk around the object rather than turning on the spot)"
                )
    return Verdict("good" if not problems else "doubtful", problems, checks)


def verdict_line(summary: dict[str, Any]) -> str:
    """The verdict of an import's summary as one line ("" for a summary without one, e.g. an older import)."""
    if "verdict" not in summary:
        return ""
    return Verdict(summary["verdict"], list(summary.get("verdict_problems", []))).line()
