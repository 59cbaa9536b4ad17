"""A training run's output folder: ``snapshot.npz`` and ``metrics.json``, consistent after a kill at any moment,
written by one run at a time.

- **Lock**: :class:`RunFolder` holds ``.ngp-lock`` (``locks.FileLock``) while a run owns the folder; a second run
  is refused at once, naming the owner. A folder the run created is removed again when it fails before saving.
- **Consistent pair**: every save gets a ``save_id``; the snapshot carries it and a copy of its metrics, and
  ``metrics.json`` (written after the snapshot, atomically) carries it as ``snapshot_id``. A kill between the two
  renames leaves the new snapshot beside the old metrics.json: :func:`check_metrics_pair` (called by
  :func:`load_run_snapshot`, which the commands and the app load snapshots with) detects that, and
  :func:`read_run_metrics` then returns the snapshot's own copy, so readers
  always see the old or the new pair, never a mix.
- **No stale temp files**: a save first removes the ``.snapshot.npz.*.tmp`` / ``.metrics.json.*.tmp`` a killed save
  left (safe: we hold the lock).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NgpError
from ..fileio import atomic_write_text
from ..ops import Ops
from ..outputs import RUN_LOCK_NAME, ClaimedFolder, remove_stale_temps
from ..snapshot import Snapshot, load_snapshot, read_snapshot_meta, resolve_snapshot_path, save_snapshot

log = logging.getLogger(__name__)
LOCK_NAME = RUN_LOCK_NAME  # ngp import takes the same lock
METRICS_NAME = "metrics.json"
SNAPSHOT_NAME = "snapshot.npz"


class RunFolder(ClaimedFolder):
    """The ``--out`` folder of one training run: claim it (create + lock), save snapshot/metrics pairs, release."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.save_id: str | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.path / SNAPSHOT_NAME

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_NAME

    def claim(self) -> RunFolder:
        """Create the folder (remembering what we created) and lock it; NgpError when another run holds it."""
        super().claim()
        return self

    def release(self, remove_created: bool = True) -> None:
        """Unlock; a folder we created and never saved into is removed (a failed run leaves no trace)."""
        super().release(remove_created and self.save_id is None)

    def __enter__(self) -> RunFolder:
        return self.claim()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def save(
        self,
        nerf: Any,
        config: dict[str, Any],
        scene_meta: dict[str, Any],
        step: int,
        metrics: dict[str, Any],
        extra: dict[str, Any] | None = None,
        training_state: dict[str, np.ndarray] | None = None,
    ) -> Path:
        """Write a consistent snapshot + metrics.json pair (see the module docstring); returns the snapshot path."""
        for tmp in remove_stale_temps(self.path, [SNAPSHOT_NAME, METRICS_NAME]):
            log.info("removed %s, left by an interrupted save", tmp)
        save_id = uuid.uuid4().hex[:16]
        metrics = {**metrics, "snapshot_id": save_id}
        path = save_snapshot(
            self.snapshot_path,
            nerf,
            config,
            scene_meta,
            step,
            {**(extra or {}), "save_id": save_id, "metrics": metrics},
            training_state,
        )
        self.save_id = save_id
        atomic_write_text(self.metrics_path, json.dumps(metrics, indent=2))
        return path

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        """Rewrite metrics.json for the last saved snapshot (e.g. with evaluation results added)."""
        if self.save_id is None:
            raise RuntimeError("write_metrics before the first save")
        atomic_write_text(self.metrics_path, json.dumps({**metrics, "snapshot_id": self.save_id}, indent=2))
        return self.metrics_path


def check_metrics_pair(snapshot_path: str | Path, meta: dict[str, Any]) -> str | None:
    """Why metrics.json beside ``snapshot_path`` does not belong to it (a save killed between its two renames),
    or None when it does, or when there is nothing to compare (no metrics.json, a snapshot without ``save_id``)."""
    snap = Path(snapshot_path)
    metrics_path = snap.parent / METRICS_NAME
    save_id = meta.get("save_id")
    if not save_id or not metrics_path.is_file() or snap.name != SNAPSHOT_NAME:
        return None
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{metrics_path}: unreadable ({exc})"
    if not isinstance(metrics, dict) or metrics.get("snapshot_id") != save_id:
        return (
            f"{metrics_path} belongs to another save than {snap} (a run killed while saving?); "
            f"the snapshot's own metrics are used"
        )
    return None


def load_run_snapshot(path: str | Path, device: torch.device | str = "cpu", backend: Ops | str = "torch") -> Snapshot:
    """``snapshot.load_snapshot``, plus a warning when the snapshot is a run folder's and its metrics.json is from
    another save (a save killed between its two renames; the snapshot itself is complete)."""
    snap = load_snapshot(path, device=device, backend=backend)
    problem = check_metrics_pair(resolve_snapshot_path(path), snap.meta)
    if problem:
        log.warning("%s", problem)
    return snap


def read_run_metrics(folder: str | Path) -> dict[str, Any]:
    """The metrics of the snapshot in ``folder``: metrics.json when it matches the snapshot, else the copy inside
    the snapshot (a save was killed between its renames). NgpError when neither exists."""
    folder = Path(folder)
    meta = read_snapshot_meta(folder / SNAPSHOT_NAME)
    problem = check_metrics_pair(folder / SNAPSHOT_NAME, meta)
    if problem is None and (folder / METRICS_NAME).is_file():
        return json.loads((folder / METRICS_NAME).read_text(encoding="utf-8"))
    if isinstance(meta.get("metrics"), dict):
        return dict(meta["metrics"])
    raise NgpError(f"{folder}: no metrics for its snapshot")


def snapshot_bytes(trainer: Any, with_optimizer: bool) -> int:
    """Upper estimate of a snapshot's size (float32 parameters; x5 with the optimizer state: Adam's two moments, the
    table's int32 step counts and the raw weights beside their average; the occupancy grid)."""
    params = sum(p.numel() for p in trainer.model.parameters()) * 4
    grid = trainer.grid.density.numel() * 4 + trainer.grid.density.numel() // 8
    return params * (5 if with_optimizer else 1) + grid + (1 << 20)
