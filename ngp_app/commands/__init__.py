"""The ``ngp`` commands, one module each: ``register(sub, options)`` adds its parser (with ``func=run``) and
``run(args) -> int`` is its body. ``cli.py`` only parses, dispatches and turns errors into one line."""

from __future__ import annotations

import importlib
from typing import Any

from . import options

# in the order ``ngp --help`` lists them; the module names (``import`` is a keyword: ``import_scene``)
COMMANDS = ("import_scene", "train", "eval", "render", "video", "mesh", "export", "make_scene", "bench", "app")


def register_commands(sub: Any) -> None:
    """Add every command's parser to the ``ngp`` sub-parsers ``sub``."""
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub, options)
