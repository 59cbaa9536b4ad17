"""``ngp bench render`` on a tiny output size (the real one is 1920x1080)."""

from __future__ import annotations

import json

from ngp_app.bench import render as bench


def test_bench_render_json(capsys):
    assert bench.main(["--json", "--devices", "cpu", "--train-steps", "2", "--width", "32", "--height", "18"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (r,) = out["results"]
    assert r["device"] == "cpu" and r["train_steps"] == 2
    assert r["full"]["ms_per_frame"] > 0 and r["dynamic"]["ms_per_frame"] > 0
    assert 0 < r["dynamic"]["scale"] <= 1 and r["dynamic"]["render_width"] <= 32
    f = r["frame"]
    assert f["width"] == r["dynamic"]["render_width"] and f["reads"] == f["passes"] + 1 and f["rays"] > 0
