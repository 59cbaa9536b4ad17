"""Evaluation reports the mean of per-image PSNRs as ``psnr`` and the pooled-MSE PSNR as ``psnr_pooled``."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ngp_app.data.scene import Scene
from ngp_app.train import evaluate as evaluate_module


def _two_image_scene() -> Scene:
    """Two 16x16 grey images (RGB uint8) with identity cameras."""
    pixels = torch.full((2 * 256, 3), 128, dtype=torch.uint8)
    c2w = torch.eye(4)[:3].expand(2, 3, 4).clone()
    return Scene(
        Path("two"),
        "test",
        pixels,
        torch.tensor([0, 256]),
        torch.tensor([16, 16]),
        torch.tensor([16, 16]),
        c2w,
        torch.tensor([[16.0, 16.0, 8.0, 8.0]] * 2),
        torch.zeros(2, 7),
        ["a.png", "b.png"],
    )


class _Field:
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])

    def eval(self) -> None:
        pass


def test_psnr_is_the_mean_of_per_image_psnrs() -> None:
    scene = _two_image_scene()
    grey = 128 / 255.0
    errors = iter([0.1, 0.01])  # per-image MSE 1e-2 (20 dB) and 1e-4 (40 dB)

    def fake_render(*_: Any, **__: Any) -> dict[str, torch.Tensor]:
        return {"rgb": torch.full((16, 16, 3), grey + next(errors))}

    nerf = SimpleNamespace(field=_Field(), render=fake_render)  # a model whose renders have known errors
    res = evaluate_module.evaluate(nerf, scene)  # type: ignore[arg-type]
    assert [round(p["psnr"], 4) for p in res["images"]] == [20.0, 40.0]
    assert res["psnr"] == pytest.approx(30.0, abs=1e-4)  # (20 + 40) / 2
    assert res["psnr_pooled"] == pytest.approx(-10 * math.log10((1e-2 + 1e-4) / 2), abs=1e-4)  # 22.97 dB
    assert res["psnr_pooled"] < res["psnr"] and res["n_images"] == 2
