"""Data-parallel ``ngp train`` under ``torchrun`` (2 ranks, gloo on the CPU, in a subprocess under a timeout): the
same parameters as one process on the same global batch; the occupancy grid and weights identical on both ranks;
rank 0 alone touches the run folder; snapshots resume across rank counts; a rank that dies ends the run with one
line and leaves the last checkpoint loadable.

The ranks run ``ngp_app.cli.main`` from a small script (``SCRIPT``) whose only additions are test hooks: rank 1 may
not touch the run folder, each rank dumps its grid and weights after training, and rank 1 can die on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from test_distributed import ROOT, error_lines, torchrun

from ngp_app.cli import main
from ngp_app.train.run_files import RunFolder, load_run_snapshot

ARGS = ["--backend", "torch", "--device", "cpu", "--downscale", "8", "--quiet", "--save-optimizer-state"]
# config small with the occupancy grid updated at every step, so the shared steps update it
CONFIG = {"parent": "small.json", "name": "small-grid-every-step", "density_grid": {"update_interval": 1}}
# After 3 steps the MLP weights agree to a few float32 ulps (measured: 3e-8) and the table to 1.4e-5: Adam with
# eps 1e-15 steps a table entry by about lr * sign(m) however small its gradient, so the summation order of the
# ranks' partial gradients shows most there. An unshared gradient moves weights by ~lr (1e-2) per step; a mis-scaled
# one (Adam's steps do not see a constant scale) shows in Adam's moments, compared relative to their largest value.
MLP_ATOL, TABLE_ATOL = 1e-6, 1e-4

SCRIPT = """
import os
import sys
from pathlib import Path

import torch

from ngp_app import outputs
from ngp_app.cli import main
from ngp_app.train import run_files, trainer

RANK = int(os.environ["RANK"])
DUMP, DIE = os.environ.get("TEST_DUMP"), os.environ.get("TEST_DIE_WHEN")


def refuse(*args, **kwargs):
    raise AssertionError(f"rank {RANK} touched the run folder")


if RANK:
    run_files.RunFolder.claim = run_files.RunFolder.save = refuse
    outputs.check_output_dir = outputs.check_free_space = refuse
train, step = trainer.Trainer.train, trainer.Trainer.step


def train_and_dump(self, *args, **kwargs):
    train(self, *args, **kwargs)
    if DUMP:
        torch.save({"grid": self.grid.state_dict(), "field": self.model.state_dict()}, f"{DUMP}/rank{RANK}.pt")


def step_or_die(self):
    if RANK == 1 and DIE and Path(DIE).exists():
        os._exit(9)  # a rank that dies once rank 0 has saved a checkpoint
    return step(self)


trainer.Trainer.train, trainer.Trainer.step = train_and_dump, step_or_die
sys.exit(main(sys.argv[1:]))
"""


def ranks_train(tmp: Path, args: list[str], env: dict[str, str]):
    """``torchrun`` 2 ranks of ``SCRIPT --threads 1 train ARGS`` with the hooks' environment ``env``."""
    script = tmp / "train_ranks.py"
    script.write_text(textwrap.dedent(SCRIPT))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        return torchrun([str(script), "--threads", "1", "train", *args], tmp, module=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``start``: 2 steps in one process (it sizes the batch: from a fresh start the first steps drop rays that do
    not fit the sample buffers, differently for a whole batch and its halves); ``one``: 3 more steps resumed in one
    process; ``two``: the same 3 steps resumed on 2 ranks, each dumping its grid and weights (rank0.pt, rank1.pt)."""
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "config.json").write_text(json.dumps(CONFIG))
    assert main(["--threads", "1", "train", "--out", str(tmp / "start"), "--steps", "2", *ARGS, *config(tmp)]) == 0
    more = ["--resume", str(tmp / "start" / "snapshot.npz"), "--steps", "3", *ARGS, *config(tmp)]
    assert main(["--threads", "1", "train", "--out", str(tmp / "one"), *more]) == 0
    run = ranks_train(tmp, ["--out", str(tmp / "two"), *more], {"TEST_DUMP": str(tmp)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.count('"steps": 5') == 1  # rank 0 alone prints the summary
    yield tmp


def config(folder: Path) -> list[str]:
    return ["--config", str(folder / "config.json")]


def arrays(snapshot: Path) -> dict[str, np.ndarray]:
    with np.load(snapshot) as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def test_two_ranks_of_half_batches_train_the_parameters_of_one_rank(runs: Path) -> None:
    one, two = arrays(runs / "one" / "snapshot.npz"), arrays(runs / "two" / "snapshot.npz")
    start = arrays(runs / "start" / "snapshot.npz")
    assert one.keys() == two.keys() and "train/raw.encoding.table" in one
    for key in one:
        if key.endswith(("counts", "step", "ema_steps", "bitfield")):  # entries touched, Adam's steps, grid bits
            assert np.array_equal(one[key], two[key]), key
            continue
        atol = TABLE_ATOL if "encoding.table" in key else MLP_ATOL
        scale = max(float(np.abs(one[key]).max()), 1e-30) if key.startswith("train/opt") else 1.0  # the moments
        assert np.allclose(one[key] / scale, two[key] / scale, rtol=0, atol=atol), key
    moved = np.abs(one["train/raw.rgb_net.0.weight"] - start["train/raw.rgb_net.0.weight"]).max()
    assert moved > 100 * MLP_ATOL  # the 3 steps trained: agreeing is not agreeing on nothing
    metrics = [json.loads((runs / name / "metrics.json").read_text()) for name in ("one", "two")]
    assert metrics[0]["kept_samples_per_step"] == metrics[1]["kept_samples_per_step"] > 0  # the same global rays
    assert (metrics[0]["ranks"], metrics[1]["ranks"], metrics[1]["steps"]) == (1, 2, 5)


def test_the_ranks_hold_the_same_occupancy_grid_and_weights(runs: Path) -> None:
    rank0, rank1 = (torch.load(runs / f"rank{r}.pt") for r in (0, 1))
    assert rank0["grid"]["density"].shape == rank1["grid"]["density"].shape
    for part in ("grid", "field"):
        assert rank0[part].keys() == rank1[part].keys()
        for key, value in rank0[part].items():
            assert torch.equal(value, rank1[part][key]), f"{part}.{key}"
    start = load_run_snapshot(runs / "start" / "snapshot.npz").nerf.grid.state_dict()["density"]
    assert not torch.equal(start, rank0["grid"]["density"])  # the grid was updated in the shared steps


def test_rank_0_alone_writes_the_run_folder(runs: Path) -> None:
    """Rank 1's run-folder calls raise (``SCRIPT``), and the folder holds what one process leaves."""
    assert sorted(p.name for p in (runs / "two").iterdir()) == sorted(p.name for p in (runs / "one").iterdir())
    assert {"snapshot.npz", "metrics.json"} <= {p.name for p in (runs / "two").iterdir()}
    assert not list(runs.glob("two*/**/*.tmp"))


def test_a_two_rank_snapshot_resumes_in_one_process(runs: Path) -> None:
    """Resumed for one step in one process, the 2-rank snapshot trains as the 1-process one does (the reverse, a
    1-process snapshot resumed on 2 ranks, is the fixture's ``two``)."""
    for name in ("one", "two"):
        more = ["--resume", str(runs / name / "snapshot.npz"), "--steps", "1", *ARGS, *config(runs)]
        assert main(["--threads", "1", "train", "--out", str(runs / f"{name}-more"), *more]) == 0
    one, two = arrays(runs / "one-more" / "snapshot.npz"), arrays(runs / "two-more" / "snapshot.npz")
    assert json.loads((runs / "two-more" / "metrics.json").read_text())["steps"] == 6
    for key in ("param/density_net.0.weight", "train/raw.rgb_net.4.weight"):
        assert np.allclose(one[key], two[key], rtol=0, atol=MLP_ATOL), key
    assert np.allclose(one["param/encoding.table"], two["param/encoding.table"], rtol=0, atol=TABLE_ATOL)


def test_a_rank_that_dies_ends_the_run_with_one_line_and_a_loadable_checkpoint(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--out", str(out), "--resume", str(runs / "start" / "snapshot.npz"), "--steps", "500", *ARGS, *config(runs)]
    run = ranks_train(tmp_path, [*args, "--checkpoint-every", "0.5"], {"TEST_DIE_WHEN": str(out / "metrics.json")})
    assert run.returncode != 0 and "exitcode  : 9" in run.stderr  # rank 1 died
    lines = error_lines(run.stderr)
    assert len(lines) == 1 and lines[0].startswith("ngp: error: rank 0: lost the other ranks in all_reduce"), lines
    metrics = json.loads((out / "metrics.json").read_text())
    snap = load_run_snapshot(out / "snapshot.npz")
    assert metrics["status"] == "checkpoint" and snap.step == metrics["steps"] > 2
    assert snap.meta["save_id"] == metrics["snapshot_id"]  # the pair of one save
    RunFolder(out).claim().release(remove_created=False)  # the lock went with the run


def test_one_process_imports_none_of_it(tmp_path: Path) -> None:
    """Without torchrun the data-parallel module is not imported and no process group starts (a fresh interpreter:
    other tests in this one may have imported it)."""
    code = textwrap.dedent(
        f"""
        import sys
        import torch.distributed as dist
        from ngp_app.cli import main
        code = main({["--threads", "1", "train", "--out", str(tmp_path / "run"), "--steps", "1", *ARGS]!r})
        print(code, "ngp_app.train.data_parallel" in sys.modules, dist.is_initialized())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.split()[-3:] == ["0", "False", "False"], run.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["ranks"] == 1


def test_gradients_go_in_buckets_of_one_dtype_and_at_most_the_size() -> None:
    from ngp_app.distributed import buckets

    big, a, b, c = torch.zeros(300), torch.zeros(10), torch.zeros(20), torch.zeros(5, dtype=torch.float64)
    sizes = [[t.numel() for t in bucket] for bucket in buckets([a, big, b, a, c, b], 4 * 100)]
    assert sizes == [[10], [300], [20, 10], [5], [20]]  # big alone, a new bucket at a dtype change


def test_error_map_sampling_is_refused_on_several_ranks() -> None:
    from types import SimpleNamespace

    from ngp_app.distributed import Ranks
    from ngp_app.errors import NgpError
    from ngp_app.train.data_parallel import share_rays

    ranks = Ranks(1, 2, 1, 60.0)  # no collective runs here: no process group needed
    with pytest.raises(NgpError, match="--error-map off"):
        share_rays(SimpleNamespace(error_map=object()), ranks)
    trainer = SimpleNamespace(error_map=None)
    share = share_rays(trainer, ranks)
    assert trainer.share is share and share.part(1025) == 513
    rows = share.rows(torch.arange(7))[0]
    assert rows.tolist() == [1, 3, 5]  # rank 1 of 2: the odd rows
