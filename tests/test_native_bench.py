"""``ngp bench kernels --quick --json``: one JSON object whose rows cover every op, with ratios to the torch row."""

from __future__ import annotations

import json

import pytest
import torch

from ngp_app.native import loader


def test_bench_kernels_quick_json(capsys: pytest.CaptureFixture[str]) -> None:
    ok, why = loader.available(torch.device("cpu"))
    if not ok:
        pytest.skip(f"native extension unavailable: {why}")
    from ngp_app.bench import kernels

    assert kernels.main(["--quick", "--no-train", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "cpu" and result["threads"] >= 1
    rows = result["rows"]
    ops = {r["op"] for r in rows}
    assert {"encode fwd+bwd", "table adam step", "march+composite fwd+bwd"} <= ops
    assert all(r["throughput"] > 0 for r in rows)
    backends = {(r["op"], r["backend"]) for r in rows}
    assert ("encode fwd+bwd", "native-fp16") in backends and ("encode fwd+bwd", "torch") in backends
    for r in rows:  # the ratio is against the torch row of the same op
        torch_row = next(t for t in rows if t["op"] == r["op"] and t["backend"] == "torch")
        assert abs(r["speedup"] - torch_row["seconds"] / r["seconds"]) < 1e-9
