"""Snapshots: the whole trained state in one ``.npz`` file without pickle, written atomically.

Layout: arrays ``param/<name>`` (model weights), ``grid/density`` and ``grid/bitfield`` (occupancy), and
``meta`` (UTF-8 JSON bytes: format tag, version, config, scene metadata, step, backend). Loading checks the
tag and version, so another file or another version is a clear error rather than garbage.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .compute import Ops, as_ops
from .errors import SnapshotError
from .fileio import atomic_write_bytes, atomic_write_text, default_file_mode  # noqa: F401 - re-exported
from .model.field import NGPField
from .render.occupancy import OccupancyGrid
from .render.raymarch import MarchParams

log = logging.getLogger(__name__)
FORMAT_TAG = "ngp-app-snapshot"
FORMAT_VERSION = 1
SNAPSHOT_NAME = "snapshot.npz"


@dataclass
class Snapshot:
    """A loaded snapshot: ready-to-render model and grid plus metadata."""

    model: NGPField
    grid: OccupancyGrid
    march: MarchParams
    config: dict[str, Any]
    scene: dict[str, Any]
    step: int
    meta: dict[str, Any]
    training_state: dict[str, np.ndarray] | None = None  # optimiser moments, pose corrections (when saved)


def save_snapshot(
    path: str | Path,
    model: NGPField,
    grid: OccupancyGrid,
    config: dict[str, Any],
    scene_meta: dict[str, Any],
    step: int,
    extra: dict[str, Any] | None = None,
    training_state: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the trained state to ``path`` (a ``.npz``; a folder gets ``snapshot.npz`` inside). ``training_state``
    (``Trainer.training_state``: optimiser moments, pose corrections) lets training resume exactly."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / SNAPSHOT_NAME
    meta = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "config": config,
        "scene": scene_meta,
        "step": int(step),
        "aabb": model.aabb.cpu().tolist(),
        "aabb_scale": grid.aabb_scale,
        "grid_resolution": grid.resolution,
        **(extra or {}),
    }
    arrays: dict[str, np.ndarray] = {
        f"param/{k}": v.detach().cpu().float().numpy() for k, v in model.state_dict().items() if k != "aabb"
    }
    arrays["grid/density"] = grid.density.cpu().numpy()
    arrays["grid/bitfield"] = grid.packed_bitfield().cpu().numpy()
    for name, value in (training_state or {}).items():
        arrays[f"train/{name}"] = np.asarray(value)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def resolve_snapshot_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / SNAPSHOT_NAME
    if not p.is_file():
        raise SnapshotError(f"{p}: snapshot not found")
    return p


def read_snapshot_meta(path: str | Path) -> dict[str, Any]:
    """Only the metadata of a snapshot (cheap; used to tell snapshots from scenes)."""
    p = resolve_snapshot_path(path)
    arrays = _open(p)
    return _meta(arrays, p)


def _open(p: Path) -> Any:
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SnapshotError(f"{p}: not a readable snapshot ({exc})") from None


def _meta(arrays: Any, p: Path) -> dict[str, Any]:
    try:
        meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
    except KeyError:
        raise SnapshotError(f"{p}: not an ngp-app snapshot (no metadata)") from None
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SnapshotError(f"{p}: corrupt snapshot metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise SnapshotError(f"{p}: not an ngp-app snapshot")
    if meta.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"{p}: snapshot format version {meta.get('version')} is not supported (this is version {FORMAT_VERSION})")
    return meta


def load_snapshot(path: str | Path, device: torch.device | str = "cpu", backend: Ops | str = "torch") -> Snapshot:
    """Rebuild model and grid from a snapshot, running on ``backend`` (its :class:`Ops` or name); any
    inconsistency is a :class:`SnapshotError`."""
    ops = as_ops(backend, device)
    p = resolve_snapshot_path(path)
    arrays = _open(p)
    meta = _meta(arrays, p)
    try:
        aabb = torch.tensor(meta["aabb"], dtype=torch.float32)
        model = NGPField(meta["config"], aabb, ops=ops)
        state = {k[len("param/") :]: torch.from_numpy(np.array(arrays[k])) for k in arrays.files if k.startswith("param/")}
        state["aabb"] = aabb
        model.load_state_dict(state, strict=True)
        grid = OccupancyGrid(meta["aabb_scale"], meta["grid_resolution"], device="cpu", ops=ops)
        density = torch.from_numpy(np.array(arrays["grid/density"]))
        packed = torch.from_numpy(np.array(arrays["grid/bitfield"]))
        bits = ((packed[..., None] >> torch.arange(8, dtype=torch.uint8)) & 1).bool().reshape(density.shape)
        grid.load_state_dict({"density": density, "occupied": bits})
        march = MarchParams.for_grid(grid, meta["config"]["training"].get("max_steps_per_ray", 1024))
        training = {k[len("train/") :]: np.array(arrays[k]) for k in arrays.files if k.startswith("train/")}
    except SnapshotError:
        raise
    except (KeyError, ValueError, RuntimeError, TypeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SnapshotError(f"{p}: corrupt snapshot ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    _warn_mismatched_metrics(p, meta)
    model.to(device)
    grid.to(device)
    return Snapshot(model, grid, march, meta["config"], meta.get("scene", {}), int(meta.get("step", 0)), meta,
                    training or None)


def _warn_mismatched_metrics(path: Path, meta: dict[str, Any]) -> None:
    """A run folder whose metrics.json is from another save than its snapshot (a save killed between its two
    renames) is reported once; the snapshot itself is complete."""
    from .train.run_files import check_metrics_pair

    problem = check_metrics_pair(path, meta)
    if problem:
        log.warning("%s", problem)
