"""Fuzzing the files ngp-app reads: hypothesis mutates a valid config, transforms.json and snapshot metadata
(replaced, deleted and added keys, hostile values), and every mutation must either load and work, or fail with one
line of the right error type; never another exception. A few mutations also run through ``python -m ngp_app``
(exit 0, or exit 2 with one ``ngp: error:`` line and nothing written). Bounded to about a minute (derandomized, so
CI runs are reproducible; ``NGP_FUZZ_SCALE=20`` runs 20 times as many random examples)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ngp_app.errors import ConfigError, NgpError, SceneError, SnapshotError
from tests.bad_inputs import (
    DELETE,
    Inputs,
    error_line,
    make_inputs,
    rewrite_snapshot,
    run_ngp,
    set_path,
    snapshot_meta,
    write_json,
    written,
)

SCALE = float(os.environ.get("NGP_FUZZ_SCALE", "1"))  # e.g. 20 for a longer, randomised local run
FUZZ = settings(
    deadline=None,
    derandomize=SCALE == 1,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from([0, -1, 1, 2, 3, 8, 16, 64.5, 1e30, 1e300, -1e-9, 1e-9, 0.5, 3.14159, "8", "wide", "L1", [], {}]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def key_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside ``doc`` (dict keys and list indices), the root excluded."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        out.append(prefix + (key,))
        out += key_paths(value, prefix + (key,))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` after one to three mutations: a value replaced, a key deleted, or a key added."""
    for _ in range(draw(st.integers(1, 3))):
        paths = key_paths(doc)
        if not paths:
            return doc
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if kind == "delete" and isinstance(parent, dict):
            doc = set_path(doc, path, DELETE)
        elif kind == "add" and isinstance(parent, dict):
            doc = set_path(doc, path[:-1] + (draw(st.text(max_size=6)),), draw(JSON))
        else:
            doc = set_path(doc, path, draw(JSON))
    return doc


def one_line(exc: NgpError) -> None:
    """A rejection: one line (``--hypothesis-show-statistics`` counts them by kind)."""
    event(f"rejected: {type(exc).__name__}")
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("valid"))


# ------------------------------------------------------------------------------------------------ in-process
@settings(FUZZ, max_examples=examples(500))
@given(data=st.data())
def test_config_mutations(inputs: Inputs, data: st.DataObject) -> None:
    """An accepted config builds the field (shapes only) and an Adam optimiser torch accepts."""
    from ngp_app.compute import get_ops
    from ngp_app.config import check_config
    from ngp_app.model.field import NGPField

    config = data.draw(mutated(inputs.config))
    try:
        checked = check_config(config, "fuzz.json")
    except ConfigError as exc:
        one_line(exc)
        return
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    with torch.device("meta"):  # shapes only: an accepted config may ask for gigabytes
        NGPField(checked, aabb, get_ops("torch"))
    opt = checked.optimizer
    torch.optim.Adam(
        [torch.zeros(1, requires_grad=True)],
        lr=opt.learning_rate,
        betas=(opt.beta1, opt.beta2),
        eps=opt.epsilon,
        weight_decay=opt.l2_reg,
    )


@settings(FUZZ, max_examples=examples(150))
@given(data=st.data())
def test_transforms_mutations(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """An accepted transforms.json loads, and its rays pass (or fail) the trainer's box check with one line."""
    from ngp_app.data.loaders import load_scene
    from ngp_app.train.scene_checks import check_rays_hit_box

    doc = data.draw(mutated(inputs.transforms))
    scene_dir = tmp_path_factory.mktemp("fuzz-scene")
    write_json(scene_dir / "transforms.json", doc)
    try:
        scene = load_scene(scene_dir, "all")
        check_rays_hit_box(scene)
    except SceneError as exc:
        one_line(exc)


@settings(FUZZ, max_examples=examples(60))
@given(data=st.data())
def test_snapshot_meta_mutations(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """An accepted snapshot renders from a training camera and gives a video orbit."""
    from ngp_app.export.camera_path import default_orbit
    from ngp_app.render.cameras_cli import camera_from_spec
    from ngp_app.snapshot import load_snapshot

    meta = data.draw(mutated(snapshot_meta(inputs.snapshot)))
    path = rewrite_snapshot(inputs.snapshot, tmp_path_factory.mktemp("fuzz-snap") / "s.npz", meta)
    try:
        snap = load_snapshot(path)
        camera = camera_from_spec("train:0", snap.scene, 4, 4, None)
    except (SnapshotError, NgpError) as exc:
        one_line(exc)
        return
    snap.nerf.render(camera, (1.0, 1.0, 1.0))
    assert len(default_orbit(snap.scene, 2)) == 2


# ------------------------------------------------------------------------------------------------ subprocesses
def check_cli(res: Any, case_dir: Path) -> None:
    """Exit 0, or exit 2 with exactly one ``ngp: error:`` line and nothing written."""
    if res.returncode == 0:
        return
    error_line(res.stderr)
    assert res.returncode == 2, res.stderr
    assert written(case_dir) == []


@settings(FUZZ, max_examples=examples(3))
@given(data=st.data())
def test_cli_transforms_mutations(
    inputs: Inputs, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    doc = data.draw(mutated(inputs.transforms))
    d = tmp_path_factory.mktemp("fuzz-cli-scene")
    write_json(d / "scene" / "transforms.json", doc)
    res = run_ngp(
        [
            "train",
            str(d / "scene"),
            "--out",
            str(d / "out"),
            "--steps",
            "1",
            "--config",
            str(inputs.config_path),
            "--quiet",
            "--device",
            "cpu",
            "--backend",
            "torch",
        ],
        d,
    )
    check_cli(res, d)


@settings(FUZZ, max_examples=examples(3))
@given(data=st.data())
def test_cli_snapshot_mutations(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("fuzz-cli-snap")
    meta = data.draw(mutated(snapshot_meta(inputs.snapshot)))
    snap = rewrite_snapshot(inputs.snapshot, d / "s.npz", meta)
    res = run_ngp(
        [
            "render",
            str(snap),
            "--out",
            str(d / "out.png"),
            "--width",
            "4",
            "--height",
            "4",
            "--quiet",
            "--device",
            "cpu",
            "--backend",
            "torch",
        ],
        d,
    )
    check_cli(res, d)


def test_mutations_change_the_documents(inputs: Inputs) -> None:
    """The mutation strategy reaches nested keys (not just the top level)."""
    assert ("frames", 0, "transform_matrix", 1, 2) in key_paths(inputs.transforms)
    assert ("encoding", "n_levels") in key_paths(inputs.config)
    assert json.dumps(inputs.config) and np.isfinite(inputs.transforms["camera_angle_x"])
