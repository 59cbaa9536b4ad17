"""The trainer's Adam: per-entry step counts for the sparse hash-table step (native kernel vs the PyTorch reference,
a hand-computed case against global-step correction), the dense step against torch.optim.Adam, and the state's
round trip through snapshot arrays (including arrays saved before per-entry counts existed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from ngp_app.compute.reference import sparse_adam_reference_
from ngp_app.native import loader
from ngp_app.train.optim import TableAdam, bias_corrections

LR, BETAS, EPS = 1e-2, (0.9, 0.99), 1e-15


def _native_or_skip(dev: str) -> None:
    if dev == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ok, why = loader.available(torch.device(dev))
    if not ok:
        pytest.skip(f"native extension unavailable: {why}")


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _adam(native: bool) -> Any:
    """The trainer's Adam with the native kernels' steps, or with the PyTorch reference's."""
    if not native:
        return TableAdam
    _native_or_skip("cpu")
    from ngp_app.compute import get_ops
    from ngp_app.train.optim import table_adam

    return table_adam(get_ops("native"))


def test_bias_correction_table() -> None:
    table = bias_corrections(*BETAS)
    assert table.dtype == torch.float32 and table.shape[1] == 2
    assert table[1].tolist() == pytest.approx([10.0, 0.1], rel=1e-6)  # 1 / (1 - 0.9), sqrt(1 - 0.99)
    assert table[3].tolist() == pytest.approx([1 / (1 - 0.9**3), math.sqrt(1 - 0.99**3)], rel=1e-6)
    # the last row is the first count where both corrections are 1.0 in float32; the one before is not
    assert table[-1].tolist() == [1.0, 1.0] and table[-2].tolist() != [1.0, 1.0]
    assert 1000 < table.shape[0] < 3000  # 0.99^c falls below 2^-24 near c = 1650


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("rows", [0, 6])
def test_counted_sparse_adam_native_matches_reference(dev: str, rows: int) -> None:
    """rows: 6 cuts the corrections table short so that counts saturate within the test (as they do after ~1650
    updates in training); 0 keeps the full table."""
    _native_or_skip(dev)
    from ngp_app.native import ops

    g = torch.Generator().manual_seed(0)
    n = 4099  # not a multiple of the CPU block size
    p0 = torch.randn(n, 4, generator=g)
    state = {"ref": [p0.clone(), torch.zeros(n, 4), torch.zeros(n, 4), torch.zeros(n, 4, dtype=torch.int32)]}
    state["nat"] = [t.clone().to(dev) for t in state["ref"]]
    table = bias_corrections(*BETAS)
    table = table[:rows].clone() if rows else table
    for step in range(12):
        grad = torch.randn(n, 4, generator=g)
        grad[torch.rand(n, 4, generator=g) < 0.4] = 0.0  # some entries untouched in a step
        if step < 8:
            grad[: n // 4] = 0.0  # a quarter first touched late
        sparse_adam_reference_(*state["ref"][:1], grad, *state["ref"][1:], table, LR, *BETAS, EPS, 1e-3)
        p, m, v, c = state["nat"]
        ops.adam_step_counted(p, grad.to(dev), m, v, c, table.to(dev), LR, *BETAS, EPS, 1e-3)
    for ref, nat in zip(state["ref"], state["nat"]):
        torch.testing.assert_close(nat.cpu(), ref, rtol=1e-5, atol=1e-6)
    counts = state["ref"][3]
    assert int(counts.max()) == (5 if rows else 12) and int(counts[: n // 4].max()) == 4
    assert int(counts.min()) == 0 and not torch.equal(state["ref"][0], p0)


@pytest.mark.parametrize("native", [False, pytest.param(True, id="native")])
def test_entry_first_touched_late_is_corrected_as_fresh(native: bool) -> None:
    """Entry 1 gets its first gradient at global step 3, then the same gradient at step 4. With per-entry counts its
    two updates are the ones of a fresh Adam (|step| = lr each: for betas 0.9/0.99, m / sqrt(v) corrected is 1 for a
    constant gradient); with the global step t = 3, 4 they would be lr * sqrt(1-0.99^3)/(1-0.9^3) = 0.6360 lr and
    lr * 0.19 / sqrt(0.0199) * sqrt(1-0.99^4) / (1-0.9^4) = 0.7774 lr."""
    param = torch.zeros(2, requires_grad=True)
    opt = _adam(native)([param], lr=LR, betas=BETAS, eps=EPS)
    for step in range(4):
        param.grad = torch.tensor([1.0, 1.0 if step >= 2 else 0.0])
        opt.step()
    counts = opt.state[param]["counts"]
    assert counts.tolist() == [4, 2]
    assert param[1].item() == pytest.approx(-2 * LR, rel=1e-5)  # two fresh updates of lr each
    assert param[0].item() == pytest.approx(-4 * LR, rel=1e-5)  # entry 0: updated from the start, lr per step

    def global_update(t: int, m: float, v: float) -> float:  # Adam's step at global step t (no eps)
        return LR / (1 - BETAS[0] ** t) * m / (math.sqrt(v) / math.sqrt(1 - BETAS[1] ** t))

    global_corrected = global_update(3, 0.1, 0.01) + global_update(4, 0.19, 0.0199)
    assert global_corrected == pytest.approx(LR * (0.63595 + 0.77744), rel=1e-4)
    assert abs(param[1].item() + global_corrected) > 0.5 * LR  # the difference is visible
    # the global-step kernel really does the latter (what the table Adam did before per-entry counts)
    if native:
        from ngp_app.native import ops

        p, m, v = torch.zeros(1), torch.zeros(1), torch.zeros(1)
        for t in (3, 4):
            ops.adam_step(
                p,
                torch.ones(1),
                m,
                v,
                LR / (1 - BETAS[0] ** t),
                math.sqrt(1 - BETAS[1] ** t),
                *BETAS,
                EPS,
                0.0,
                sparse=True,
            )
        assert p.item() == pytest.approx(-global_corrected, rel=1e-5)


@pytest.mark.parametrize("native", [False, pytest.param(True, id="native")])
def test_dense_groups_match_torch_adam(native: bool) -> None:
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(64, 32, generator=g)
    ours, ref = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    table = torch.zeros(10, 2, requires_grad=True)
    opt = _adam(native)([{"params": [table]}, {"params": [ours], "weight_decay": 1e-3}], lr=LR, betas=BETAS, eps=EPS)
    torch_opt = torch.optim.Adam([ref], lr=LR, betas=BETAS, eps=EPS, weight_decay=1e-3)
    for _ in range(6):
        grad = torch.randn(64, 32, generator=g)
        grad[:5] = 0.0  # dense groups update zero-gradient entries too
        ours.grad, ref.grad, table.grad = grad.clone(), grad.clone(), torch.zeros(10, 2)
        opt.step()
        torch_opt.step()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert "counts" not in opt.state[ours] and torch.equal(table.detach(), torch.zeros(10, 2))


def test_state_arrays_round_trip_and_old_snapshots() -> None:
    table = torch.zeros(6, 2, requires_grad=True)
    w = torch.zeros(3, requires_grad=True)
    opt = TableAdam([{"params": [table]}, {"params": [w]}], lr=LR, betas=BETAS, eps=EPS)
    for step in range(5):
        table.grad = torch.zeros(6, 2)
        table.grad[: step + 1] = 1.0  # row r first touched at step r
        w.grad = torch.ones(3)
        opt.step()
    arrays = opt.state_arrays()
    assert arrays["opt.0.0.counts"].dtype == np.int32 and "opt.1.0.counts" not in arrays
    assert arrays["opt.0.0.counts"][:, 0].tolist() == [5, 4, 3, 2, 1, 0]
    table2, w2 = table.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    other = TableAdam([{"params": [table2]}, {"params": [w2]}], lr=LR, betas=BETAS, eps=EPS)
    other.load_state_arrays(arrays)
    assert torch.equal(other.state[table2]["counts"], opt.state[table]["counts"])
    assert other.state[table2]["step"] == 5 and torch.equal(other.state[w2]["exp_avg"], opt.state[w]["exp_avg"])
    # arrays from before per-entry counts: entries with a second moment count as updated at every step so far
    old = {k: v for k, v in arrays.items() if not k.endswith(".counts")}
    third = TableAdam([{"params": [table2]}, {"params": [w2]}], lr=LR, betas=BETAS, eps=EPS)
    third.load_state_arrays(old)
    assert third.state[table2]["counts"][:, 0].tolist() == [5, 5, 5, 5, 5, 0]
    # counts out of range (a damaged file) are clamped: the kernels index the corrections table by them
    damaged = {**arrays, "opt.0.0.counts": np.full((6, 2), -7, dtype=np.int32)}
    damaged["opt.0.0.counts"][0] = 1 << 30
    fourth = TableAdam([{"params": [table2]}, {"params": [w2]}], lr=LR, betas=BETAS, eps=EPS)
    fourth.load_state_arrays(damaged)
    max_count = fourth.corrections(BETAS, table2.device).shape[0] - 1
    assert fourth.state[table2]["counts"][:, 0].tolist() == [max_count, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="shape"):
        bad = TableAdam([torch.zeros(4, 2, requires_grad=True)], lr=LR)
        bad.load_state_arrays(arrays)
