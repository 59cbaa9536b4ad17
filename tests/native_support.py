"""What the native-kernel test modules share: the skip when the extension can't build, and the device parameters
(CPU always; CUDA marked ``cuda``, skipped without a GPU and a CUDA build)."""

from __future__ import annotations

import pytest
import torch

from ngp_app.native import loader


def require_native() -> None:
    """Skip the calling test module when the native extension does not build here."""
    ok, why = loader.available(torch.device("cpu"))
    if not ok:
        pytest.skip(f"native extension unavailable: {why}", allow_module_level=True)


DEVICES = [pytest.param("cpu")] + [pytest.param("cuda", marks=pytest.mark.cuda)]


def device(name: str) -> torch.device:
    """The torch device of a ``DEVICES`` parameter; skips CUDA where it can't run."""
    if name == "cuda" and not (torch.cuda.is_available() and loader.available(torch.device("cuda"))[0]):
        pytest.skip("needs a CUDA device and a CUDA build of the native extension")
    return torch.device(name)
