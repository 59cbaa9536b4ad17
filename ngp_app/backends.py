"""Backend selection: ``torch`` (reference), ``native`` (our kernels), ``tcnn`` (tiny-cuda-nn), or ``auto``."""

from __future__ import annotations

import logging

import torch

from .errors import NgpError
from .schema.config import BACKENDS

log = logging.getLogger(__name__)


def native_available(device: torch.device) -> tuple[bool, str]:
    """Whether the native extension builds and loads for ``device``, and why not."""
    try:
        from .native import loader
    except ImportError as exc:  # pragma: no cover - the package always ships the loader
        return False, f"native loader missing: {exc}"
    return loader.available(device)


def tcnn_available(device: torch.device) -> tuple[bool, str]:
    """tiny-cuda-nn is used only on CUDA devices where ``import tinycudann`` works."""
    if device.type != "cuda":
        return False, "tinycudann needs a CUDA device"
    try:
        import tinycudann  # noqa: F401
    except Exception as exc:  # ImportError, or a CUDA/driver error raised at import
        return False, f"tinycudann not importable: {exc}"
    return True, ""


def resolve_backend(requested: str, device: torch.device) -> str:
    """Pick the backend to run: explicit requests must be usable, ``auto`` takes the fastest one that is."""
    if requested not in BACKENDS:
        raise NgpError(f"unknown backend {requested!r} (choose from {', '.join(BACKENDS)})")
    if requested == "torch":
        return "torch"
    if requested == "tcnn":
        ok, why = tcnn_available(device)
        if not ok:
            raise NgpError(f"backend tcnn is not usable: {why}")
        return "tcnn"
    if requested == "native":
        ok, why = native_available(device)
        if not ok:
            raise NgpError(f"backend native is not usable: {why}")
        return "native"
    ok, why = native_available(device)
    if ok:
        return "native"
    log.info("native kernels unavailable (%s); using the PyTorch reference backend", why)
    return "torch"


def resolve_device(requested: str | None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``None``/``auto`` (CUDA when available); anything else, or a CUDA device this
    machine lacks, is an NgpError."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(requested))
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise NgpError(f"unsupported device {requested!r} (use cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise NgpError(f"--device {requested} requested but this PyTorch build sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise NgpError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev
