"""The typed config is the config: bundled small/big are overrides of base, parents resolve, every key the code
reads is declared in the schema (and every declared key is read), and the keys that once drifted are honoured."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest

from ngp_app.config import config_dict, load_config
from ngp_app.errors import ConfigError
from ngp_app.schema.config import Config
from ngp_app.schema.core import Model
from tests.bad_inputs import ROOT, write_json

PACKAGE = ROOT / "ngp_app"
SECTIONS = {
    name: f.annotation
    for name, f in Config.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, Model)
}


def test_small_and_big_are_base_with_a_few_keys_changed() -> None:
    base = json.loads((ROOT / "configs" / "base.json").read_text())
    changes = {
        "small": {("encoding", "log2_hashmap_size"): 17, ("training", "target_batch_size_cpu"): 16384},
        "big": {
            ("encoding", "n_levels"): 16,
            ("encoding", "log2_hashmap_size"): 21,
            ("encoding", "desired_resolution"): 4096,
            ("encoding", "table_precision"): "float16",
        },
    }
    for name, keys in changes.items():
        file = json.loads((ROOT / "configs" / f"{name}.json").read_text())
        assert file["parent"] == "base.json" and len(json.dumps(file)) < 300  # an override, not a copy
        expected = json.loads(json.dumps(base))  # by hand: base with these keys set
        expected["name"] = name
        for (section, key), value in keys.items():
            expected[section][key] = value
        assert config_dict(load_config(name)) == config_dict(Config.model_validate(expected))


def test_a_user_config_names_a_bundled_parent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_json(tmp_path / "mine.json", {"parent": "base.json", "encoding": {"n_levels": 4}})
    with caplog.at_level(logging.WARNING):
        config = load_config(path)
    assert config.name == "mine" and config.encoding.n_levels == 4 and not caplog.records
    assert config.encoding.log2_hashmap_size == load_config("base").encoding.log2_hashmap_size
    # a parent next to the file wins over a bundled one of the same name
    write_json(tmp_path / "base.json", {"parent": "small.json", "name": "local", "training": {"readback_interval": 4}})
    config = load_config(path)
    assert config.training.readback_interval == 4 and config.encoding.log2_hashmap_size == 17
    assert config.name == "mine" and config.encoding.n_levels == 4


def test_bad_parents_are_one_line_errors(tmp_path: Path) -> None:
    loop = write_json(tmp_path / "a.json", {"parent": "b.json"})
    write_json(tmp_path / "b.json", {"parent": "a.json"})
    with pytest.raises(ConfigError, match=r"parent: the configs name each other in a loop"):
        load_config(loop)
    missing = write_json(tmp_path / "m.json", {"parent": "nowhere.json"})
    with pytest.raises(ConfigError, match=r"m.json: parent: nowhere.json not found"):
        load_config(missing)
    with pytest.raises(ConfigError, match=r"parent: expected the path of another config"):
        load_config(write_json(tmp_path / "n.json", {"parent": 3}))


def test_keys_that_drifted_are_declared_and_honoured(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``training.march_headroom`` was read but undeclared (a user was told it was ignored, then it was used);
    ``density_grid.update_fraction_cpu`` defaulted to 0.0625 in the schema and 0.25 in the trainer."""
    from ngp_app.data.loaders import load_scene
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    raw = config_dict(load_config("small"))
    raw["training"]["march_headroom"] = 2.0
    del raw["density_grid"]["update_fraction_cpu"]
    with caplog.at_level(logging.WARNING):
        config = load_config(write_json(tmp_path / "c.json", raw))
    assert not caplog.records  # declared: no "ignoring unknown keys"
    scene = load_scene(DEMO, "train", downscale=16)
    trainer = Trainer(scene, config, device="cpu", backend="torch")
    assert trainer.batch.headroom == 2.0
    default = Config.model_fields["density_grid"].annotation.model_fields["update_fraction_cpu"].default
    assert trainer.policy.grid_update_fraction(trainer.step_count + 1000) == default == 0.0625


# ------------------------------------------------------------------------------------------------ drift
def _is_config(node: ast.AST) -> bool:
    """An expression that names a config: ``config``, ``self.config``, ``snap.config``, ``checked``..."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "config" in name.lower()


def config_reads(source: str) -> tuple[set[tuple[str, str]], list[str]]:
    """The (section, key) pairs a module reads off configs, and every dict-style access to one (``config[...]``,
    ``config.get(...)``), which must not exist. Sections read into a local (``dg = config.density_grid``) are
    followed within the module."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):  # dg = config.density_grid; dg, tr = config.density_grid, config.training
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            targets, values = node.targets[0], node.value
            pairs = (
                zip(targets.elts, values.elts)
                if isinstance(targets, ast.Tuple) and isinstance(values, ast.Tuple)
                else [(targets, values)]
            )
            for t, v in pairs:
                if (
                    isinstance(t, ast.Name)
                    and isinstance(v, ast.Attribute)
                    and v.attr in SECTIONS
                    and _is_config(v.value)
                ):
                    aliases[t.id] = v.attr
    reads: set[tuple[str, str]] = set()
    dict_style: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner = node.value
            if isinstance(inner, ast.Attribute) and inner.attr in SECTIONS and _is_config(inner.value):
                reads.add((inner.attr, node.attr))
            elif isinstance(inner, ast.Name) and inner.id in aliases:
                reads.add((aliases[inner.id], node.attr))
        if isinstance(node, ast.Subscript) and _is_config(node.value):
            dict_style.append(ast.unparse(node))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and (
                _is_config(node.func.value) or (isinstance(node.func.value, ast.Name) and node.func.value.id in aliases)
            )
        ):
            dict_style.append(ast.unparse(node))
    return reads, dict_style


def package_reads() -> tuple[set[tuple[str, str]], dict[str, list[str]]]:
    reads: set[tuple[str, str]] = set()
    dict_style: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "schema":  # the schema itself declares, it does not read
            continue
        r, d = config_reads(path.read_text())
        reads |= r
        if d:
            dict_style[str(path.relative_to(ROOT))] = d
    return reads, dict_style


def test_the_walker_sees_reads_aliases_and_dict_access() -> None:
    reads, dict_style = config_reads(
        "dg, tr = config.density_grid, config.training\n"
        "a = dg.resolution + tr.march_headroom + self.config.optimizer.beta1 + model.encoding.table\n"
        "b = config['training']['x'] + snap.config.get('loss', {})\n"
    )
    assert reads == {("density_grid", "resolution"), ("training", "march_headroom"), ("optimizer", "beta1")}
    assert sorted(dict_style) == ["config['training']", "snap.config.get('loss', {})"]


def test_every_key_the_code_reads_is_declared_and_every_declared_key_is_read() -> None:
    reads, dict_style = package_reads()
    assert not dict_style, f"dict-style config access (use the Config's attributes): {dict_style}"
    section_reads = reads
    undeclared = sorted(f"{s}.{k}" for s, k in section_reads if k not in SECTIONS[s].model_fields)
    assert not undeclared, f"read but not in schema/config.py: {undeclared}"
    assert ("density_grid", "update_fraction_cpu") in section_reads and ("training", "march_headroom") in section_reads
    # the other way: a key a user can set that no code reads would be silently ignored; the exceptions are the
    # tiny-cuda-nn style type names that admit one value only (checked by the schema, nothing to read)
    single_choice = {
        (s, k)
        for s, model in SECTIONS.items()
        for k, f in model.model_fields.items()
        if k in ("otype", "activation", "output_activation")
    }
    unread = sorted(
        f"{s}.{k}"
        for s, model in SECTIONS.items()
        for k in model.model_fields
        if (s, k) not in section_reads and (s, k) not in single_choice
    )
    assert not unread, f"declared in schema/config.py but read nowhere: {unread}"
