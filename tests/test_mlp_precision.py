"""Half-precision MLPs (``network.precision``): config values, the dtype per device, and the float16/bfloat16
forward with float32 master weights and gradient scaling, exercised on the CPU (where the field itself stays
float32) and on CUDA (marked)."""

from __future__ import annotations

import pytest
import torch

from ngp_app.compute import get_ops
from ngp_app.config import load_config
from ngp_app.errors import ConfigError
from ngp_app.model.field import NGPField, make_mlp
from ngp_app.model.precision import FLOAT16_GRAD_SCALE, mlp_dtype, mlp_forward

CUDA = pytest.param("cuda", marks=pytest.mark.cuda)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device(name)


def test_dtype_per_device_and_bad_values() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # (a device object needs no GPU)
    for p in ("auto", "float32", "float16", "bfloat16"):
        assert mlp_dtype(p, cpu) == torch.float32  # the CPU keeps float32 whatever is asked
    assert mlp_dtype("auto", cuda) == torch.float16
    assert mlp_dtype("float32", cuda) == torch.float32
    assert mlp_dtype("bfloat16", cuda) == torch.bfloat16
    with pytest.raises(ConfigError, match="network.precision"):
        mlp_dtype("half", cpu)
    with pytest.raises(ConfigError, match="network.precision"):
        NGPField(
            load_config("small", {"network": {"precision": "fp8"}}),
            torch.tensor([[0.0] * 3, [1.0] * 3]),
            get_ops("torch"),
        )


def _mlp_case(seed: int, device: torch.device) -> tuple[torch.nn.Sequential, torch.Tensor]:
    torch.manual_seed(seed)
    mlp = make_mlp(32, 64, 2, 16).to(device)
    x = torch.rand(4096, 32, device=device) * 2e-2 - 1e-2  # hash features are small
    return mlp, x


def _grads(mlp: torch.nn.Sequential, x: torch.Tensor, dtype: torch.dtype, gout: torch.Tensor):
    mlp.zero_grad(set_to_none=True)
    xs = x.clone().requires_grad_()
    out = mlp_forward(mlp, xs, dtype)
    out.backward(gout)
    return out.detach(), xs.grad, [p.grad for p in mlp.parameters()]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("dev", ["cpu", CUDA])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_mlp_matches_float32_with_float32_gradients(dev: str, dtype: torch.dtype) -> None:
    device = _device(dev)
    mlp, x = _mlp_case(0, device)
    # a loss averaged over many rays: tiny per-sample gradients, which float16 alone would flush to zero
    gout = torch.randn(4096, 16, generator=torch.Generator().manual_seed(1)).to(device) * 1e-6
    ref_out, ref_gx, ref_gw = _grads(mlp, x, torch.float32, gout)
    out, gx, gw = _grads(mlp, x, dtype, gout)
    assert out.dtype == torch.float32 and gx.dtype == torch.float32 and all(g.dtype == torch.float32 for g in gw)
    # 11- vs 8-bit significands (the CPU's half matmuls are less accurate than tensor cores, which sum in float32)
    tol = 3e-2 if dtype == torch.float16 else 8e-2
    assert _rel(out, ref_out) < tol
    assert _rel(gx, ref_gx) < tol
    for g, r in zip(gw, ref_gw):
        assert _rel(g, r) < tol
    assert all(p.dtype == torch.float32 for p in mlp.parameters())  # master weights untouched


def test_float16_gradient_scaling_is_what_keeps_small_gradients() -> None:
    # The same computation without the scale loses the input gradient to float16 underflow: the test would notice
    # a missing or wrong scale.
    import ngp_app.model.precision as precision

    mlp, x = _mlp_case(2, torch.device("cpu"))
    gout = torch.randn(4096, 16, generator=torch.Generator().manual_seed(3)) * 1e-7
    _, ref_gx, _ = _grads(mlp, x, torch.float32, gout)
    _, gx, _ = _grads(mlp, x, torch.float16, gout)
    saved = precision.FLOAT16_GRAD_SCALE
    try:
        precision.FLOAT16_GRAD_SCALE = 1.0
        _, gx_unscaled, _ = _grads(mlp, x, torch.float16, gout)
    finally:
        precision.FLOAT16_GRAD_SCALE = saved
    assert _rel(gx, ref_gx) < 3e-2
    assert _rel(gx_unscaled, ref_gx) > 0.3  # mostly flushed to zero


def test_float16_overflow_is_zeroed_not_propagated() -> None:
    mlp, x = _mlp_case(4, torch.device("cpu"))
    gout = torch.full((4096, 16), 65504.0 / FLOAT16_GRAD_SCALE * 4)  # overflows once scaled
    _, gx, gw = _grads(mlp, x, torch.float16, gout)
    assert torch.isfinite(gx).all() and all(torch.isfinite(g).all() for g in gw)


def test_field_on_cpu_is_float32_whatever_the_precision() -> None:
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    x, d = torch.rand(256, 3), torch.nn.functional.normalize(torch.randn(256, 3), dim=-1)
    outs = []
    for p in ("float32", "float16", "auto"):
        torch.manual_seed(0)
        field = NGPField(load_config("small", {"network": {"precision": p}}), aabb, get_ops("torch"))
        assert field.mlp_precision == p
        outs.append(field(x, d))
    for sigma, rgb in outs[1:]:
        assert torch.equal(sigma, outs[0][0]) and torch.equal(rgb, outs[0][1])


@pytest.mark.cuda
def test_field_on_cuda_runs_half_mlps() -> None:
    device = _device("cuda")
    aabb = torch.tensor([[0.0] * 3, [1.0] * 3])
    x, d = torch.rand(4096, 3), torch.nn.functional.normalize(torch.randn(4096, 3), dim=-1)
    outs = {}
    for p in ("float32", "auto", "bfloat16"):
        torch.manual_seed(0)
        field = NGPField(load_config("small", {"network": {"precision": p}}), aabb, get_ops("torch")).to(device)
        field.encoding.table.data.uniform_(-1, 1)  # features of O(1), so the MLP outputs are not ~0
        sigma, rgb = field(x.to(device), d.to(device))
        (sigma.sum() + rgb.sum()).backward()
        assert sigma.dtype == rgb.dtype == torch.float32
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in field.mlp_parameters())
        outs[p] = (sigma.detach().cpu(), rgb.detach().cpu())
    for p in ("auto", "bfloat16"):
        assert _rel(outs[p][1], outs["float32"][1]) < 5e-2
        assert _rel(outs[p][0].log(), outs["float32"][0].log()) < 5e-2
