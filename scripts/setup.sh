#!/usr/bin/env bash
# Installs ngp-app and its dependencies into the current Python environment.
# torch: a CUDA user keeps the torch they have; with no torch we install 2.13.0 (a CPU wheel on our machines),
# because an unpinned torch pulls a multi-GB CUDA build. Works the same in a venv, a conda environment or a bare
# interpreter: everything goes into the environment of $PY (`python3` of an activated venv).
set -euo pipefail
PY="${PY:-python3}"
cd "$(dirname "$0")/.."
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==2.13.0"
  "$PY" -m pip install -q torch==2.13.0
fi
extras="test,video,app,import,export"

# installed into $PY's environment (its metadata), not merely importable from the checkout or on PATH elsewhere
if ! "$PY" -c "import importlib.metadata as m; m.distribution('ngp-app')
import pytest, hypothesis, pydantic, imageio_ffmpeg, pyglet, dearpygui, pycolmap, OpenEXR, scipy, skimage, trimesh, fast_simplification" >/dev/null 2>&1; then
  echo "[setup] installing ngp-app[$extras]"
  "$PY" -m pip install -q -e ".[$extras]"
fi
# the install check builds a wheel offline with setuptools (venvs of Python 3.12+ come without it)
if ! "$PY" -c "import setuptools" >/dev/null 2>&1; then
  echo "[setup] installing setuptools"
  "$PY" -m pip install -q "setuptools>=64"
fi
