"""A training step that is not a read-back step reads nothing back from the device (items 1-2 of issue 8): no
host-sync operator shows in its profile (CPU), and CUDA's sync debug mode raises on none (CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ngp_app.bench.syncs import watch_host_reads
from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.native import loader

DEMO = Path(__file__).resolve().parents[1] / "scenes" / "demo"

SMALL = {"training": {"target_batch_size_cpu": 4096, "target_batch_size": 4096}, "encoding": {"log2_hashmap_size": 14}}


def _trainer(device: str, extrinsics: bool = False, appearance: bool = False, error_map: bool = False):
    from ngp_app.train.trainer import Trainer

    if not loader.available(torch.device(device))[0]:
        pytest.skip(f"native kernels unavailable on {device}")
    scene = load_scene(DEMO, "train", downscale=8)
    config = load_config(
        "small",
        {
            **SMALL,
            "training": {**SMALL["training"], "optimize_extrinsics": extrinsics, "error_map": error_map},
            "appearance": {"enabled": appearance},
        },
    )
    trainer = Trainer(scene, config, device, "native", seed=0)
    # past the first read-backs, to a step that neither reads back nor updates the occupancy grid (the grid's
    # warm-up updates it every step at first)
    policy = trainer.policy
    while (
        trainer.step_count < policy.readback_interval
        or policy.readback_due(trainer.step_count)
        or policy.grid_update_due(trainer.step_count)
    ):
        trainer.step()
    return trainer


def _profiled_syncs(trainer) -> dict[str, int]:
    with watch_host_reads() as reads:
        stats = trainer.step()
    assert stats.n_samples > 0 and stats.n_rays > 0
    return dict(reads.counts)


@pytest.mark.parametrize(
    "extrinsics, appearance, error_map",
    [(False, False, False), (True, False, False), (False, True, False), (False, False, True)],
)
def test_a_non_logging_step_reads_nothing_back(extrinsics: bool, appearance: bool, error_map: bool) -> None:
    """Also with per-image exposure and codes trained (their lookup, recentring and optimiser groups), and with
    error-map sampling (its draw, its record and its refresh)."""
    from ngp_app.train.optim import TableAdam

    trainer = _trainer("cpu", extrinsics, appearance, error_map)
    assert (trainer.model.appearance is not None) == appearance
    assert (trainer.error_map is not None) == error_map
    if error_map:
        with watch_host_reads() as reads:
            trainer.error_map.refresh()
        assert dict(reads.counts) == {}
    # the step as it trains by default: the table's per-entry-count Adam and the weight average
    assert isinstance(trainer.optimizer, TableAdam) and trainer.ema is not None
    before = trainer.model.encoding.table.detach().clone()
    average = trainer.eval_model.encoding.table.detach().clone()
    assert _profiled_syncs(trainer) == {}
    assert not torch.equal(before, trainer.model.encoding.table.detach())  # it did train
    assert not torch.equal(average, trainer.eval_model.encoding.table.detach())  # and update the average
    if extrinsics:
        assert float(trainer.poses.delta.detach().abs().sum()) > 0
    # the detector sees a read-back step's reads (so the check above is not vacuous)
    while not trainer.policy.readback_due(trainer.step_count):
        trainer.step()
    assert _profiled_syncs(trainer).get("Tensor.tolist")


@pytest.mark.cuda
def test_a_non_logging_cuda_step_does_not_synchronise() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    trainer = _trainer("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
