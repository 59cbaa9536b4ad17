"""The weight average (instant-ngp's Ema): debiased as tiny-cuda-nn's, used by evaluation, rendering and snapshots,
never by training; resume restores both the average and the raw weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.snapshot import load_snapshot
from ngp_app.train.ema import WeightEMA
from ngp_app.train.trainer import Trainer

TINY = {"training": {"target_batch_size_cpu": 4096}, "encoding": {"log2_hashmap_size": 15}}


def test_average_is_the_debiased_exponential_average() -> None:
    model = nn.Linear(3, 2, bias=False)
    ema = WeightEMA(model, 0.9)
    history = []
    for t in range(5):
        with torch.no_grad():
            model.weight.copy_(torch.full((2, 3), float(t * t)))
        history.append(model.weight.detach().clone())
        ema.update(model)
        if t == 0:  # the first update copies the weights
            assert torch.equal(ema.model.weight, history[0])
    # tiny-cuda-nn's form: accumulator from zero, acc = 0.9 acc + 0.1 w, divided by 1 - 0.9^t
    acc = torch.zeros(2, 3, dtype=torch.float64)
    for w in history:
        acc = 0.9 * acc + 0.1 * w.double()
    expected = acc / (1 - 0.9**5)
    torch.testing.assert_close(ema.model.weight.double(), expected, rtol=1e-6, atol=1e-6)
    assert not ema.model.weight.requires_grad and model.weight.requires_grad
    with pytest.raises(ValueError):
        WeightEMA(model, 1.0)


@pytest.fixture(scope="module")
def scene():
    from tests.conftest import DEMO

    return load_scene(DEMO, "train", downscale=8)


def test_trainer_evaluates_the_average_and_trains_the_raw_weights(scene) -> None:
    with_ema = Trainer(scene, load_config("base", TINY), seed=2)
    without = Trainer(scene, load_config("base", {**TINY, "optimizer": {"ema_decay": 0.0}}), seed=2)
    assert without.ema is None and without.eval_model is without.model
    raw_history = []
    for _ in range(6):
        with_ema.step()
        without.step()
        raw_history.append([p.detach().clone() for p in with_ema.model.parameters()])
    # the average does not feed back into training
    for a, b in zip(with_ema.model.parameters(), without.model.parameters()):
        assert torch.equal(a, b)
    # it is the debiased average of the raw weights after each step
    decay = with_ema.ema.decay
    for i, p in enumerate(with_ema.eval_model.parameters()):
        acc = sum(decay ** (5 - t) * (1 - decay) * raw_history[t][i].double() for t in range(6))
        torch.testing.assert_close(p.double(), acc / (1 - decay**6), rtol=1e-5, atol=1e-6)
    assert not torch.equal(with_ema.eval_model.encoding.table, with_ema.model.encoding.table)
    # rendering reads the average
    cam = scene.camera(0).scaled(16, 16)
    from ngp_app.render.renderer import render_image
    from tests.support.rendering import render_camera

    img = render_camera(with_ema, cam)["rgb"]
    expected = render_image(with_ema.eval_model, with_ema.grid, with_ema.aabb, cam, with_ema.march)["rgb"]
    assert torch.equal(img, expected)


def _equal_params(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_snapshot_stores_the_average_and_resume_restores_both(scene, tmp_path: Path) -> None:
    first = Trainer(scene, load_config("base", TINY), seed=3)
    for _ in range(5):
        first.step()
    path = first.save_snapshot(tmp_path / "full", include_optimizer=True)
    snap = load_snapshot(path, backend=first.backend)  # today's loader: the model is the average
    assert _equal_params(snap.nerf.field, first.eval_model) and not _equal_params(snap.nerf.field, first.model)
    assert any(k.startswith("raw.") for k in snap.training_state)
    resumed = Trainer(scene, snap.config, backend=first.backend, seed=50)
    resumed.restore(snap)
    assert _equal_params(resumed.model, first.model) and _equal_params(resumed.eval_model, first.eval_model)
    assert resumed.ema.steps == first.ema.steps == 5
    for trainer in (first, resumed):
        trainer.generator.manual_seed(11)
        trainer.step()
    for a, b in ((first.model, resumed.model), (first.eval_model, resumed.eval_model)):
        for x, y in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)
    # without the training state (or from a snapshot older than the average) both start from the saved model
    light = load_snapshot(first.save_snapshot(tmp_path / "light"), backend=first.backend)
    assert not any(k.startswith("raw.") for k in (light.training_state or {}))
    other = Trainer(scene, light.config, backend=first.backend, seed=50)
    other.restore(light)
    assert _equal_params(other.model, light.nerf.field) and _equal_params(other.eval_model, light.nerf.field)
    assert other.ema.steps == light.step


def test_cli_snapshot_holds_the_average(tmp_path: Path) -> None:
    from ngp_app.cli import main
    from tests.conftest import DEMO

    assert (
        main(
            [
                "train",
                str(DEMO),
                "--downscale",
                "8",
                "--config",
                "small",
                "--quiet",
                "--backend",
                "torch",
                "--out",
                str(tmp_path),
                "--steps",
                "4",
                "--save-optimizer-state",
                "--eval",
            ]
        )
        == 0
    )
    snap = load_snapshot(tmp_path)
    raw = snap.training_state["raw.encoding.table"]
    assert raw.shape == tuple(snap.nerf.field.encoding.table.shape)
    assert not np.array_equal(raw, snap.nerf.field.encoding.table.detach().numpy())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_psnr"] >= metrics["test_psnr_pooled"] > 0
