"""Network/training configs: plain JSON files in ``configs/`` (base, small, big), in instant-ngp's spirit."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from . import resources
from .errors import ConfigError
from .schema import read_json, validate
from .schema.config import Config

CONFIG_DIR = resources.config_dir()


def available_configs() -> list[str]:
    """Names of the bundled configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path = "base", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a config by bundled name (``base``) or path, deep-merging ``overrides`` into it, and check it against the
    schema (:mod:`ngp_app.schema.config`): any bad key is a one-line :class:`ConfigError` naming the file and key."""
    path = Path(name_or_path)
    source = str(path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
        source = f"configs/{path.name}"
    if not path.is_file():
        raise ConfigError(f"config not found: {name_or_path} (bundled: {', '.join(available_configs())})")
    config = read_json(path, ConfigError, source)
    if isinstance(config, dict):
        config.setdefault("name", path.stem)
        if overrides:
            config = merge(config, overrides)
    return check_config(config, source)


def check_config(config: Any, source: str) -> dict[str, Any]:
    """``config`` itself once it satisfies the config schema, else a one-line :class:`ConfigError`."""
    validate(Config, config, source, ConfigError)
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
