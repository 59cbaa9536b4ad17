"""Builds and loads the native extension; reports why it is unavailable so callers can fall back."""

from __future__ import annotations

import torch


def available(device: torch.device) -> tuple[bool, str]:
    """Whether native kernels can run on ``device`` (always False until the kernels land)."""
    return False, "native kernels are not built in this version"
