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
import tempfile
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

    from ngp_app.config import config_dict, load_config
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
    transforms = {
        "camera_angle_x": src["camera_angle_x"],
        "w": IMAGE_SIDE,
        "h": IMAGE_SIDE,
        "aabb_scale": 1,
        "frames": frames,
    }
    (scene / "transforms.json").write_text(json.dumps(transforms))
    typed = load_config("small", TINY_CONFIG)
    config = config_dict(typed)  # plain JSON, for the mutations
    config_path = root / "tiny.json"
    config_path.write_text(json.dumps(config))
    trainer = Trainer(load_scene(scene, "all"), typed, backend="torch")
    snapshot = save_snapshot(root / "snap", trainer.nerf, typed, trainer.scene_metadata(), 0)
    return Inputs(root, scene, transforms, config, config_path, snapshot)


def llff_rows(transforms: dict[str, Any], side: int, near: float = 2.0, far: float = 6.0) -> np.ndarray:
    """LLFF ``poses_bounds.npy`` rows (n, 17) of a transforms.json's frames (square images of ``side``): rotation
    columns [down, right, back] = [-up, right, back] of the OpenGL camera, then [H, W, focal], near and far."""
    focal = 0.5 * side / math.tan(0.5 * transforms["camera_angle_x"])
    rows = []
    for frame in transforms["frames"]:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)[:3]
        pose = np.stack([-m[:, 1], m[:, 0], m[:, 2], m[:, 3], [side, side, focal]], axis=1)  # (3, 5)
        rows.append(np.concatenate([pose.ravel(), [near, far]]))
    return np.asarray(rows)


def write_llff(root: Path, inputs: Inputs, rows: np.ndarray | None = None) -> Path:
    """An LLFF scene folder of the valid scene's images (``images/``) and ``poses_bounds.npy`` (``rows``, default
    ``llff_rows`` of its transforms)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(inputs.transforms["frames"]):
        (root / "images" / f"{i:03d}.png").write_bytes(Path(frame["file_path"]).read_bytes())
    np.save(root / "poses_bounds.npy", llff_rows(inputs.transforms, IMAGE_SIDE) if rows is None else rows)
    return root


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


def write_npz(
    path: Path,
    arrays: dict[str, np.ndarray],
    lies: dict[str, tuple[int, ...]] | None = None,
    zeros: dict[str, tuple[tuple[int, ...], str]] | None = None,
) -> Path:
    """An ``.npz`` (deflated) of ``arrays``, where the header of an entry named in ``lies`` claims another shape than
    its data, and entries named in ``zeros`` hold (shape, dtype) zeros streamed without allocating them."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def header(f: Any, shape: tuple[int, ...], dtype: Any) -> None:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
        )

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


def rewrite_snapshot(
    src: Path,
    dst: Path,
    meta: Any = None,
    lies: dict[str, tuple[int, ...]] | None = None,
    zeros: dict[str, tuple[tuple[int, ...], str]] | None = None,
) -> Path:
    """A copy of snapshot ``src`` with its metadata replaced by ``meta`` (JSON) and entries changed (``write_npz``)."""
    with np.load(src) as npz:
        entries = {k: npz[k] for k in npz.files}
    if meta is not None:
        entries["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    for name in zeros or {}:
        entries.pop(name, None)
    return write_npz(dst, entries, lies, zeros)


def break_deflate(path: Path, name: str) -> Path:
    """Make the deflate stream of entry ``name`` of the zip at ``path`` invalid (its first block type becomes the
    reserved one): reading it raises zlib.error, not a CRC error."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
    data = bytearray(path.read_bytes())
    at = info.header_offset
    start = (
        at + 30 + int.from_bytes(data[at + 26 : at + 28], "little") + int.from_bytes(data[at + 28 : at + 30], "little")
    )
    data[start] = 0x07  # BFINAL 1, BTYPE 11
    path.write_bytes(bytes(data))
    return path


def snapshot_meta(path: Path) -> dict[str, Any]:
    with np.load(path) as npz:
        return json.loads(bytes(npz["meta"]).decode())


# ------------------------------------------------------------------------------------------------ running
def run_ngp(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# The driver of ``run_ngp_many``: it imports ngp_app (and torch) once, then forks one child per command line. A
# child is a real process (its own exit status, stderr and cwd) that runs what ``python -m ngp_app`` runs, without
# paying the ~1.7 s import of torch again. Nothing in the parent starts threads, so forking it is safe.
_FORK_DRIVER = r"""
import json, os, sys
import torch  # noqa: F401  (imported once, before any fork)
import ngp_app.cli, ngp_app.commands.train, ngp_app.data.loaders, ngp_app.snapshot  # noqa: F401
from ngp_app.cli import main
jobs, parallel = json.load(sys.stdin), int(sys.argv[1])
running, codes = {}, {}
def reap():
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
for i, job in enumerate(jobs):
    while len(running) >= parallel:
        reap()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = [sys.executable, *job["argv"]]
            code = main(job["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback; traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    running[pid] = i
while running:
    reap()
json.dump(codes, sys.stdout)
"""


def run_ngp_many(jobs: list[tuple[list[str], Path]], timeout: float = 600) -> list[subprocess.CompletedProcess]:
    """Run ``ngp`` once per ``(args, cwd)`` as separate processes, forked from one driver that imported ngp_app and
    torch once (``cpu_count`` at a time). Each result holds the child's exit status, stdout and stderr."""
    if not hasattr(os, "fork"):  # Windows: one interpreter per command
        return [run_ngp(args, cwd, timeout) for args, cwd in jobs]
    with tempfile.TemporaryDirectory(prefix="ngp-fork-") as tmp:
        specs = [
            {"argv": list(args), "cwd": str(cwd), "stdout": f"{tmp}/{i}.out", "stderr": f"{tmp}/{i}.err"}
            for i, (args, cwd) in enumerate(jobs)
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        driver = subprocess.run(
            [sys.executable, "-c", _FORK_DRIVER, str(max(2, os.cpu_count() or 2))],
            input=json.dumps(specs),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
        )
        assert driver.returncode == 0, driver.stderr
        codes = {int(k): v for k, v in json.loads(driver.stdout.strip().splitlines()[-1]).items()}
        return [
            subprocess.CompletedProcess(
                [sys.executable, "-m", "ngp_app", *spec["argv"]],
                codes[i],
                Path(spec["stdout"]).read_text(),
                Path(spec["stderr"]).read_text(),
            )
            for i, spec in enumerate(specs)
        ]


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
