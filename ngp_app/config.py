"""Network/training configs: plain JSON files in ``configs/`` (base, small, big), in instant-ngp's spirit."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from . import resources
from .errors import ConfigError

CONFIG_DIR = resources.config_dir()
REQUIRED_SECTIONS = ("optimizer", "encoding", "network", "rgb_network", "training", "density_grid")


def available_configs() -> list[str]:
    """Names of the bundled configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path = "base", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a config by bundled name (``base``) or path, deep-merging ``overrides`` into it."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ConfigError(f"config not found: {name_or_path} (bundled: {', '.join(available_configs())})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    missing = [k for k in REQUIRED_SECTIONS if k not in config]
    if missing:
        raise ConfigError(f"{path}: missing sections: {', '.join(missing)}")
    config.setdefault("name", path.stem)
    if overrides:
        config = merge(config, overrides)
    return config


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``extra`` win."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
