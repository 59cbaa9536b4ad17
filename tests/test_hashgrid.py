"""Hash grid reference against hand-computed indices and weights, and its gradients by gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.encoding.hashgrid import GridGeometry, HashGridEncoding, hash_grid_corners, hash_grid_encode


def test_geometry_follows_tcnn_conventions() -> None:
    g = GridGeometry.create(n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=4, per_level_scale=2.0)
    # scale_l = 4 * 2^l - 1; resolution = ceil(scale) + 1
    assert g.scales == (3.0, 7.0, 15.0, 31.0)
    assert g.resolutions == (4, 8, 16, 32)
    # dense while res^3 fits 2^12 = 4096 rows (rounded up to a multiple of 8), then hashed with 4096 rows
    assert g.hashed == (False, False, False, True)
    assert g.offsets == (0, 64, 64 + 512, 64 + 512 + 4096, 64 + 512 + 4096 + 4096)


def test_geometry_rounds_level_sizes_to_multiple_of_8() -> None:
    g = GridGeometry.create(n_levels=2, n_features=2, log2_hashmap_size=19, base_resolution=3, per_level_scale=1.5)
    # level 0: scale 2, res 3 -> 27 cells -> 32 rows; level 1: scale 3.5, res 5 -> 125 -> 128 rows
    assert g.resolutions == (3, 5)
    assert g.level_sizes() == [32, 128]


def test_finest_resolution_sets_per_level_scale() -> None:
    g = GridGeometry.create(
        n_levels=16, n_features=2, log2_hashmap_size=19, base_resolution=16, finest_resolution=2048 * 4
    )
    assert math.isclose(g.per_level_scale, math.exp(math.log(2048 * 4 / 16) / 15), rel_tol=1e-12)
    assert g.resolutions[0] == 16


def test_dense_indices_and_weights_by_hand() -> None:
    g = GridGeometry.create(n_levels=1, n_features=1, log2_hashmap_size=19, base_resolution=4, per_level_scale=2.0)
    # scale 3: x = (0.5, 0.25, 0.9) -> pos = (2.0, 1.25, 3.2) -> base (2, 1, 3), frac (0, 0.25, 0.2)
    x = torch.tensor([[0.5, 0.25, 0.9]], dtype=torch.float64)
    rows, w = hash_grid_corners(x, g)
    res = 4
    expected_rows, expected_w = [], []
    for c in range(8):
        dx, dy, dz = c & 1, (c >> 1) & 1, (c >> 2) & 1
        idx = (2 + dx) + (1 + dy) * res + (3 + dz) * res * res
        expected_rows.append(idx % 64)  # 64 rows: dense index taken modulo the table size
        expected_w.append((dx * 0.0 + (1 - dx) * 1.0) * (dy * 0.25 + (1 - dy) * 0.75) * (dz * 0.2 + (1 - dz) * 0.8))
    assert rows[0, 0].tolist() == expected_rows
    assert torch.allclose(w[0, 0], torch.tensor(expected_w, dtype=torch.float64), atol=1e-12)
    assert math.isclose(float(w.sum()), 1.0, rel_tol=1e-12)


def test_hash_indices_by_hand() -> None:
    g = GridGeometry.create(n_levels=1, n_features=2, log2_hashmap_size=10, base_resolution=64, per_level_scale=2.0)
    assert g.hashed == (True,)
    x = torch.tensor([[0.3, 0.6, 0.9]])
    rows, _ = hash_grid_corners(x, g)
    scale = 63.0
    base = [int(np.floor(np.float32(v) * np.float32(scale) + np.float32(0.5))) for v in (0.3, 0.6, 0.9)]
    for c in range(8):
        p = [base[0] + (c & 1), base[1] + ((c >> 1) & 1), base[2] + ((c >> 2) & 1)]
        h = (p[0] * 1) ^ ((p[1] * 2654435761) & 0xFFFFFFFF) ^ ((p[2] * 805459861) & 0xFFFFFFFF)
        assert int(rows[0, 0, c]) == h % 1024


def test_encode_interpolates_linear_function_exactly() -> None:
    # A table holding a linear function of the dense grid coordinates is reproduced exactly by trilinear interpolation.
    g = GridGeometry.create(n_levels=1, n_features=1, log2_hashmap_size=19, base_resolution=8, per_level_scale=2.0)
    res = g.resolutions[0]
    idx = torch.arange(g.n_rows)
    ix, iy, iz = idx % res, (idx // res) % res, idx // (res * res)
    table = (ix + 2 * iy + 3 * iz).double()[:, None]
    x = torch.rand(100, 3, dtype=torch.float64) * 0.8 + 0.05
    pos = x * g.scales[0] + 0.5
    expected = pos[:, 0] + 2 * pos[:, 1] + 3 * pos[:, 2]
    out = hash_grid_encode(x, table, g)
    assert torch.allclose(out[:, 0], expected, atol=1e-9)


def test_gradcheck_float64() -> None:
    g = GridGeometry.create(n_levels=3, n_features=2, log2_hashmap_size=8, base_resolution=4, per_level_scale=1.7)
    table = (torch.randn(g.n_rows, 2, dtype=torch.float64) * 0.1).requires_grad_()
    # stay away from cell borders where the interpolation is not differentiable
    x = (torch.rand(6, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: hash_grid_encode(a, b, g), (x, table), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("levels,features", [(8, 4), (16, 2)])
def test_module_output_shape_and_table_gradient(levels: int, features: int) -> None:
    g = GridGeometry.create(levels, features, 14, 16, finest_resolution=512)
    enc = HashGridEncoding(g, ops=get_ops("torch"))
    x = torch.rand(257, 3)
    y = enc(x)
    assert y.shape == (257, levels * features)
    y.sum().backward()
    grad = enc.table.grad
    assert grad is not None
    # every point touches 8 rows on every level, each with weights summing to 1 -> total gradient mass
    assert math.isclose(float(grad.sum()), 257 * levels * features, rel_tol=1e-4)
