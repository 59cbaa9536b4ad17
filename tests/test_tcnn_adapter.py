"""Our tiny-cuda-nn adapters (HashGrid on our table, FullyFusedMLP on our weights, the tcnn backend in the trainer)
against a stand-in module written from tinycudann's documented behaviour (tests/fake_tinycudann.py), on CPU.
The real comparison against tinycudann itself is in test_tcnn.py and runs where it is installed."""

from __future__ import annotations

import sys

import pytest
import torch

from ngp_app import backends
from ngp_app.compute import get_ops
from ngp_app.config import load_config
from ngp_app.encoding import tcnn_grid
from ngp_app.model import tcnn_mlp
from ngp_app.model.field import NGPField

# readback_interval 1: every step reads its loss back (otherwise steps between read-backs repeat the last one read)
TINY = {"training": {"target_batch_size_cpu": 4096, "readback_interval": 1}, "encoding": {"log2_hashmap_size": 14}}


@pytest.fixture
def fake_tcnn(monkeypatch: pytest.MonkeyPatch):
    from tests import fake_tinycudann

    monkeypatch.setitem(sys.modules, "tinycudann", fake_tinycudann)
    monkeypatch.setattr(backends, "tcnn_available", lambda device: (True, ""))
    monkeypatch.setattr(tcnn_grid, "_CACHE", {})
    monkeypatch.setattr(tcnn_mlp, "_NETWORKS", tcnn_mlp.weakref.WeakKeyDictionary())
    return fake_tinycudann


def _fields(precision: str = "float32") -> tuple[NGPField, NGPField]:
    config = load_config("small", {**TINY, "encoding": {"log2_hashmap_size": 14, "table_precision": precision}})
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    torch.manual_seed(0)
    ref = NGPField(config, aabb, ops=get_ops("torch"))
    with torch.no_grad():
        ref.encoding.table.uniform_(-1.0, 1.0)  # large features, so every layer matters
    tc = NGPField(config, aabb, ops=get_ops("tcnn"))
    tc.load_state_dict(ref.state_dict())
    return ref, tc


def test_tcnn_field_matches_the_torch_field(fake_tcnn) -> None:
    ref, tc = _fields()
    x, d = torch.rand(1000, 3), torch.nn.functional.normalize(torch.randn(1000, 3), dim=-1)
    s_ref, c_ref = ref(x, d)
    s_tc, c_tc = tc(x, d)
    torch.testing.assert_close(s_tc, s_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c_tc, c_ref, rtol=1e-5, atol=1e-6)
    (s_ref.log().sum() + c_ref.sum()).backward()
    (s_tc.log().sum() + c_tc.sum()).backward()
    for (name, p_ref), p_tc in zip(ref.named_parameters(), tc.parameters()):
        assert p_tc.grad is not None, name  # gradients reach our own parameters through tcnn's flat vectors
        torch.testing.assert_close(p_tc.grad, p_ref.grad, rtol=1e-4, atol=1e-6, msg=name)
    # the adapters keep tcnn's own parameters out of the model
    assert sum(p.numel() for p in tc.parameters()) == sum(p.numel() for p in ref.parameters())
    assert len(tcnn_mlp._NETWORKS) == 2 and len(tcnn_grid._CACHE) == 1


def test_tcnn_half_table_matches_the_half_reference(fake_tcnn) -> None:
    ref, tc = _fields("float16")
    x = torch.rand(777, 3)  # not a multiple of tcnn's batch granularity
    ours = ref.encoding(x)
    theirs = tc.encoding(x)
    assert theirs.dtype == torch.float32 and theirs.shape == ours.shape
    torch.testing.assert_close(theirs, ours, rtol=2e-3, atol=2e-3)  # tcnn returns half-precision features


def test_trainer_with_the_tcnn_backend(fake_tcnn, demo_scene, tmp_path) -> None:
    from ngp_app.data.loaders import load_scene
    from ngp_app.render.renderer import render_image
    from ngp_app.snapshot import load_snapshot, save_snapshot
    from ngp_app.train.trainer import Trainer

    scene = load_scene(demo_scene, "train", downscale=8)
    trainer = Trainer(scene, load_config("small", TINY), backend="tcnn", seed=2)
    assert trainer.backend == "tcnn" and trainer.model.backend == "tcnn"
    losses = [trainer.step().loss for _ in range(60)]
    assert sum(losses[-10:]) < 0.6 * sum(losses[:10]), losses
    path = save_snapshot(
        tmp_path,
        trainer.nerf,
        trainer.config,
        scene.metadata(),
        trainer.step_count,
        {"backend": trainer.backend},
    )
    snap = load_snapshot(path, backend="torch")  # a tcnn-trained snapshot is an ordinary snapshot
    cam = scene.camera(0)
    a = render_image(trainer.model, trainer.grid, trainer.aabb, cam, trainer.march)["rgb"]
    b = snap.nerf.render(cam)["rgb"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
