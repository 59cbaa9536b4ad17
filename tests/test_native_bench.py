"""Smoke test of ``ngp bench kernels`` (slow: it times the torch reference too)."""

from __future__ import annotations

import json

import pytest
import torch

from ngp_app.native import loader


@pytest.mark.slow
def test_bench_kernels_quick_json(capsys: pytest.CaptureFixture[str]) -> None:
    ok, why = loader.available(torch.device("cpu"))
    if not ok:
        pytest.skip(f"native extension unavailable: {why}")
    from ngp_app.bench import kernels

    assert kernels.main(["--quick", "--no-train", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ops = {r["op"] for r in rows}
    assert {"encode fwd+bwd", "table adam step", "march+composite fwd+bwd"} <= ops
    assert all(r["throughput"] > 0 for r in rows)
