"""Bad command-line input: exit status 2, exactly one stderr line ``ngp: error: ...``, no traceback, nothing written.
Plus the last-resort handler (an unexpected exception: one ``ngp: internal error:`` line, a log file, exit 1).

Cases run in-process through ``ngp_app.cli.main`` (a subprocess costs seconds here); two run as real processes to
check what a shell sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ngp_app import limits, outputs
from ngp_app.cli import main

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = not torch.cuda.is_available()
NOTES = "my notes, not to be overwritten\n"


@pytest.fixture(scope="module")
def tiny_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained snapshot of the demo scene with a small table (enough to load, render and export)."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import save_snapshot
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    trainer = Trainer(scene, load_config("small", {"encoding": {"log2_hashmap_size": 12}}), backend="torch")
    out = tmp_path_factory.mktemp("errors-snap")
    return save_snapshot(out / "snapshot.npz", trainer.nerf, trainer.config, scene.metadata(), 0)


def listing(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))
    }


def expect_one_line_error(code: int, err: str, needle: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("ngp: error:") and needle in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


CASES = [
    # argument values
    ("device-garbage", ["render", "{snap}", "--out", "{tmp}/r.png", "--device", "garbage"], "cpu, cuda or cuda:N"),
    ("device-cuda-abc", ["render", "{snap}", "--out", "{tmp}/r.png", "--device", "cuda:abc"], "cuda:abc"),
    pytest.param(
        "device-cuda-missing",
        ["render", "{snap}", "--out", "{tmp}/r.png", "--device", "cuda"],
        "no CUDA device",
        marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA present"),
        id="device-cuda-missing",
    ),
    ("threads-negative", ["--threads", "-1", "render", "{snap}", "--out", "{tmp}/r.png"], "--threads"),
    ("seed-huge", ["train", "{demo}", "--out", "{tmp}/o", "--seed", "99999999999999999999999"], "--seed"),
    ("steps-zero", ["train", "{demo}", "--out", "{tmp}/o", "--steps", "0"], "--steps"),
    ("aabb-scale-not-power", ["train", "{demo}", "--out", "{tmp}/o", "--aabb-scale", "3"], "--aabb-scale"),
    ("aabb-scale-huge", ["train", "{demo}", "--out", "{tmp}/o", "--aabb-scale", "256"], "--aabb-scale"),
    ("seconds-nan", ["train", "{demo}", "--out", "{tmp}/o", "--seconds", "nan"], "--seconds"),
    ("checkpoint-negative", ["train", "{demo}", "--out", "{tmp}/o", "--checkpoint-every", "-5"], "--checkpoint-every"),
    ("render-huge", ["render", "{snap}", "--width", "100000", "--height", "100000", "--out", "{tmp}/r.png"], "--width"),
    ("render-extension", ["render", "{snap}", "--out", "{tmp}/r.xyz"], "unsupported image format '.xyz'"),
    ("render-alpha-jpeg", ["render", "{snap}", "--out", "{tmp}/r.jpg", "--alpha"], "no alpha channel"),
    ("render-fov", ["render", "{snap}", "--out", "{tmp}/r.png", "--fov", "180"], "--fov"),
    ("video-fps-gif", ["video", "{snap}", "--out", "{tmp}/v.gif", "--fps", "1e-9"], "--fps"),
    ("video-extension", ["video", "{snap}", "--out", "{tmp}/v.avi"], "unsupported video format"),
    ("mesh-threshold-nan", ["mesh", "{snap}", "--out", "{tmp}/m.ply", "--threshold", "nan"], "--threshold"),
    ("bench-minutes-comma", ["bench", "train", "--minutes", ","], "--minutes"),
    ("bench-minutes-negative", ["bench", "train", "--minutes", "-1"], "--minutes"),
    ("bench-minutes-nan", ["bench", "train", "--minutes", "nan"], "--minutes"),
    pytest.param(
        "bench-kernels-cuda",
        ["bench", "kernels", "--device", "cuda"],
        "no CUDA device",
        marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA present"),
        id="bench-kernels-cuda",
    ),
    ("bench-render-width", ["bench", "render", "--width", "0"], "--width"),
    ("bench-render-devices", ["bench", "render", "--devices", "tpu"], "--devices"),
    ("bench-render-corrupt", ["bench", "render", "--snapshot", "{tmp}/garbage.npz", "--devices", "cpu"], "garbage.npz"),
    ("app-size", ["app", "--size", "abc"], "--size"),
    ("app-missing-path", ["app", "{tmp}/nonexistent", "--exit-after", "5"], "no such file"),
    # argparse's own usage errors
    ("unknown-command", ["frobnicate"], "invalid choice"),
    ("missing-argument", ["render", "{snap}"], "--out"),
    ("unknown-option", ["render", "{snap}", "--out", "{tmp}/r.png", "--colour", "red"], "unrecognized arguments"),
    # outputs checked before any work
    ("train-out-is-file", ["train", "{demo}", "--out", "{tmp}/notes.txt", "--steps", "1"], "not a folder"),
    ("train-out-npz", ["train", "{demo}", "--out", "{tmp}/x/model.npz", "--steps", "1"], "names a folder"),
    ("train-out-under-file", ["train", "{demo}", "--out", "{tmp}/notes.txt/run", "--steps", "1"], "is a file"),
    ("train-out-unwritable", ["train", "{demo}", "--out", "/proc/ngp-run", "--steps", "1"], "/proc/ngp-run"),
    ("train-bad-scene-after-out", ["train", "{tmp}/nowhere", "--out", "{tmp}/new/run", "--steps", "1"], "nowhere"),
    ("eval-save-images-file", ["eval", "{snap}", "{demo}", "--save-images", "{tmp}/notes.txt"], "not a folder"),
    ("render-out-folder", ["render", "{snap}", "--out", "{tmp}/sub.png"], "is a folder"),
    ("render-out-under-file", ["render", "{snap}", "--out", "{tmp}/notes.txt/r.png"], "is a file"),
    ("mesh-out-under-file", ["mesh", "{snap}", "--out", "{tmp}/notes.txt/m.ply"], "is a file"),
    ("video-out-unwritable", ["video", "{snap}", "--out", "/proc/ngp-video.gif"], "/proc/ngp-video.gif"),
    ("make-scene-out-file", ["make-scene", "{tmp}/notes.txt"], "not a folder"),
]


@pytest.mark.parametrize("name,args,needle", [c if hasattr(c, "marks") else pytest.param(*c, id=c[0]) for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
    tmp_path: Path,
    demo_scene: Path,
    tiny_snapshot: Path,
    capsys: pytest.CaptureFixture,
    name: str,
    args: list[str],
    needle: str,
) -> None:
    (tmp_path / "notes.txt").write_text(NOTES)
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    (tmp_path / "sub.png").mkdir()
    before = listing(tmp_path)
    code = main([a.format(tmp=tmp_path, demo=demo_scene, snap=tiny_snapshot) for a in args])
    expect_one_line_error(code, capsys.readouterr().err, needle)
    assert listing(tmp_path) == before  # notes.txt intact, no folder or file created
    assert not Path("/proc/ngp-run").exists()


def test_out_of_memory_estimate_refuses_before_rendering(
    tmp_path: Path, tiny_snapshot: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 64 << 20)
    code = main(["render", str(tiny_snapshot), "--width", "4096", "--height", "4096", "--out", str(tmp_path / "r.png")])
    line = expect_one_line_error(code, capsys.readouterr().err, "needs about 2.0 GB of memory")
    assert "64.0 MB are available" in line and not (tmp_path / "r.png").exists()


def test_full_disk_names_the_path(
    tmp_path: Path, tiny_snapshot: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "free_space", lambda folder: 1 << 20)
    out = tmp_path / "r.png"
    code = main(["render", str(tiny_snapshot), "--width", "2048", "--height", "2048", "--out", str(out)])
    line = expect_one_line_error(code, capsys.readouterr().err, str(out))
    assert "not enough free space" in line and "1.0 MB free" in line


def test_torch_cpu_out_of_memory_is_one_line(
    tmp_path: Path, tiny_snapshot: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ngp_app.render.renderer as renderer

    def fail(*a: object, **k: object) -> None:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory: you "
            "tried to allocate 40000000000 bytes."
        )

    monkeypatch.setattr(renderer, "march_frame", fail)  # under render_image and render_rgba alike
    code = main(
        [
            "render",
            str(tiny_snapshot),
            "--width",
            "8",
            "--height",
            "8",
            "--out",
            str(tmp_path / "r.png"),
            "--backend",
            "torch",
        ]
    )
    expect_one_line_error(code, capsys.readouterr().err, "out of memory")


# ---------------------------------------------------------------------------------------------- internal errors
def test_internal_error_is_one_line_with_a_log(
    tmp_path: Path, tiny_snapshot: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ngp_app.render.renderer as renderer

    def bug(*a: object, **k: object) -> None:
        raise ZeroDivisionError("injected fault\nsecond line")

    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(renderer, "march_frame", bug)
    argv = [
        "render",
        str(tiny_snapshot),
        "--width",
        "8",
        "--height",
        "8",
        "--out",
        str(tmp_path / "r.png"),
        "--backend",
        "torch",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    logs = list((tmp_path / "logs").glob("error-*.log"))
    assert len(logs) == 1
    assert err[0] == f"ngp: internal error: ZeroDivisionError: injected fault (details: {logs[0]})"
    text = logs[0].read_text()
    assert "Traceback" in text and "injected fault" in text and "def bug" not in text and "in bug" in text

    assert main(["-v", *argv]) == 1  # -v: the traceback too, then the same line
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith(
        "ngp: internal error:"
    )


def test_report_internal_error_for_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ngp_app.crash import KEEP_LOGS, report_internal_error

    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path))
    try:
        {}["missing"]
    except KeyError as exc:
        line = report_internal_error(exc, "app: loading a scene")
    assert line.startswith("ngp: internal error: KeyError: 'missing' (details: ") and line.endswith(".log)")
    assert "app: loading a scene" in Path(line.split("details: ")[1][:-1]).read_text()
    for i in range(KEEP_LOGS + 5):
        (tmp_path / f"error-old-{i:03d}.log").write_text("x")
    report_internal_error(ValueError("again"))
    assert len(list(tmp_path.glob("error-*.log"))) == KEEP_LOGS


def test_unwritable_log_dir_still_gives_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ngp_app.crash import report_internal_error

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NGP_LOG_DIR", str(tmp_path / "file" / "logs"))
    line = report_internal_error(RuntimeError("boom"))
    assert line.startswith("ngp: internal error: RuntimeError: boom (details: no log written")


# ---------------------------------------------------------------------------------------------- real processes
@pytest.mark.parametrize(
    "args,needle",
    [
        (["render", "x.npz", "--width", "100000", "--out", "r.png"], "--width"),
        (["app", "/nonexistent", "--exit-after", "5"], "no such file"),
    ],
)
def test_processes_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "ngp_app", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    expect_one_line_error(res.returncode, res.stderr, needle)
    assert list(tmp_path.iterdir()) == []


def test_train_full_disk_fails_before_training(
    tmp_path: Path, demo_scene: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ngp_app.train.trainer as trainer_module

    monkeypatch.setattr(outputs, "free_space", lambda folder: 1 << 20)
    monkeypatch.setattr(trainer_module.Trainer, "train", lambda *a, **k: pytest.fail("trained on a full disk"))
    out = tmp_path / "run"
    code = main(
        [
            "train",
            str(demo_scene),
            "--out",
            str(out),
            "--steps",
            "1",
            "--downscale",
            "8",
            "--config",
            "small",
            "--backend",
            "torch",
            "--quiet",
        ]
    )
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[ngp] ")]
    assert code == 2 and len(err) == 1, err  # after the scene loaded (the model's size is known): its log aside
    assert err[0].startswith(f"ngp: error: {out}: not enough free space for the snapshot (1.0 MB free, about ")
    assert not out.exists()
