"""Short training improves held-out PSNR; snapshots round-trip exactly and reject corrupt or foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.errors import SnapshotError
from ngp_app.render.renderer import render_image
from ngp_app.snapshot import FORMAT_VERSION, load_snapshot, save_snapshot
from ngp_app.train.evaluate import evaluate
from ngp_app.train.trainer import Trainer

TINY = {"training": {"target_batch_size_cpu": 4096}, "encoding": {"log2_hashmap_size": 15}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tests.conftest import DEMO

    torch.set_num_threads(2)
    train = load_scene(DEMO, "train", downscale=4)
    test = load_scene(DEMO, "test", downscale=4)
    test_subset = load_scene(DEMO, "test", downscale=4)
    keep = [0, 5, 10]
    sizes = [int(test_subset.widths[i] * test_subset.heights[i]) for i in keep]
    test_subset.pixels = torch.cat([test_subset.image(i).reshape(-1, 4) for i in keep])
    test_subset.image_offsets = torch.tensor([0, sizes[0], sizes[0] + sizes[1]])
    for name in ("widths", "heights", "c2w", "intrinsics", "distortion"):
        setattr(test_subset, name, getattr(test_subset, name)[keep])
    test_subset.file_names = [test.file_names[i] for i in keep]
    trainer = Trainer(train, load_config("base", TINY), seed=1)
    before = evaluate(trainer.nerf, test_subset)["psnr"]
    trainer.train(steps=150)
    after = evaluate(trainer.nerf, test_subset)["psnr"]
    out = tmp_path_factory.mktemp("snap")
    path = save_snapshot(out, trainer.nerf, trainer.config, train.metadata(), trainer.step_count)
    return {"trainer": trainer, "before": before, "after": after, "path": path, "test": test_subset}


def test_training_improves_heldout_psnr(trained: dict) -> None:
    # 150 tiny steps: ~9.5 -> ~15.2-15.5 dB (the occupancy grid's warm-up schedule and the seed move it by tenths)
    assert trained["after"] > trained["before"] + 5.0, (trained["before"], trained["after"])
    assert trained["after"] > 14.0


def test_training_is_reproducible_with_a_seed() -> None:
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    losses = []
    for _ in range(2):
        tr = Trainer(scene, load_config("base", TINY), seed=3)
        losses.append([tr.step().loss for _ in range(5)])
    assert losses[0] == losses[1]


def test_snapshot_round_trip_renders_identical_pixels(trained: dict) -> None:
    trainer = trained["trainer"]
    snap = load_snapshot(trained["path"], backend=trainer.backend)
    cam = trained["test"].camera(1)
    a = render_image(trainer.model, trainer.grid, trainer.aabb, cam, trainer.march)["rgb"]
    b = snap.nerf.render(cam)["rgb"]
    assert torch.equal(a, b)
    # the reference backend renders the same snapshot to within float32 rounding
    ref = load_snapshot(trained["path"], backend="torch")
    c = ref.nerf.render(cam)["rgb"]
    assert torch.allclose(a, c, atol=1e-4)
    assert snap.step == 150 and snap.config.encoding.log2_hashmap_size == 15
    assert torch.equal(snap.nerf.grid.occupied, trainer.grid.occupied)


def test_snapshot_errors(trained: dict, tmp_path: Path) -> None:
    good = trained["path"].read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00" * 100)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    for path in (truncated, garbage, foreign, tmp_path / "missing.npz"):
        with pytest.raises(SnapshotError) as info:
            load_snapshot(path)
        assert "\n" not in str(info.value)
    # another format version
    arrays = dict(np.load(trained["path"]))
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["version"] = FORMAT_VERSION + 1
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    other = tmp_path / "other.npz"
    np.savez(other, **arrays)
    with pytest.raises(SnapshotError, match="version"):
        load_snapshot(other)


def test_atomic_save_leaves_no_temp_files(trained: dict, tmp_path: Path) -> None:
    trainer = trained["trainer"]
    p = save_snapshot(tmp_path / "x.npz", trainer.nerf, trainer.config, {}, 1)
    assert p.is_file() and [f.name for f in tmp_path.iterdir()] == ["x.npz"]


def test_half_precision_tables_train_and_round_trip(tmp_path: Path) -> None:
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    config = load_config("base", {**TINY, "encoding": {"log2_hashmap_size": 15, "table_precision": "float16"}})
    trainer = Trainer(scene, config, seed=4)
    assert trainer.model.encoding.precision == "float16"
    losses = [trainer.step().loss for _ in range(80)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), losses
    # the table itself stays float32 (optimiser state and gradients too); only lookups read the half copy
    assert trainer.model.encoding.table.dtype == torch.float32
    half = trainer.model.encoding.half_table()
    assert half.dtype == torch.float16 and torch.equal(half, trainer.model.encoding.table.detach().half())
    path = save_snapshot(tmp_path, trainer.nerf, trainer.config, scene.metadata(), trainer.step_count)
    snap = load_snapshot(path, backend=trainer.backend)
    assert snap.nerf.field.encoding.precision == "float16"
    cam = scene.camera(0)
    a = render_image(trainer.model, trainer.grid, trainer.aabb, cam, trainer.march)["rgb"]
    b = snap.nerf.render(cam)["rgb"]
    assert torch.equal(a, b)
    # the torch reference reads the same rounded values
    ref = load_snapshot(path, backend="torch")
    c = ref.nerf.render(cam)["rgb"]
    assert torch.allclose(a, c, atol=1e-4)


def test_half_copy_follows_optimiser_steps() -> None:
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    config = load_config("base", {**TINY, "encoding": {"log2_hashmap_size": 15, "table_precision": "float16"}})
    trainer = Trainer(scene, config, seed=5)
    enc = trainer.model.encoding
    first = enc.half_table()
    assert enc.half_table() is first  # cached while the table is unchanged
    trainer.step()
    second = enc.half_table()
    assert second is not first and torch.equal(second, enc.table.detach().half())


def test_unknown_table_precision_is_a_config_error() -> None:
    from ngp_app.errors import ConfigError
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    with pytest.raises(ConfigError, match="table_precision"):
        Trainer(scene, load_config("base", {"encoding": {"table_precision": "bfloat16"}}))


def test_backend_from_the_config_unless_given() -> None:
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    assert Trainer(scene, load_config("base", {**TINY, "backend": "torch"})).backend == "torch"
    # an explicit backend wins over the config's (this one needs no native build)
    assert Trainer(scene, load_config("base", {**TINY, "backend": "native"}), backend="torch").backend == "torch"
    from ngp_app.errors import NgpError

    with pytest.raises(NgpError, match="backend"):
        Trainer(scene, load_config("base", {**TINY, "backend": "cuda-magic"}))


def test_resume_with_optimizer_state_continues_exactly(tmp_path: Path) -> None:
    from tests.conftest import DEMO

    scene = load_scene(DEMO, "train", downscale=8)
    config = load_config("base", {**TINY, "training": {"target_batch_size_cpu": 4096, "optimize_extrinsics": True}})
    first = Trainer(scene, config, seed=6)
    for _ in range(12):
        first.step()
    path = save_snapshot(
        tmp_path,
        first.nerf,
        first.config,
        first.scene_metadata(),
        first.step_count,
        None,
        first.training_state(include_optimizer=True),
    )
    snap = load_snapshot(path, backend=first.backend)
    assert snap.training_state is not None and "poses" in snap.training_state
    counts = snap.training_state["opt.0.0.counts"]  # the hash table's per-entry step counts
    assert counts.dtype == np.int32 and counts.shape == tuple(first.model.encoding.table.shape)
    assert 0 < counts.max() <= 12 and counts.min() == 0
    resumed = Trainer(scene, snap.config, backend=first.backend, seed=99)
    resumed.restore(snap)
    assert resumed.step_count == 12 and torch.equal(resumed.poses.delta, first.poses.delta)
    for trainer in (first, resumed):  # the same batches from here on
        trainer.generator.manual_seed(123)
        trainer.step()
    for a, b in zip(first.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # without the moments Adam restarts: the same step moves the weights differently
    plain = save_snapshot(
        tmp_path / "plain",
        first.nerf,
        first.config,
        first.scene_metadata(),
        first.step_count,
        None,
        first.training_state(include_optimizer=False),
    )
    fresh = Trainer(scene, snap.config, backend=first.backend, seed=99)
    fresh.restore(load_snapshot(plain, backend=first.backend))
    for trainer in (first, fresh):
        trainer.generator.manual_seed(7)
        trainer.step()
    assert not all(
        torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(first.model.parameters(), fresh.model.parameters())
    )


def test_cli_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ngp_app.cli import main
    from tests.conftest import DEMO

    args = [str(DEMO), "--downscale", "8", "--config", "small", "--quiet", "--backend", "torch"]
    assert main(["train", *args, "--out", str(tmp_path / "a"), "--steps", "5", "--save-optimizer-state"]) == 0
    first = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert (
        main(
            [
                "train",
                str(DEMO),
                "--downscale",
                "8",
                "--quiet",
                "--backend",
                "torch",
                "--out",
                str(tmp_path / "b"),
                "--steps",
                "4",
                "--resume",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    second = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert first["steps"] == 5 and second["steps"] == 9 and second["config"] == "small"
    capsys.readouterr()  # the progress logs of the runs above
    code = main(["train", *args, "--out", str(tmp_path / "c"), "--steps", "1", "--resume", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "snapshot not found" in err[0]
    code = main(
        [
            "train",
            str(DEMO),
            "--downscale",
            "8",
            "--quiet",
            "--config",
            "base",
            "--out",
            str(tmp_path / "d"),
            "--steps",
            "1",
            "--resume",
            str(tmp_path / "a"),
        ]
    )
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[ngp] ")]
    assert code != 0 and len(err) == 1 and "does not match" in err[0]  # after the scene loaded: its log line aside


def test_aabb_scale_option_sets_the_box_and_resume_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 18: ``train --aabb-scale N`` trains in a box of side N (the grid gets a cascade per doubling, the
    snapshot says so) whatever the scene file says; a resume in another box is one clear line."""
    from ngp_app.cli import main
    from ngp_app.snapshot import read_snapshot_meta
    from tests.conftest import DEMO

    args = [str(DEMO), "--downscale", "8", "--config", "small", "--quiet", "--backend", "torch", "--steps", "2"]
    assert main(["train", *args, "--out", str(tmp_path / "a"), "--aabb-scale", "4"]) == 0
    meta = read_snapshot_meta(tmp_path / "a" / "snapshot.npz")
    assert meta["aabb_scale"] == 4 and meta["scene"]["aabb_scale"] == 4, (meta["aabb_scale"], meta["scene"])
    capsys.readouterr()
    code = main(["train", *args, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "a")])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[ngp] ")]
    assert code == 2 and len(err) == 1 and "trained with aabb_scale 4, this run has 1" in err[0], err
    assert (
        main(["train", *args, "--out", str(tmp_path / "c"), "--resume", str(tmp_path / "a"), "--aabb-scale", "4"]) == 0
    )
