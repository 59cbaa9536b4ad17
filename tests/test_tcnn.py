"""tiny-cuda-nn backend: its HashGrid must produce our features from our table and its FullyFusedMLP our MLPs'
outputs from our weights (the tcnn runs skip where tinycudann or CUDA is absent; the layout tests run anywhere)."""

from __future__ import annotations

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.encoding.hashgrid import GridGeometry, HashGridEncoding, hash_grid_encode
from ngp_app.encoding.tcnn_grid import tcnn_encoding_config
from ngp_app.model.field import make_mlp
from ngp_app.model.tcnn_mlp import flat_parameters, fully_fused_supported, n_flat_parameters, network_config


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


@pytest.mark.cuda
@pytest.mark.parametrize("levels,features,log2t", [(8, 4, 19), (16, 2, 15)])
def test_tcnn_features_and_gradients_match_reference(levels: int, features: int, log2t: int) -> None:
    _tcnn_or_skip()
    g = GridGeometry.create(levels, features, log2t, 16, finest_resolution=4096)
    enc = HashGridEncoding(g, init_scale=1.0, ops=get_ops("tcnn")).cuda()
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


@pytest.mark.cuda
def test_tcnn_half_grid_matches_half_reference() -> None:
    _tcnn_or_skip()
    g = GridGeometry.create(8, 4, 19, 16, finest_resolution=2048)
    enc = HashGridEncoding(g, init_scale=1.0, ops=get_ops("tcnn"), precision="float16").cuda()
    x = torch.rand(1 << 16, 3, device="cuda")
    ref = hash_grid_encode(x, enc.table.detach(), g, precision="float16")
    # tcnn accumulates and returns half-precision features: about 1e-3 relative
    torch.testing.assert_close(enc(x), ref, rtol=2e-3, atol=2e-3)


def _emulate_fully_fused(
    flat: torch.Tensor, n_in: int, width: int, n_hidden: int, n_out: int, x: torch.Tensor
) -> torch.Tensor:
    """tiny-cuda-nn's FullyFusedMLP from its flat parameters, as documented: row-major (fan_out, fan_in) matrices of
    the input, hidden and output layers in order, input and output widths padded to 16 (padded inputs hold 1)."""
    pin, pout = -(-n_in // 16) * 16, -(-n_out // 16) * 16
    shapes = [(width, pin)] + [(width, width)] * (n_hidden - 1) + [(pout, width)]
    h = torch.cat([x, torch.ones(x.shape[0], pin - n_in)], dim=1)
    pos = 0
    for i, (r, c) in enumerate(shapes):
        w = flat[pos : pos + r * c].view(r, c)
        pos += r * c
        h = h @ w.T
        if i < len(shapes) - 1:
            h = torch.relu(h)
    assert pos == flat.numel()
    return h[:, :n_out]


@pytest.mark.parametrize("n_in,width,n_hidden,n_out", [(32, 64, 1, 16), (32, 64, 2, 3), (20, 16, 3, 5)])
def test_fully_fused_layout_reproduces_the_mlp(n_in: int, width: int, n_hidden: int, n_out: int) -> None:
    torch.manual_seed(n_in + n_out)
    mlp = make_mlp(n_in, width, n_hidden, n_out)
    assert fully_fused_supported(mlp)[0]
    cfg = network_config(mlp)
    assert cfg["n_neurons"] == width and cfg["n_hidden_layers"] == n_hidden and cfg["otype"] == "FullyFusedMLP"
    flat = flat_parameters(mlp)
    assert flat.numel() == n_flat_parameters(mlp)
    x = torch.randn(100, n_in)
    torch.testing.assert_close(_emulate_fully_fused(flat.detach(), n_in, width, n_hidden, n_out, x), mlp(x))
    flat.sum().backward()  # the flat vector is differentiable in our weights
    assert all(m.weight.grad is not None for m in mlp if isinstance(m, torch.nn.Linear))


def test_fully_fused_rejects_unsupported_widths() -> None:
    assert not fully_fused_supported(make_mlp(32, 48, 1, 16))[0]
    assert not fully_fused_supported(make_mlp(32, 64, 0, 16))[0]


@pytest.mark.cuda
def test_tcnn_mlp_matches_torch_mlp() -> None:
    _tcnn_or_skip()
    from ngp_app.model.tcnn_mlp import tcnn_mlp_forward

    torch.manual_seed(0)
    for n_hidden, n_out in [(1, 16), (2, 3)]:
        mlp = make_mlp(32, 64, n_hidden, n_out).cuda()
        x = torch.randn(1 << 14, 32, device="cuda") * 0.5
        ref = mlp(x)
        out = tcnn_mlp_forward(mlp, x)
        # half-precision weights and activations: compare relative to the output scale
        scale = float(ref.abs().max())
        torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2 * scale)
        out.sum().backward()
        grads = [m.weight.grad.clone() for m in mlp if isinstance(m, torch.nn.Linear)]
        mlp.zero_grad()
        ref.sum().backward()
        for g_tcnn, m in zip(grads, [m for m in mlp if isinstance(m, torch.nn.Linear)]):
            torch.testing.assert_close(g_tcnn, m.weight.grad, rtol=5e-2, atol=5e-2 * float(m.weight.grad.abs().max()))
