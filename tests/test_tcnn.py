"""tiny-cuda-nn backend: its HashGrid must produce our features from our table (skipped where it is absent)."""

from __future__ import annotations

import pytest
import torch

from ngp_app.encoding.hashgrid import GridGeometry, HashGridEncoding, hash_grid_encode
from ngp_app.encoding.tcnn_grid import tcnn_encoding_config

pytestmark = pytest.mark.cuda


def _tcnn_or_skip() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pytest.importorskip("tinycudann", reason="tinycudann is not installed")


def test_config_mirrors_geometry() -> None:
    g = GridGeometry.create(8, 4, 19, 16, finest_resolution=2048)
    cfg = tcnn_encoding_config(g)
    assert cfg["otype"] == "HashGrid" and cfg["n_levels"] == 8 and cfg["n_features_per_level"] == 4
    assert cfg["log2_hashmap_size"] == 19 and cfg["base_resolution"] == 16
    assert cfg["per_level_scale"] == pytest.approx(2.0)


@pytest.mark.parametrize("levels,features,log2t", [(8, 4, 19), (16, 2, 15)])
def test_tcnn_features_and_gradients_match_reference(levels: int, features: int, log2t: int) -> None:
    _tcnn_or_skip()
    g = GridGeometry.create(levels, features, log2t, 16, finest_resolution=4096)
    enc = HashGridEncoding(g, init_scale=1.0, backend="tcnn").cuda()
    x = torch.rand(1 << 16, 3, device="cuda")
    x[:64] = torch.floor(x[:64] * 16) / 16  # points on cell borders
    out = enc(x)
    ref = hash_grid_encode(x, enc.table.detach(), g)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    grad_tcnn = enc.table.grad.clone()
    table = enc.table.detach().clone().requires_grad_()
    (hash_grid_encode(x, table, g) * w).sum().backward()
    torch.testing.assert_close(grad_tcnn, table.grad, rtol=1e-4, atol=1e-4)
