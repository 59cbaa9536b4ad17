"""``ngp bench step`` on a small config and frame (the real one: base config, 1920x1080)."""

from __future__ import annotations

import json

import pytest
import torch

from ngp_app.bench import step as bench
from ngp_app.native import loader


def test_bench_step_json(capsys, demo_scene) -> None:
    if not loader.available(torch.device("cpu"))[0]:
        pytest.skip("native kernels unavailable")
    args = [
        str(demo_scene),
        "--json",
        "--device",
        "cpu",
        "--backend",
        "native",
        "--config",
        "small",
        "--downscale",
        "8",
        "--warmup",
        "33",
        "--steps",
        "4",
        "--frame-size",
        "48x27",
    ]
    assert bench.main(args) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    s, f = r["step"], r["frame"]
    assert r["device"] == "cpu" and r["backend"] == "native" and r["warmup_steps"] == 33
    assert s["ms"] > 0 and s["rays"] >= 64 and 0 < s["kept_samples"] <= r["target_samples"]
    assert s["marched_samples"] >= s["kept_samples"] and s["ops"] > 10
    # steps 37 and 39 neither read back nor update the grid (its warm-up updates it every 2nd step there)
    assert s["host_syncs_non_logging_step"] == 0
    assert s["host_syncs"] >= 0 and "kernels" not in s  # kernel counts are CUDA-only
    assert f["width"] == 48 and f["ms"] > 0 and f["ops"] > 0


def test_bench_step_is_a_cli_command() -> None:
    from ngp_app.cli import build_parser

    args = build_parser().parse_args(["bench", "step", "--frame-size", "0x0", "--json"])
    assert args.func is bench._from_args and args.frame_size == (0, 0)
