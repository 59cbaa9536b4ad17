"""Builds and loads the native extension (``kernels/``) on first use; reports why it is unavailable so callers can
fall back to the PyTorch reference.

The build uses ``torch.utils.cpp_extension.load``: the CPU launchers and the op bindings always, the CUDA launchers
too when this torch has CUDA and a CUDA toolkit is found. Objects are cached in
``$NGP_NATIVE_CACHE`` (default ``~/.cache/ngp_app``) under ``native-<hash>``, the hash covering every source and
header, the flags and the torch version, so an edit rebuilds and an unchanged tree loads in well under a second.

The build can't hang (docs/reliability.md): it runs in a child process under our own lock ``ngp-build.lock``
(``locks.FileLock``: the builder's PID and host, released by the OS when it dies), so a second process waits for
the first and then loads the same library; torch's own ``lock`` file, which an interrupted build leaves behind and
torch would wait on forever, is removed (one log line) because nobody but our lock holder can own it; a build that
takes longer than ``$NGP_NATIVE_BUILD_TIMEOUT`` seconds (default 600) is killed and the caller falls back to torch.
A complete build is marked by ``ngp-build-ok.json``; then the library loads directly, without ninja.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from .. import resources
from ..fileio import atomic_write_text
from ..locks import FileLock, describe_owner
from . import fake

log = logging.getLogger(__name__)

KERNELS_DIR = resources.kernels_dir()
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"]
# nvcc contracts a * b + c into FMAs (its default): the few products whose rounding decides a discrete outcome in the
# march use ngp::mul_rn instead (kernels/include/ngp/common.h; docs/kernels.md, "Floating point").
CUDA_CFLAGS = ["-O3", "-DNGP_WITH_CUDA", "--expt-relaxed-constexpr"]

TIMEOUT_ENV = "NGP_NATIVE_BUILD_TIMEOUT"
DEFAULT_BUILD_TIMEOUT = 600.0
OWNER_LOCK = "ngp-build.lock"  # our lock, with the builder's PID and host (torch's own ``lock`` has neither)
BUILT_MARK = "ngp-build-ok.json"  # written after a complete build
LIB_EXT = ".pyd" if sys.platform == "win32" else ".so"

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


def build_timeout() -> float:
    """Seconds a build (or waiting for another process's build) may take before we fall back to torch."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_BUILD_TIMEOUT
    except ValueError:
        value = -1.0
    if not value > 0:
        log.warning("%s=%r is not a positive number of seconds; using %g", TIMEOUT_ENV, text, DEFAULT_BUILD_TIMEOUT)
        return DEFAULT_BUILD_TIMEOUT
    return value


class BuildTimeout(RuntimeError):
    """The build (ours or another process's) took longer than :func:`build_timeout`."""


def _build() -> bool:
    """Load the cached build of the extension, building it first when needed; returns whether CUDA kernels are in
    it. A finished build is marked by ``ngp-build-ok.json``; without that mark the build runs in a child process
    under our own lock (see the module docstring)."""
    if not (KERNELS_DIR / "bindings.cpp").is_file():
        raise RuntimeError(f"kernel sources not found under {KERNELS_DIR}")
    with_cuda = _want_cuda()
    digest = source_hash(with_cuda)
    build_dir = cache_root() / f"native-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    name = f"ngp_native_{digest}"
    library = build_dir / f"{name}{LIB_EXT}"
    if _is_built(build_dir, library):
        try:
            torch.ops.load_library(str(library))
            return with_cuda
        except (OSError, RuntimeError) as exc:  # a damaged cache: build again
            log.warning("cached native build %s does not load (%s); rebuilding", library, exc)
            (build_dir / BUILT_MARK).unlink(missing_ok=True)
    cflags = CFLAGS + (["-DNGP_WITH_CUDA"] if with_cuda else [])
    kwargs = {
        "name": name,
        "sources": [str(s) for s in sources(with_cuda)],
        "extra_cflags": cflags,
        "extra_cuda_cflags": CUDA_CFLAGS if with_cuda else None,
        "extra_ldflags": ["-fopenmp"],
        "extra_include_paths": [str(KERNELS_DIR / "include")],
        "build_directory": str(build_dir),
        "is_python_module": False,
        "verbose": bool(os.environ.get("NGP_NATIVE_VERBOSE")),
    }
    timeout = build_timeout()
    deadline = time.monotonic() + timeout
    owner = FileLock(build_dir / OWNER_LOCK)
    if not owner.acquire(timeout=timeout):
        raise BuildTimeout(
            f"{describe_owner(owner.owner())} has been building the native kernels in {build_dir} for "
            f"over {timeout:g} s ({TIMEOUT_ENV})"
        )
    try:
        if not _is_built(build_dir, library):  # not built by the process we waited for
            _clear_baton(build_dir, deadline, timeout)
            _build_in_child(kwargs, build_dir, deadline, timeout)
            _mark_built(build_dir, library)
    finally:
        owner.release()
    torch.ops.load_library(str(library))
    return with_cuda


def _is_built(build_dir: Path, library: Path) -> bool:
    try:
        mark = json.loads((build_dir / BUILT_MARK).read_text())
        return library.is_file() and mark.get("library") == library.name and mark.get("size") == library.stat().st_size
    except (OSError, ValueError, AttributeError):
        return False


def _mark_built(build_dir: Path, library: Path) -> None:
    if not library.is_file():
        raise RuntimeError(f"the native build produced no {library.name}")
    atomic_write_text(build_dir / BUILT_MARK, json.dumps({"library": library.name, "size": library.stat().st_size}))


def _clear_baton(build_dir: Path, deadline: float, timeout: float) -> None:
    """Before building: wait (until ``deadline``) while a process without our lock (an older ngp) still builds
    here, then remove a leftover torch ``lock``."""
    baton = build_dir / "lock"
    while baton.exists() and _processes_in(build_dir):
        if time.monotonic() >= deadline:
            raise BuildTimeout(
                f"another process has been building the native kernels in {build_dir} for over "
                f"{timeout:g} s ({TIMEOUT_ENV})"
            )
        time.sleep(0.5)
    _remove_stale_baton(build_dir)


def _processes_in(folder: Path) -> bool:
    """Whether a process runs with ``folder`` as its working directory (ninja and the compilers of a build do).
    Linux only (/proc); elsewhere False, so a leftover lock is always removed."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    target = os.path.realpath(folder)
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == target:
                    return True
            except OSError:
                continue
    return False


def _remove_stale_baton(build_dir: Path, quiet: bool = False) -> None:
    """torch's build lock (``lock``: no owner inside, waited on forever) while we hold ours is a leftover of an
    interrupted build: remove it."""
    baton = build_dir / "lock"
    if baton.exists():
        baton.unlink(missing_ok=True)
        if not quiet:
            log.warning("removed a stale native build lock %s (left by an interrupted build)", baton)


_CHILD = "import json, sys\nfrom torch.utils import cpp_extension\ncpp_extension.load(**json.loads(sys.argv[1]))\n"


def _build_in_child(kwargs: dict[str, object], build_dir: Path, deadline: float, timeout: float) -> None:
    """Run ``cpp_extension.load`` in a child process (its own process group, output to ``build.log`` unless
    NGP_NATIVE_VERBOSE), killed with its compilers when the deadline passes or we are interrupted."""
    verbose = bool(kwargs["verbose"])
    log_path = build_dir / "build.log"
    log.info("building the native kernels in %s (once; up to %g s, %s)", build_dir, timeout, TIMEOUT_ENV)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(kwargs)],
            stdin=subprocess.DEVNULL,
            stdout=None if verbose else out,
            stderr=None if verbose else subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            _remove_stale_baton(build_dir, quiet=True)
            raise BuildTimeout(
                f"the native build took longer than {timeout:g} s ({TIMEOUT_ENV}; the next run continues it)"
            ) from None
        except BaseException:  # Ctrl-C, SIGTERM: take the compilers down too, leave no lock behind
            _kill_tree(proc)
            _remove_stale_baton(build_dir, quiet=True)
            raise
    if code != 0:
        lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        raise RuntimeError(f"{lines[-1] if lines else f'exit status {code}'} (log: {log_path})")


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def ensure_built() -> None:
    """Build/load once per process (thread-safe); raises RuntimeError with the reason when that failed."""
    with _lock:
        if not _state:
            try:
                _state["cuda"] = _build()
                fake.register()  # the ops' fake kernels (FakeTensorMode, torch.compile, opcheck)
                _state["ok"], _state["reason"] = True, ""
            except Exception as exc:  # compiler missing, compile error, load error, ...
                first = str(exc).strip().splitlines()
                _state["ok"], _state["cuda"] = False, False
                if isinstance(exc, BuildTimeout):
                    _state["reason"] = str(exc)
                else:
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
