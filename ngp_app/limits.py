"""Memory limits checked before large allocations, and out-of-memory errors recognised after the fact.

torch reports a failed CPU allocation as a plain RuntimeError ("DefaultCPUAllocator: can't allocate memory") and a
CUDA one as ``torch.OutOfMemoryError``; :func:`is_out_of_memory` tells both apart from real bugs. Before rendering,
:func:`check_render_memory` compares an estimate with the memory available, so a 100000x100000 request is a clear
error instead of a long swap storm or a crash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import NgpError

# Peak bytes per pixel of a full-frame render: rays (origins, directions, pixel coordinates and temporaries of the
# ray generation, ~80 B), chunked outputs and their concatenation (rgb, opacity, depth twice, 40 B), 8-bit image.
RENDER_BYTES_PER_PIXEL = 128


def human_bytes(n: float) -> str:
    """``1.5 GB`` style sizes for messages."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TB"


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device`` (None when unknown). CPU: MemAvailable (Linux) or the free
    physical pages; CUDA: the driver's free memory."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(dev)[0])
        except (RuntimeError, AssertionError):
            return None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: int, what: str, device: Any = "cpu", hint: str = "") -> None:
    """Raise NgpError when ``need`` bytes (an estimate) exceed what ``device`` has available."""
    have = available_memory(device)
    if have is not None and need > have:
        raise NgpError(
            f"{what} needs about {human_bytes(need)} of memory, {human_bytes(have)} are available"
            + (f": {hint}" if hint else "")
        )


def check_render_memory(width: int, height: int, device: Any = "cpu", frames: str = "rendering") -> None:
    """Refuse a ``width`` x ``height`` render that cannot fit in memory on ``device``."""
    check_memory(
        width * height * RENDER_BYTES_PER_PIXEL, f"{frames} {width}x{height}", device, "use a smaller --width/--height"
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CPU or CUDA) rather than a bug."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)
