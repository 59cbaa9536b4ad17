"""What the app has open: a scene (with its trainer in the session's runner) or a view-only snapshot, and the facts
the collaborators read from it (training cameras, sparse points, the generation that bumps on every swap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .rendering import RenderSource


def _no_cameras() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((0, 3, 4)), np.zeros((0, 4)), np.zeros((0, 2))


def _no_points() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 3)), np.zeros((0, 3), np.uint8)


@dataclass
class SceneState:
    """The open scene, owned by the session (changed only on the UI thread); collaborators read it."""

    scene: Any = None  # data.scene.Scene with training images, or None (nothing open, or a view-only snapshot)
    meta: dict[str, Any] = field(default_factory=dict)  # the scene's metadata (a snapshot's copy when view-only)
    snapshot_source: RenderSource | None = None  # a view-only snapshot's model (no trainer to ask)
    snapshot_path: Path | None = None
    snapshot_step: int = 0  # step of a view-only snapshot
    train_cams: tuple[np.ndarray, np.ndarray, np.ndarray] = field(default_factory=_no_cameras)  # c2w, intr, sizes
    sparse_points: tuple[np.ndarray, np.ndarray] = field(default_factory=_no_points)  # (n, 3) ngp space, uint8 rgb
    points_said: str = ""  # "N SfM points, x % outside the box..." for a scene with sparse points, else ""
    import_verdict: str = ""  # "import: poses look good" / "import: poses doubtful: ..." for an imported scene
    generation: int = 0  # bumps whenever the scene/model is swapped
    identity: str | None = None  # absolute path of the open scene (keyframes belong to it)

    def adopt(self, meta: dict[str, Any]) -> bool:
        """Derive the training cameras and sparse points from new metadata; returns whether it is another scene."""
        import os

        from .importing import import_verdict, points_said, scene_points

        self.meta = meta
        self.train_cams = (
            np.asarray(meta.get("c2w", []), dtype=np.float64).reshape(-1, 3, 4),
            np.asarray(meta.get("intrinsics", []), dtype=np.float64).reshape(-1, 4),
            np.asarray(meta.get("sizes", []), dtype=np.float64).reshape(-1, 2),
        )
        self.sparse_points = scene_points(meta)  # (ngp points, colours) of an imported scene, for the points mode
        self.points_said = points_said(self.sparse_points[0], float(meta.get("aabb_scale", 1.0)))
        self.import_verdict = import_verdict(meta)  # what the import thought of its poses ("" if not imported)
        identity = os.path.abspath(meta["path"]) if meta.get("path") else None
        changed, self.identity = identity != self.identity, identity
        return changed
