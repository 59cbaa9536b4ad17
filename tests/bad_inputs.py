"""Shared pieces of the bad-input tests: a tiny valid scene, config and snapshot to mutate, running ``python -m
ngp_app`` in subprocesses, and the three rules every bad input must satisfy (exit code 2, exactly one stderr line
``ngp: error: ...`` and nothing else but log lines, nothing written)."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scenes" / "demo"
TINY_CONFIG = {"encoding": {"log2_hashmap_size": 12}, "training": {"target_batch_size_cpu": 1024}}
IMAGE_SIDE = 20


@dataclass
class Inputs:
    """Valid inputs the cases start from (made once per test session)."""

    root: Path
    scene: Path  # a transforms.json scene of 4 small images
    transforms: dict[str, Any]  # its transforms.json, with absolute image paths
    config: dict[str, Any]  # configs/small.json with a tiny hash table
    config_path: Path
    snapshot: Path  # an untrained snapshot of the scene with that config


def make_inputs(root: Path) -> Inputs:
    """Build the valid scene, config and snapshot under ``root``."""
    import imageio.v3 as iio

    from ngp_app.config import load_config
    from ngp_app.data.images import resize_image
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import save_snapshot
    from ngp_app.train.trainer import Trainer

    src = json.loads((DEMO / "transforms_train.json").read_text())
    scene = root / "scene"
    (scene / "images").mkdir(parents=True)
    frames = []
    for i, frame in enumerate(src["frames"][:4]):
        img = resize_image(np.asarray(iio.imread(DEMO / (frame["file_path"] + ".png"))), IMAGE_SIDE, IMAGE_SIDE)
        path = scene / "images" / f"{i:03d}.png"
        iio.imwrite(path, img)
        frames.append({"file_path": str(path), "transform_matrix": frame["transform_matrix"]})
    transforms = {"camera_angle_x": src["camera_angle_x"], "w": IMAGE_SIDE, "h": IMAGE_SIDE, "aabb_scale": 1,
                  "frames": frames}
    (scene / "transforms.json").write_text(json.dumps(transforms))
    config = load_config("small", TINY_CONFIG)
    config_path = root / "tiny.json"
    config_path.write_text(json.dumps(config))
    trainer = Trainer(load_scene(scene, "all"), config, backend="torch")
    snapshot = save_snapshot(root / "snap", trainer.model, trainer.grid, config, trainer.scene_metadata(), 0)
    return Inputs(root, scene, transforms, config, config_path, snapshot)


# ------------------------------------------------------------------------------------------------ mutations
def set_path(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` replaced (or deleted when ``value`` is DELETE)."""
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


DELETE = object()


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def write_npz(path: Path, arrays: dict[str, np.ndarray], lies: dict[str, tuple[int, ...]] | None = None,
              zeros: dict[str, tuple[tuple[int, ...], str]] | None = None) -> Path:
    """An ``.npz`` (deflated) of ``arrays``, where the header of an entry named in ``lies`` claims another shape than
    its data, and entries named in ``zeros`` hold (shape, dtype) zeros streamed without allocating them."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def header(f: Any, shape: tuple[int, ...], dtype: Any) -> None:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                 "fortran_order": False, "shape": tuple(shape)})

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=1) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                header(f, (lies or {}).get(name, arr.shape), arr.dtype)
                f.write(np.ascontiguousarray(arr).tobytes())
        for name, (shape, dtype) in (zeros or {}).items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                header(f, shape, dtype)
                left, chunk = math.prod(shape) * np.dtype(dtype).itemsize, bytes(16 << 20)
                while left > 0:
                    f.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
    return path


def rewrite_snapshot(src: Path, dst: Path, meta: Any = None, lies: dict[str, tuple[int, ...]] | None = None,
                     zeros: dict[str, tuple[tuple[int, ...], str]] | None = None) -> Path:
    """A copy of snapshot ``src`` with its metadata replaced by ``meta`` (JSON) and entries changed (``write_npz``)."""
    with np.load(src) as npz:
        entries = {k: npz[k] for k in npz.files}
    if meta is not None:
        entries["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    for name in zeros or {}:
        entries.pop(name, None)
    return write_npz(dst, entries, lies, zeros)


def snapshot_meta(path: Path) -> dict[str, Any]:
    with np.load(path) as npz:
        return json.loads(bytes(npz["meta"]).decode())


# ------------------------------------------------------------------------------------------------ running
def run_ngp(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "ngp_app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def error_line(stderr: str) -> str:
    """The three rules on stderr: no traceback, exactly one ``ngp: error:`` line, it is the last, and every other
    line is a log line of ours (``[ngp] ...``). Returns that error line."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ngp: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert all(line.startswith("[ngp] ") for line in lines[:-1]), stderr
    return errors[0]


def written(case_dir: Path) -> list[str]:
    """Files a failed command left under ``case_dir/out*`` (hidden lock or temp files of an output folder aside)."""
    found = []
    for out in case_dir.glob("out*"):
        paths = [out] if out.is_file() else list(out.rglob("*"))
        found += [str(p) for p in paths if p.is_file() and not p.name.startswith(".")]
    return found


@dataclass
class Case:
    """One bad input: ``build(case_dir, inputs)`` writes its files and returns the ``ngp`` arguments (outputs go to
    ``case_dir/out*``); the error line must contain ``needle``."""

    id: str
    build: Callable[[Path, Inputs], list[str]]
    needle: str
