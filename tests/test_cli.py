"""The ``ngp`` command line end to end on a tiny scene, and one-line errors with non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from ngp_app.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngp_app", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_train_eval_render(tmp_path: Path, demo_scene: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    res = run_cli(
        "--threads",
        "2",
        "train",
        str(demo_scene),
        "--out",
        str(out),
        "--steps",
        "20",
        "--downscale",
        "8",
        "--config",
        "small",
        "--quiet",
        "--device",
        "cpu",
        "--backend",
        "torch",
    )
    assert res.returncode == 0, res.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("steps", "seconds", "samples_per_second", "backend", "device"):
        assert key in metrics
    assert metrics["steps"] == 20 and metrics["backend"] == "torch" and metrics["device"] == "cpu"
    assert (out / "snapshot.npz").is_file()

    res = run_cli(
        "eval",
        str(out / "snapshot.npz"),
        str(demo_scene),
        "--downscale",
        "8",
        "--quiet",
        "--save-images",
        str(tmp_path / "views"),
        "--background",
        "black",
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["n_images"] == 20 and 0 < result["psnr"] < 60 and -1 <= result["ssim"] <= 1
    assert len(list((tmp_path / "views").glob("*.png"))) == 20

    # without a scene, eval uses the snapshot's own (stored as an absolute path); gone, it says so in one line
    assert main(["eval", str(out), "--downscale", "8", "--quiet", "--background", "black"]) == 0
    own = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert own["psnr"] == pytest.approx(result["psnr"], abs=1e-6) and own["n_images"] == 20
    from tests.bad_inputs import rewrite_snapshot, snapshot_meta

    meta = snapshot_meta(out / "snapshot.npz")
    meta["scene"] = {**meta["scene"], "path": str(tmp_path / "gone"), "path_from_snapshot": "../gone"}
    moved = rewrite_snapshot(out / "snapshot.npz", tmp_path / "moved" / "snapshot.npz", meta)
    assert main(["eval", str(moved), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ngp: error:") and "is not on disk" in err[-1] and "ngp eval SNAPSHOT SCENE" in err[-1]

    png = tmp_path / "r.png"
    res = run_cli(
        "render",
        str(out),
        "--width",
        "32",
        "--height",
        "24",
        "--camera",
        "orbit:30,20,1.5",
        "--out",
        str(png),
        "--alpha",
    )
    assert res.returncode == 0, res.stderr
    assert iio.imread(png).shape == (24, 32, 4)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "{tmp}/nowhere", "--out", "{tmp}/o", "--steps", "1"], "no such file"),
        (["train", "{tmp}", "--out", "{tmp}/o", "--steps", "1"], "not a scene"),
        (["eval", "{tmp}/snap.npz", "{demo}"], "snapshot"),
        (["render", "{tmp}/snap.npz", "--out", "{tmp}/x.png"], "snapshot"),
        (["train", "{demo}", "--out", "{tmp}/o", "--steps", "1", "--config", "nope"], "config not found"),
        (["train", "{demo}", "--out", "{tmp}/o", "--steps", "1", "--backend", "warp"], "unknown backend"),
    ],
)
def test_errors_are_one_line_and_nonzero(
    tmp_path: Path, demo_scene: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    (tmp_path / "snap.npz").write_bytes(b"garbage")
    argv = [a.format(tmp=tmp_path, demo=demo_scene) for a in args]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err and err[-1].startswith("ngp: error:") and needle in err[-1]
    assert "Traceback" not in "\n".join(err)
