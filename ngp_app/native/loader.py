"""Builds and loads the native extension (``kernels/``) on first use; reports why it is unavailable so callers can
fall back to the PyTorch reference.

The build uses ``torch.utils.cpp_extension.load``: the CPU launchers and the op bindings always, the CUDA launchers
too when this torch has CUDA and a CUDA toolkit is found. Objects are cached in
``$NGP_NATIVE_CACHE`` (default ``~/.cache/ngp_app``) under ``native-<hash>``, the hash covering every source and
header, the flags and the torch version, so an edit rebuilds and an unchanged tree loads in well under a second.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import torch

log = logging.getLogger(__name__)

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"]
# nvcc contracts a * b + c into FMAs (its default): the few products whose rounding decides a discrete outcome in the
# march use ngp::mul_rn instead (kernels/include/ngp/common.h; docs/kernels.md, "Floating point").
CUDA_CFLAGS = ["-O3", "-DNGP_WITH_CUDA", "--expt-relaxed-constexpr"]

_lock = threading.Lock()
_state: dict[str, object] = {}  # "ok": bool, "reason": str, "cuda": bool


def _want_cuda() -> bool:
    if torch.version.cuda is None or os.environ.get("NGP_NATIVE_NO_CUDA"):
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None


def sources(with_cuda: bool) -> list[Path]:
    """Translation units of the extension."""
    files = [KERNELS_DIR / "bindings.cpp", *sorted((KERNELS_DIR / "cpu").glob("*.cpp"))]
    if with_cuda:
        files += sorted((KERNELS_DIR / "cuda").glob("*.cu"))
    return files


def source_hash(with_cuda: bool) -> str:
    """Hash of sources, headers, flags and torch version: names the build directory."""
    h = hashlib.sha256()
    files = sources(with_cuda) + sorted((KERNELS_DIR / "include").rglob("*.h"))
    for f in files:
        h.update(str(f.relative_to(KERNELS_DIR)).encode())
        h.update(f.read_bytes())
    h.update(" ".join(CFLAGS + (CUDA_CFLAGS if with_cuda else [])).encode())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("NGP_NATIVE_CACHE", Path.home() / ".cache" / "ngp_app"))


def _build() -> bool:
    """Compile (or load the cached build of) the extension; returns whether CUDA kernels are in it."""
    if not (KERNELS_DIR / "bindings.cpp").is_file():
        raise RuntimeError(f"kernel sources not found under {KERNELS_DIR}")
    from torch.utils import cpp_extension

    with_cuda = _want_cuda()
    digest = source_hash(with_cuda)
    build_dir = cache_root() / f"native-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    cflags = CFLAGS + (["-DNGP_WITH_CUDA"] if with_cuda else [])
    cpp_extension.load(
        name=f"ngp_native_{digest}",
        sources=[str(s) for s in sources(with_cuda)],
        extra_cflags=cflags,
        extra_cuda_cflags=CUDA_CFLAGS if with_cuda else None,
        extra_ldflags=["-fopenmp"],
        extra_include_paths=[str(KERNELS_DIR / "include")],
        build_directory=str(build_dir),
        is_python_module=False,
        verbose=bool(os.environ.get("NGP_NATIVE_VERBOSE")),
    )
    return with_cuda


def ensure_built() -> None:
    """Build/load once per process (thread-safe); raises RuntimeError with the reason when that failed."""
    with _lock:
        if not _state:
            try:
                _state["cuda"] = _build()
                _state["ok"], _state["reason"] = True, ""
            except Exception as exc:  # compiler missing, compile error, load error, ...
                first = str(exc).strip().splitlines()
                _state["ok"], _state["cuda"] = False, False
                _state["reason"] = f"native build failed: {type(exc).__name__}: {first[-1] if first else ''}"
                log.debug("native build failed", exc_info=True)
    if not _state["ok"]:
        raise RuntimeError(str(_state["reason"]))


def available(device: torch.device) -> tuple[bool, str]:
    """Whether native kernels can run on ``device``, and why not."""
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        return False, f"no native kernels for device type {device.type}"
    try:
        ensure_built()
    except RuntimeError as exc:
        return False, str(exc)
    if device.type == "cuda" and not _state["cuda"]:
        return False, "native extension was built without CUDA (torch without CUDA, or no CUDA toolkit found)"
    return True, ""
