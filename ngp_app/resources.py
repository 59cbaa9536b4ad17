"""Where the bundled files live: the configs, the kernel sources and the demo scene. Every module finds them here.

In the repository they are the top-level folders ``configs/``, ``kernels/`` and ``scenes/demo``. A built package
(a wheel, ``pip install .``) carries copies under ``ngp_app/_resources/``, made at build time by ``setup.py``
(``BuildPyWithResources``), so an installed ``ngp`` works from any folder. An editable install or a plain checkout
has no ``_resources`` and reads the repository's folders.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

PACKAGED = "_resources"


def root() -> Path:
    """The folder holding ``configs``, ``kernels`` and ``scenes``: the package's ``_resources`` when it was built
    with them, else the repository root above the package."""
    package = Path(str(importlib.resources.files("ngp_app")))
    packaged = package / PACKAGED
    return packaged if packaged.is_dir() else package.parent


def config_dir() -> Path:
    """The bundled network/training configs (``base.json``, ``small.json``, ``big.json``)."""
    return root() / "configs"


def kernels_dir() -> Path:
    """The native kernel sources (``bindings.cpp``, ``cpu/``, ``cuda/``, ``include/``)."""
    return root() / "kernels"


def demo_scene() -> Path:
    """The bundled procedural scene (NeRF-synthetic layout)."""
    return root() / "scenes" / "demo"
