"""Snapshots: the whole trained state in one ``.npz`` file without pickle, written atomically.

Layout: arrays ``param/<name>`` (model weights; with per-image appearance on, ``param/appearance.exposure`` and
``param/appearance.latents``, one row per training camera), ``grid/density`` and ``grid/bitfield`` (occupancy), and
``meta`` (UTF-8 JSON bytes: format tag, version, config, scene metadata, step, backend). Loading checks the
tag and version, so another file or another version is a clear error rather than garbage.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .compute import as_ops
from .config import config_dict
from .errors import SnapshotError
from .fileio import atomic_write_bytes, atomic_write_text, default_file_mode  # noqa: F401 - re-exported
from .model.field import NGPField
from .nerf_model import NerfModel, SceneBox, build_model
from .npz_reader import CorruptNpz, NpzReader
from .ops import Ops
from .render.occupancy import n_cascades_for
from .schema import validate
from .schema.config import Config
from .schema.core import parse_json
from .schema.snapshot import SnapshotMeta

FORMAT_TAG = "ngp-app-snapshot"
FORMAT_VERSION = 1
SNAPSHOT_NAME = "snapshot.npz"


@dataclass
class Snapshot:
    """A loaded snapshot: the ready-to-render model, plus config, scene metadata, step and training state."""

    nerf: NerfModel
    config: Config
    scene: dict[str, Any]
    step: int
    meta: dict[str, Any]
    training_state: dict[str, np.ndarray] | None = None  # optimiser moments, pose corrections (when saved)


def save_snapshot(
    path: str | Path,
    nerf: NerfModel,
    config: Config,
    scene_meta: dict[str, Any],
    step: int,
    extra: dict[str, Any] | None = None,
    training_state: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``nerf`` (its field, grid and box) and the rest of the trained state to ``path`` (a ``.npz``; a folder
    gets ``snapshot.npz`` inside). ``training_state`` (``Trainer.training_state``: optimiser moments, pose
    corrections) lets training resume exactly."""
    path = snapshot_target(path)
    model, grid = nerf.field, nerf.grid
    meta = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "config": config_dict(config),
        "scene": with_scene_paths(scene_meta, path),
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


def with_scene_paths(scene_meta: dict[str, Any], snapshot_file: Path) -> dict[str, Any]:
    """The scene metadata with ``path`` made absolute and ``path_from_snapshot`` (relative to the snapshot's folder)
    added, so the scene is found from any working directory, and after moving the two together."""
    if not scene_meta.get("path"):
        return scene_meta
    scene = os.path.abspath(scene_meta["path"])
    out = dict(scene_meta, path=scene)
    try:
        out["path_from_snapshot"] = os.path.relpath(scene, os.path.abspath(snapshot_file.parent))
    except ValueError:  # another drive (Windows): only the absolute path
        pass
    return out


def snapshot_scene_path(scene_meta: dict[str, Any], snapshot_file: str | Path) -> Path | None:
    """Where a snapshot's scene is on disk: its absolute ``path``, else ``path_from_snapshot`` from the snapshot's
    folder; None when neither exists (snapshots from before ``path_from_snapshot`` only have ``path``)."""
    found = [Path(scene_meta["path"])] if scene_meta.get("path") else []
    if scene_meta.get("path_from_snapshot"):
        found.append(Path(snapshot_file).parent / scene_meta["path_from_snapshot"])
    return next((p for p in found if p.exists()), None)


def snapshot_target(path: str | Path) -> Path:
    """The file a snapshot saved to ``path`` goes to: ``path`` itself, or ``snapshot.npz`` inside a folder (an
    existing one, or a name without an extension)."""
    p = Path(path)
    return p / SNAPSHOT_NAME if p.is_dir() or not p.suffix else p


def resolve_snapshot_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / SNAPSHOT_NAME
    if not p.is_file():
        raise SnapshotError(f"{p}: snapshot not found")
    return p


def read_snapshot_meta(path: str | Path) -> dict[str, Any]:
    """Only the metadata of a snapshot, checked against its schema (cheap; used to tell snapshots from scenes)."""
    p = resolve_snapshot_path(path)
    with _open(p) as npz:
        return _meta(npz, p)[0]


MAX_META_BYTES = 256 << 20  # the metadata holds every training camera: ~0.5 kB each


def _open(p: Path) -> NpzReader:
    try:
        return NpzReader(p)
    except CorruptNpz as exc:
        raise SnapshotError(f"{p}: not a readable snapshot ({exc})") from None


def _meta(npz: NpzReader, p: Path) -> tuple[dict[str, Any], Config]:
    """The metadata JSON and its config: format tag and version first, then the schema
    (:mod:`ngp_app.schema.snapshot`)."""
    if "meta" not in npz.names:
        raise SnapshotError(f"{p}: not an ngp-app snapshot (no metadata)")
    try:
        raw = npz.read("meta", dtype=np.uint8, max_bytes=MAX_META_BYTES)
        text = raw.tobytes().decode("utf-8")
    except (CorruptNpz, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{p}: corrupt snapshot metadata ({exc})") from None
    meta = parse_json(text, f"{p} (metadata)", SnapshotError)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise SnapshotError(f"{p}: not an ngp-app snapshot")
    if meta.get("version") != FORMAT_VERSION:
        raise SnapshotError(
            f"{p}: snapshot format version {meta.get('version')} is not supported (this is version {FORMAT_VERSION})"
        )
    checked = validate(SnapshotMeta, meta, f"{p} (metadata)", SnapshotError)
    return meta, checked.config


def appearance_images(config: Config, meta: dict[str, Any]) -> int:
    """How many per-image looks a snapshot holds: one per training camera when its config has appearance on (the
    trainer stores true or false; "auto" only comes from snapshots written before appearance existed: none)."""
    return len(meta["scene"]["c2w"]) if config.appearance.enabled is True else 0


def _check_entries(
    npz: NpzReader, meta: dict[str, Any], config: Config, aabb: torch.Tensor, ops: Ops, n_images: int
) -> int:
    """Check every entry's declared shape against what the metadata implies, before anything is allocated. Returns
    the size in bytes of the largest parameter (the bound for training-state entries)."""
    with torch.device("meta"):  # shapes only, no memory
        field = NGPField(config, aabb, ops, n_images)
        expected = {f"param/{k}": tuple(v.shape) for k, v in field.state_dict().items() if k != "aabb"}
    n_cells = (n_cascades_for(meta["aabb_scale"]), meta["grid_resolution"] ** 3)
    expected["grid/density"] = n_cells
    expected["grid/bitfield"] = (n_cells[0], n_cells[1] // 8)
    present = {n for n in npz.names if n.startswith(("param/", "grid/"))}
    missing, unexpected = sorted(set(expected) - present), sorted(present - set(expected))
    if missing or unexpected:
        raise CorruptNpz(f"entries {', '.join(missing or unexpected)} {'missing' if missing else 'not expected'}")
    for name, shape in expected.items():
        entry = npz.header(name)
        if entry.shape != shape:
            raise CorruptNpz(f"entry {name} has shape {entry.shape}, the metadata needs {shape}")
    return max(npz.header(n).nbytes for n in expected if n.startswith("param/"))


def load_snapshot(path: str | Path, device: torch.device | str = "cpu", backend: Ops | str = "torch") -> Snapshot:
    """Rebuild model and grid from a snapshot, running on ``backend`` (its :class:`Ops` or name); any
    inconsistency is a :class:`SnapshotError`. Entries are checked against the metadata before anything is
    allocated and read straight into the model (no second copy)."""
    ops = as_ops(backend, device)
    p = resolve_snapshot_path(path)
    with _open(p) as npz:
        meta, config = _meta(npz, p)
        try:
            aabb = torch.tensor(meta["aabb"], dtype=torch.float32)
            n_images = appearance_images(config, meta)
            max_entry = _check_entries(npz, meta, config, aabb, ops, n_images)
            box = SceneBox(aabb, meta["aabb_scale"])
            nerf = build_model(config, box, ops, "cpu", meta["grid_resolution"], n_images)
            model, grid = nerf.field, nerf.grid
            with torch.no_grad():
                for name, tensor in model.state_dict().items():
                    if name != "aabb":
                        npz.read(f"param/{name}", dtype=np.float32, out=tensor.numpy())
            npz.read("grid/density", dtype=np.float32, out=grid.density.numpy())
            packed = torch.from_numpy(npz.read("grid/bitfield", dtype=np.uint8))
            bits = ((packed[..., None] >> torch.arange(8, dtype=torch.uint8)) & 1).bool().reshape(grid.density.shape)
            grid.load_state_dict({"density": grid.density, "occupied": bits})
            training = {
                n[len("train/") :]: npz.read(n, max_bytes=max_entry) for n in npz.names if n.startswith("train/")
            }
        except CorruptNpz as exc:
            raise SnapshotError(f"{p}: corrupt snapshot: {exc}") from None
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise SnapshotError(
                f"{p}: corrupt snapshot ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from None
    nerf.to(device)
    return Snapshot(nerf, config, meta["scene"], int(meta["step"]), meta, training or None)
