"""Build hook: put the configs, kernel sources and demo scene into the package at build time.

The metadata is in pyproject.toml. The repository keeps ``configs/``, ``kernels/`` and ``scenes/demo`` at its top
level; a built package (wheel, ``pip install .``) gets copies under ``ngp_app/_resources/``, where
``ngp_app/resources.py`` finds them. Editable installs read the repository's folders and get no copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("configs", "kernels", "scenes/demo")


class BuildPyWithResources(build_py):
    """build_py plus the copy of RESOURCES into ``<build_lib>/ngp_app/_resources``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ngp_app" / "_resources"
        for name in RESOURCES:
            source = ROOT / name
            if not source.is_dir():
                raise FileNotFoundError(f"{source}: missing; it is packaged into ngp_app/_resources")
            shutil.copytree(
                source, target / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
            )


setup(cmdclass={"build_py": BuildPyWithResources})
