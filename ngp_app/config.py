"""Network/training configs: plain JSON files in ``configs/`` (base, and small/big as overrides of it through
instant-ngp's ``"parent"`` key), read into the typed :class:`~ngp_app.schema.config.Config`, the one place that
holds their defaults."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from . import resources
from .errors import ConfigError
from .schema import read_json, validate
from .schema.config import Config

CONFIG_DIR = resources.config_dir()
MAX_PARENTS = 8  # a chain of parents longer than this is a loop


def available_configs() -> list[str]:
    """Names of the bundled configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path = "base", overrides: dict[str, Any] | None = None) -> Config:
    """Load a config by bundled name (``base``) or path, deep-merging ``overrides`` into it, and check it against the
    schema (:mod:`ngp_app.schema.config`): any bad key is a one-line :class:`ConfigError` naming the file and key.
    A config with ``"parent": "base.json"`` (next to it, or a bundled config) is that parent with its own keys
    merged in."""
    path, source = _config_path(name_or_path)
    raw = _read_with_parents(path, source)
    if isinstance(raw, dict):
        raw.setdefault("name", path.stem)
        if overrides:
            raw = merge(raw, overrides)
    return check_config(raw, source)


def _config_path(name_or_path: str | Path) -> tuple[Path, str]:
    path = Path(name_or_path)
    source = str(path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
        source = f"configs/{path.name}"
    if not path.is_file():
        raise ConfigError(f"config not found: {name_or_path} (bundled: {', '.join(available_configs())})")
    return path, source


def _read_with_parents(path: Path, source: str) -> Any:
    """The JSON of ``path`` with its chain of ``parent`` files merged under it (nearest wins)."""
    chain: list[dict[str, Any]] = []
    seen: set[Path] = set()
    raw = read_json(path, ConfigError, source)
    while isinstance(raw, dict) and "parent" in raw:
        parent = raw.pop("parent")
        if not isinstance(parent, str) or not parent:
            raise ConfigError(f'{source}: parent: expected the path of another config (e.g. "base.json")')
        chain.append(raw)
        seen.add(path.resolve())
        path = _parent_path(path, parent)
        if path.resolve() in seen or len(chain) > MAX_PARENTS:
            raise ConfigError(f"{source}: parent: the configs name each other in a loop ({path.name})")
        if not path.is_file():
            raise ConfigError(f"{source}: parent: {parent} not found (next to {Path(source).name})")
        source = str(path)
        raw = read_json(path, ConfigError, source)
    for child in reversed(chain):
        if not isinstance(raw, dict):
            break
        raw = merge({k: v for k, v in raw.items() if k != "name"}, child)  # a parent's name is not the child's
    return raw


def _parent_path(child: Path, parent: str) -> Path:
    """A parent named relative to its child's folder, else (``"base.json"``) a bundled config of that name."""
    p = Path(parent)
    if p.is_absolute() or (child.parent / p).is_file():
        return p if p.is_absolute() else child.parent / p
    return CONFIG_DIR / p.name if (CONFIG_DIR / p.name).is_file() else child.parent / p


def check_config(config: Any, source: str) -> Config:
    """``config`` (parsed JSON) as a :class:`Config` once it satisfies the config schema, else a one-line
    :class:`ConfigError`."""
    return validate(Config, config, source, ConfigError)


def with_overrides(config: Config, overrides: dict[str, Any] | None, source: str = "config") -> Config:
    """``config`` with ``overrides`` (a nested dict, as JSON) merged in, checked again."""
    if not overrides:
        return config
    return check_config(merge(config_dict(config), overrides), source)


def config_dict(config: Config) -> dict[str, Any]:
    """``config`` as plain JSON data (what a snapshot stores; keys the schema does not know are kept)."""
    return config.model_dump(mode="json")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``extra`` win."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
