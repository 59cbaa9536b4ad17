"""Frame-parallel ``ngp video`` and ``ngp eval`` under ``torchrun`` (2 ranks, gloo on the CPU, in a subprocess under a
timeout): the same bytes and metrics as one process; render jobs (``--write-job``, ``--job``); one error line for bad
input, and every rank stopped together when one rank's work fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ngp_app.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scenes" / "demo"
TIMEOUT_S = 120
SIZE = ["--width", "16", "--height", "16", "--backend", "torch", "--device", "cpu", "--quiet"]


def torchrun(args: list[str], tmp_path: Path, module: bool = True) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 [-m ngp_app --threads 1] ARGS`` from the worktree, under a timeout
    (a hang fails the test instead of blocking it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NGP_LOG_DIR": str(tmp_path / "logs"), "NGP_DIST_TIMEOUT": "60"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command = launch + (["-m", "ngp_app", "--threads", "1"] if module else []) + args
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ngp: error:")]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_sharded_video_is_byte_identical_to_one_process(tiny_snapshot: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["video", str(tiny_snapshot), "--frames", "5", *SIZE]
    assert main(["--threads", "1", *args, "--out", str(one)]) == 0
    run = torchrun([*args, "--out", str(two)], tmp_path)
    assert run.returncode == 0, run.stderr
    assert folder_bytes(two) == folder_bytes(one) and len(folder_bytes(one)) == 6  # 5 frames and the marker
    assert run.stdout.strip() == str(two)  # rank 0 alone prints the output
    assert run.stderr.count("over 2 ranks") == 1  # and logs


def test_a_sharded_video_resumes_an_interrupted_one(
    tiny_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames kept by an interrupted one-process render are reused by 2 ranks, which render only the others."""
    import signal

    from tests.support.interrupt import interrupt_frames

    one, two = tmp_path / "one", tmp_path / "two"
    args = ["video", str(tiny_snapshot), "--frames", "5", *SIZE]
    assert main(["--threads", "1", *args, "--out", str(one)]) == 0
    interrupt_frames(monkeypatch, 3)
    assert main(["--threads", "1", *args, "--out", str(two)]) == 128 + signal.SIGINT
    run = torchrun([*args, "--out", str(two)], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "resuming: 2 of 5 frames kept" in run.stderr
    assert folder_bytes(two) == folder_bytes(one)


def test_a_sharded_eval_gives_the_same_per_image_metrics(tiny_snapshot: Path, tmp_path: Path, capsys) -> None:
    args = ["eval", str(tiny_snapshot), "--split", "val", "--downscale", "16", "--per-image", *SIZE[4:]]
    assert main(["--threads", "1", *args, "--save-images", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out)
    run = torchrun([*args, "--save-images", str(tmp_path / "two")], tmp_path)
    assert run.returncode == 0, run.stderr
    two = json.loads(run.stdout)
    assert [i["psnr"] for i in two["images"]] == [i["psnr"] for i in one["images"]] and one["n_images"] == 10
    assert two == one
    assert folder_bytes(tmp_path / "two") == folder_bytes(tmp_path / "one")


def ours_path_file(folder: Path) -> Path:
    """A camera path of ours (the app's 'Save path') through three training cameras of the demo scene."""
    frames = json.loads((DEMO / "transforms_train.json").read_text())["frames"]
    keys = [
        {"time": float(t), "fov": 40.0, "transform_matrix": frames[i]["transform_matrix"]}
        for t, i in enumerate((0, 9, 20))
    ]
    path = folder / "fly.json"
    path.write_text(json.dumps({"format": "ngp-app camera path", "version": 1, "fps": 2.0, "keyframes": keys}))
    return path


def test_a_written_job_renders_the_same_bytes(tiny_snapshot: Path, tmp_path: Path, capsys) -> None:
    path = ours_path_file(tmp_path)
    args = ["video", str(tiny_snapshot), "--path", str(path), "--mode", "depth", "--background", "black", *SIZE[:4]]
    job = tmp_path / "jobs" / "job.json"
    job.parent.mkdir()
    assert main([*args, "--write-job", str(job)]) == 0
    written = json.loads(job.read_text())
    assert written["snapshot"] == os.path.relpath(tiny_snapshot, job.parent) and "camera_path" in written
    assert "path" not in written and "out" not in written  # the path goes inside; the output is the renderer's
    path.unlink()  # the job holds the path: it renders without the file
    assert main(["--threads", "1", "video", "--job", str(job), "--out", str(tmp_path / "job.gif"), *SIZE[4:]]) == 0
    ours_path_file(tmp_path)
    assert main(["--threads", "1", *args, "--out", str(tmp_path / "direct.gif"), *SIZE[4:]]) == 0
    assert (tmp_path / "job.gif").read_bytes() == (tmp_path / "direct.gif").read_bytes()
    capsys.readouterr()
    # an option that says what the job says is fine; one that differs is an error
    code = main(["video", "--job", str(job), "--out", str(tmp_path / "x.gif"), "--width", "20"])
    assert code == 2 and "--width 20 differs from" in capsys.readouterr().err
    code = main(["video", "--job", str(job), "--out", str(tmp_path / "x.gif"), "--path", "orbit"])
    assert code == 2 and "holds its camera path" in capsys.readouterr().err
    code = main(["video", "--job", str(job)])
    assert code == 2 and "--out is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "job, needle",
    [
        ({"format": "ngp-app render job", "version": 1, "frames": 0}, "frames: expected an integer in 1..100000"),
        ({"format": "ngp-app render job", "version": 2}, "version: expected one of 1"),
        ({"format": "ngp-app render job", "version": 1, "path": "orbit", "camera_path": {}}, "camera_path"),
        ({"format": "ngp-app render job", "version": 1, "snapshot": "nowhere.npz", "out": "v.gif"}, "nowhere.npz"),
    ],
)
def test_a_bad_job_is_one_error_line(tmp_path: Path, capsys, job: dict, needle: str) -> None:
    bad = tmp_path / "job.json"
    bad.write_text(json.dumps(job))
    assert main(["video", "--job", str(bad), *SIZE[4:]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngp: error:") and needle in lines[0]


def test_a_bad_job_under_torchrun_is_one_line_from_every_rank(tmp_path: Path) -> None:
    bad = tmp_path / "job.json"
    bad.write_text(json.dumps({"format": "ngp-app render job", "version": 1, "frames": 0}))
    run = torchrun(["video", "--job", str(bad), *SIZE[4:]], tmp_path)
    assert run.returncode != 0 and "exitcode  : 2" in run.stderr
    assert error_lines(run.stderr) == [f"ngp: error: {bad}: frames: expected an integer in 1..100000, got 0"]


SCRIPT = """
import os
import signal
from ngp_app.distributed import joined
from ngp_app.errors import NgpError, RankFailed

def say(line):
    os.write(1, (line + "\\n").encode())  # one write: the two ranks' lines never interleave

def work(i):
    if i == FAIL == 3:
        raise ValueError(f"item {i} is broken")
    if i == FAIL:
        os._exit(9)  # a rank that dies
    return i * i

with joined() as ranks:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # torchrun stops the survivors of a death: print first
    for FAIL, STOP in ((None, None), (3, None), (None, 4), (1, None)):
        try:
            seen = []
            with ranks.shards(5, work) as items:
                for item in items:
                    if item == STOP:
                        raise OSError(28, "No space left on device", "out.mp4")
                    seen.append(item)
            say(f"rank {ranks.rank}: {seen}")
        except RankFailed as exc:
            say(f"rank {ranks.rank}: stopped ({exc.code}, shown={exc.shown}): {exc.line}")
        except OSError as exc:
            say(f"rank {ranks.rank}: own error {exc.strerror}")
        except NgpError as exc:
            say(f"rank {ranks.rank}: {str(exc).split(' (')[0]}")
"""


def test_a_failure_on_one_rank_stops_every_rank_with_one_agreed_line(tmp_path: Path) -> None:
    script = tmp_path / "shards.py"
    script.write_text(textwrap.dedent(SCRIPT))
    run = torchrun([str(script)], tmp_path, module=False)
    assert run.returncode != 0 and "exitcode  : 9" in run.stderr  # rank 1 died in the last round
    lines = sorted(line.split(" (details:")[0] for line in run.stdout.splitlines())
    internal = "ngp: internal error: rank 1: ValueError: item 3 is broken"  # rank 1's failure, as rank 0 prints it
    assert lines == [
        "rank 0: [0, 1, 4, 9, 16]",  # all items, in order, on rank 0
        "rank 0: own error No space left on device",  # rank 0's own failure (writing), raised as itself
        "rank 0: rank 0: lost the other ranks in gather",  # rank 1 died: rank 0 stops at once, no hang
        f"rank 0: stopped (1, shown=True): {internal}",
        "rank 1: []",
        f"rank 1: stopped (1, shown=False): {internal}",
        "rank 1: stopped (2, shown=False): ngp: error: No space left on device: out.mp4",
    ]


@pytest.mark.parametrize("rank, printed", [("0", True), ("1", False)])
def test_commands_that_do_not_share_refuse_several_ranks(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path, rank: str, printed: bool
) -> None:
    """Under a launcher's environment (no process group is started for this), ``ngp mesh`` refuses in one line
    from rank 0; the other ranks say nothing, and neither do they repeat a usage error."""
    import ngp_app.cli as cli

    monkeypatch.setattr(cli, "RANK_GRACE_S", 0.0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    assert main(["mesh", "nowhere.npz", "--out", str(tmp_path / "mesh.ply")]) == 2
    err = capsys.readouterr().err
    assert (
        error_lines(err) == (["ngp: error: " + cli.SHARDED_ONLY % "mesh"] if printed else [])
        and not (tmp_path / "mesh.ply").exists()
    )
    assert main(["video", "--frames", "0"]) == 2
    assert len(error_lines(capsys.readouterr().err)) == (1 if printed else 0)
