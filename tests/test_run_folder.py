"""Training never loses work: the --out lock, checkpoints, SIGINT/SIGTERM, the snapshot/metrics pair after kills at
any moment of a save, and --eval failures that keep the snapshot."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ngp_app.cli import main
from ngp_app.locks import FileLock
from ngp_app.snapshot import load_snapshot
from ngp_app.train.run_files import LOCK_NAME, RunFolder, check_metrics_pair, load_run_snapshot, read_run_metrics

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small config with a 2^12 table, 1024-sample batches and a 32^3 grid: steps take milliseconds."""
    from ngp_app.config import config_dict, load_config

    config = config_dict(load_config("small"))
    config["name"] = "tiny"
    config["encoding"]["log2_hashmap_size"] = 12
    config["training"]["target_batch_size_cpu"] = 1024
    config["density_grid"]["resolution"] = 32
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(config))
    return path


def train_args(demo: Path, out: Path, config: Path, *more: str) -> list[str]:
    return [
        "train",
        str(demo),
        "--out",
        str(out),
        "--config",
        str(config),
        "--downscale",
        "8",
        "--backend",
        "torch",
        "--quiet",
        "--device",
        "cpu",
        *more,
    ]


def assert_consistent(folder: Path) -> dict:
    """The folder's snapshot loads and its metrics (as readers get them) describe that snapshot."""
    snap = load_snapshot(folder)
    metrics = read_run_metrics(folder)
    assert metrics["steps"] == snap.step and metrics["snapshot_id"] == snap.meta["save_id"]
    return metrics


# ---------------------------------------------------------------------------------------------- lock
def test_second_writer_on_a_busy_out_is_refused(
    tmp_path: Path, demo_scene: Path, tiny_config: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from ngp_app.train.run_files import RunFolder; RunFolder(sys.argv[1]).claim(); "
                "print('held', flush=True); time.sleep(120)"
            ),
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t = time.perf_counter()
        code = main(train_args(demo_scene, out, tiny_config, "--steps", "1"))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"ngp: error: {out}: another ngp run is writing there (pid {holder.pid} on host ")
        assert time.perf_counter() - t < 30  # at once, not after a wait or a training
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file stays, names a dead pid, and is taken over
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid
    assert main(train_args(demo_scene, out, tiny_config, "--steps", "2")) == 0
    assert not (out / LOCK_NAME).exists()
    assert assert_consistent(out)["steps"] == 2


def test_file_lock_in_process(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "l"), FileLock(tmp_path / "l")
    assert first.acquire()
    assert not second.acquire(timeout=0.3)
    assert second.owner()["pid"] == os.getpid()
    first.release()
    assert second.acquire() and not first.acquire()
    second.release()
    assert not (tmp_path / "l").exists()


def test_failed_run_leaves_no_folder_and_reused_folder_keeps_its_files(
    tmp_path: Path, demo_scene: Path, tiny_config: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(train_args(tmp_path / "nowhere", tmp_path / "a" / "b", tiny_config, "--steps", "1")) == 2
    assert not (tmp_path / "a").exists()
    keep = tmp_path / "old"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert main(train_args(tmp_path / "nowhere", keep, tiny_config, "--steps", "1")) == 2
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_and_a_dotted_out_name(
    tmp_path: Path, demo_scene: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    saved: list[str] = []
    original = RunFolder.save

    def spy(self: RunFolder, *args: object, **kwargs: object) -> Path:
        path = original(self, *args, **kwargs)
        saved.append(json.loads(self.metrics_path.read_text())["status"])
        return path

    monkeypatch.setattr(RunFolder, "save", spy)
    out = tmp_path / "run.v2"  # a dot is not a file extension: a folder
    assert main(train_args(demo_scene, out, tiny_config, "--steps", "4", "--checkpoint-every", "1e-6")) == 0
    assert saved == ["checkpoint", "checkpoint", "checkpoint", "complete"]
    assert out.is_dir() and assert_consistent(out)["status"] == "complete"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "snapshot.npz"]
    capsys.readouterr()


def test_trainer_checkpoint_schedule_and_budget(
    demo_scene: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.train.trainer import Trainer

    trainer = Trainer(load_scene(demo_scene, "train", downscale=8), load_config(tiny_config), backend="torch")

    def fake_step() -> None:  # the loop's logic is under test, with steps of a known length
        time.sleep(0.05)
        trainer.step_count += 1

    monkeypatch.setattr(trainer, "step", fake_step)
    calls: list[int] = []
    trainer.train(steps=3, checkpoint=lambda: calls.append(trainer.step_count), checkpoint_every=1e-6)
    assert calls == [1, 2]  # not after the last step: the final save follows
    calls.clear()
    trainer.train(steps=3, checkpoint=lambda: calls.append(trainer.step_count), checkpoint_every=1e6)
    assert calls == []
    # checkpoint time does not count against a seconds budget: training goes on after each (slow) checkpoint
    calls.clear()

    def slow() -> None:
        calls.append(trainer.step_count)
        time.sleep(0.3)

    t = time.perf_counter()
    trainer.train(seconds=0.6, checkpoint=slow, checkpoint_every=0.2)
    assert calls and trainer.step_count > calls[-1]
    assert time.perf_counter() - t >= 0.6 + 0.3 * len(calls)


# ---------------------------------------------------------------------------------------------- signals
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_training_saves_and_exits(
    tmp_path: Path, demo_scene: Path, tiny_config: Path, sig: int, code: int
) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ngp_app",
            "--threads",
            "1",
            *train_args(demo_scene, out, tiny_config, "--seconds", "300"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until it trains
            if "training on" in line:
                break
        time.sleep(1.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    last = stderr.strip().splitlines()[-1]
    name = signal.Signals(sig).name
    assert last.startswith(f"ngp: interrupted ({name}) at step ") and f"saved {out / 'snapshot.npz'} and " in last
    metrics = assert_consistent(out)
    assert metrics["status"] == f"interrupted ({name})" and metrics["steps"] >= 1
    assert json.loads(stdout.strip().splitlines()[-1])["steps"] == metrics["steps"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "snapshot.npz"]  # lock released


# ---------------------------------------------------------------------------------------------- kills during saves
# the smallest scene metadata the snapshot schema accepts: one camera
MINIMAL_SCENE = {
    "c2w": [[[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5], [0.0, 0.0, 1.0, 2.0]]],
    "intrinsics": [[50.0, 50.0, 32.0, 32.0]],
    "sizes": [[64, 64]],
}
SAVER = r"""
import os, sys
import torch
from ngp_app.compute import get_ops
from ngp_app.config import load_config
from ngp_app.nerf_model import SceneBox, build_model
from ngp_app.train.run_files import RunFolder
import ngp_app.fileio as fileio

SCENE = {
    "c2w": [[[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5], [0.0, 0.0, 1.0, 2.0]]],
    "intrinsics": [[50.0, 50.0, 32.0, 32.0]],
    "sizes": [[64, 64]],
}
folder, mode, arg = sys.argv[1], sys.argv[2], float(sys.argv[3])
config = load_config(sys.argv[4])
nerf = build_model(config, SceneBox(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), 1.0), get_ops("torch"))
model = nerf.field
if mode == "call":  # die (like SIGKILL: no cleanup) at the n-th fsync/replace of the saves below
    count = [0]
    for name in ("fsync", "replace"):
        real = getattr(os, name)
        def die(*a, _real=real, **k):
            count[0] += 1
            if count[0] == int(arg):
                os._exit(9)
            return _real(*a, **k)
        setattr(fileio.os, name, die)
run = RunFolder(folder).claim()
print("ready", flush=True)
step = 0
while True:
    step += 1
    with torch.no_grad():
        model.encoding.table.fill_(step * 1e-3)
    run.save(nerf, config, SCENE, step, {"steps": step})
"""


def test_kill_at_any_moment_of_a_save_leaves_a_consistent_pair(tmp_path: Path, tiny_config: Path) -> None:
    folder = tmp_path / "run"
    seen_steps, temps_left = [], 0
    # every fsync/replace of two saves in turn, then random SIGKILLs while saving continuously
    plans = [("call", n) for n in range(1, 9)] + [("time", random.uniform(0.5, 2.5)) for _ in range(2)]
    for mode, arg in plans:
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(folder), mode, str(arg), str(tiny_config)],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        if mode == "time":
            time.sleep(arg)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        temps_left += any(p.name.endswith(".tmp") for p in folder.iterdir())
        if not (folder / "snapshot.npz").exists():
            assert not (folder / "metrics.json").exists()
            continue
        metrics = assert_consistent(folder)  # old or new pair, never a mix
        seen_steps.append(metrics["steps"])
        snap = load_snapshot(folder)
        assert float(snap.nerf.field.encoding.table[0, 0].detach()) == pytest.approx(
            snap.step * 1e-3
        )  # the save's own data
        mismatch = check_metrics_pair(folder / "snapshot.npz", snap.meta)
        if (folder / "metrics.json").exists():  # killed between the renames: detected (else nothing to compare)
            on_disk = json.loads((folder / "metrics.json").read_text())
            assert (mismatch is None) == (on_disk.get("snapshot_id") == snap.meta["save_id"])
    assert seen_steps and len(set(seen_steps)) > 1
    assert temps_left  # kills in the middle of a write leave temp files...
    import torch

    from ngp_app.compute import get_ops
    from ngp_app.config import load_config
    from ngp_app.nerf_model import SceneBox, build_model

    config, ops = load_config(tiny_config), get_ops("torch")
    with RunFolder(folder) as run:  # ...and the next save removes them
        run.save(
            build_model(config, SceneBox(torch.tensor([[0.0] * 3, [1.0] * 3]), 1.0), ops),
            config,
            MINIMAL_SCENE,
            999,
            {"steps": 999},
        )
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "snapshot.npz"]
    assert assert_consistent(folder)["steps"] == 999


def test_mismatched_pair_is_detected_and_the_snapshot_metrics_used(
    tmp_path: Path, tiny_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from ngp_app.compute import get_ops
    from ngp_app.config import load_config
    from ngp_app.nerf_model import SceneBox, build_model

    config, ops = load_config(tiny_config), get_ops("torch")
    nerf = build_model(config, SceneBox(torch.tensor([[0.0] * 3, [1.0] * 3]), 1.0), ops)
    with RunFolder(tmp_path) as run:
        run.save(nerf, config, MINIMAL_SCENE, 1, {"steps": 1})
        old_metrics = (tmp_path / "metrics.json").read_text()
        run.save(nerf, config, MINIMAL_SCENE, 2, {"steps": 2})
    (tmp_path / "metrics.json").write_text(old_metrics)  # as if killed between the two renames
    with caplog.at_level("WARNING"):
        snap = load_run_snapshot(tmp_path)  # as the commands and the app load a snapshot
    assert "belongs to another save" in caplog.text and snap.step == 2
    assert read_run_metrics(tmp_path)["steps"] == 2


# ---------------------------------------------------------------------------------------------- --eval failures
def test_eval_failure_keeps_snapshot_and_writes_metrics(
    tmp_path: Path, demo_scene: Path, tiny_config: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    scene = tmp_path / "scene"
    shutil.copytree(demo_scene, scene)
    (scene / "test" / "r_3.png").write_bytes(b"this is not a png")  # a corrupt held-out image
    out = tmp_path / "run"
    code = main(train_args(scene, out, tiny_config, "--steps", "2", "--eval"))
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[ngp] ")]
    assert code == 2 and len(err) == 1 and err[0].startswith("ngp: error:") and "r_3.png" in err[0], err
    assert "snapshot.npz" in err[0] and "metrics.json are saved" in err[0]  # progress logs aside, one line
    metrics = assert_consistent(out)
    assert metrics["steps"] == 2 and "r_3.png" in metrics["eval_error"] and "test_psnr" not in metrics
