"""The fused spherical-harmonics kernels against the PyTorch reference (``encoding.sh.sh_encode``), forward and
gradient with respect to the directions; skipped when the native extension can't build."""

from __future__ import annotations

import pytest
import torch
from native_support import DEVICES, require_native
from native_support import device as _device

from ngp_app.encoding.sh import sh_encode

require_native()

from ngp_app.native import ops  # noqa: E402


def _directions(n: int, seed: int) -> torch.Tensor:
    """Random unit vectors, plus the axes and a few directions where basis values cancel (z^2 = 1/3, x = +-y)."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g)
    special = torch.tensor(
        [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [-1.0, 0.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.0, 0.0, -1.0],
            [1.0, 1.0, 1.0],
            [1.0, -1.0, 0.5],
            [-1.0, -1.0, -1.0],
        ]
    )
    d[: special.shape[0]] = special
    return d / d.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_sh_forward_and_gradient_match_the_reference(dev: str, degree: int) -> None:
    device = _device(dev)
    d = _directions(5000, seed=degree).to(device)
    d_ref, d_nat = d.clone().requires_grad_(), d.clone().requires_grad_()
    ref = sh_encode(d_ref, degree)
    nat = ops.sh_encode(d_nat, degree)
    assert nat.shape == (5000, degree * degree) and nat.dtype == torch.float32
    torch.testing.assert_close(nat.cpu(), ref.cpu(), rtol=1e-6, atol=1e-7)
    if dev == "cpu":  # same float32 operations in the same order, no contraction: the reference's bits
        assert torch.equal(nat, ref)
    gout = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7)).to(device)
    nat.backward(gout)
    assert d_nat.grad is not None
    if degree == 1:  # a constant (the reference's has no graph at all): no gradient
        assert not d_nat.grad.any()
        return
    ref.backward(gout)
    assert d_ref.grad is not None
    scale = float(d_ref.grad.abs().max())
    torch.testing.assert_close(d_nat.grad.cpu(), d_ref.grad.cpu(), rtol=1e-5, atol=1e-6 * scale)


def test_sh_gradient_is_the_derivative() -> None:
    # Central differences in float64 of the reference agree with the kernel's analytic gradient (guards against a
    # mistake shared by the kernel and autograd of the reference, e.g. a wrong basis function in both).
    d = _directions(64, seed=11)
    gout = torch.randn(64, 16, generator=torch.Generator().manual_seed(3))
    d_nat = d.clone().requires_grad_()
    (ops.sh_encode(d_nat, 4) * gout).sum().backward()
    eps = 1e-4
    numeric = torch.zeros(64, 3, dtype=torch.float64)
    for a in range(3):
        step = torch.zeros(64, 3, dtype=torch.float64)
        step[:, a] = eps
        plus = sh_encode(d.double() + step, 4)
        minus = sh_encode(d.double() - step, 4)
        numeric[:, a] = ((plus - minus) / (2 * eps) * gout.double()).sum(-1)
    torch.testing.assert_close(d_nat.grad.double(), numeric, rtol=1e-4, atol=1e-4)


def test_sh_without_gradient_empty_and_bad_input() -> None:
    out = ops.sh_encode(torch.zeros(0, 3), 4)
    assert out.shape == (0, 16)
    d = _directions(10, seed=0)
    assert not ops.sh_encode(d, 3).requires_grad
    with pytest.raises(ValueError, match="degree"):
        ops.sh_encode(d, 5)
    with pytest.raises(RuntimeError, match="dirs must be"):
        ops.sh_encode(torch.rand(10, 2), 4)
    with pytest.raises(RuntimeError, match="degree"):
        torch.ops.ngp.sh_encode_fwd(d, 0)
    with pytest.raises(RuntimeError, match="grad_out must be"):
        torch.ops.ngp.sh_encode_bwd(torch.rand(10, 9), d, 4)
    # non-contiguous and float64 inputs are taken (as float32)
    wide = torch.cat([d, d], dim=1)[:, ::2].double()
    torch.testing.assert_close(ops.sh_encode(wide, 4), sh_encode(wide.float(), 4))
