"""The trainer's Adam: hash-table groups take a sparse step with per-entry step counts, the others a dense one.

Sparse groups (the hash table) leave entries whose gradient is exactly zero untouched (Müller et al. 2022) and
count steps per entry, as tiny-cuda-nn does: an entry first touched at step 20,000 gets the bias corrections of
its own first update, not those of step 20,000. Dense groups (MLPs, pose corrections) are ``torch.optim.Adam``
with L2 ``weight_decay``. The steps themselves are the backend's (``Ops.sparse_adam``, ``Ops.dense_adam``): the
PyTorch references (``compute.reference``), or the native kernels; :func:`table_adam` binds a backend's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from typing import Any, Callable

import numpy as np
import torch

from ..compute.reference import dense_adam_reference_, sparse_adam_reference_
from ..ops import Ops

MAX_CORRECTION_COUNT = 1 << 22  # table rows at most (betas within 1e-6 of 1 would need more: counts saturate here)


def bias_corrections(beta1: float, beta2: float) -> torch.Tensor:
    """(max_count + 1, 2) float32: row c holds 1 / (1 - beta1^c) and sqrt(1 - beta2^c), computed in float64.

    max_count is the first count where both round to 1.0 in float32; counts saturate there, so the table is exact
    for every count. Row 0 (never used for an update) is (1, 1).
    """

    def saturation(beta: float) -> int:
        return 1 if beta <= 0.0 else int(math.ceil(27 * math.log(2) / -math.log(beta))) + 2

    n = min(max(saturation(beta1), saturation(beta2)), MAX_CORRECTION_COUNT)
    c = np.arange(1, n + 1, dtype=np.float64)
    table = np.ones((n + 1, 2), dtype=np.float32)
    table[1:, 0] = 1.0 / (1.0 - beta1**c)
    table[1:, 1] = np.sqrt(1.0 - beta2**c)
    saturated = np.flatnonzero((table[1:] == 1.0).all(axis=1))
    last = int(saturated[0]) + 1 if saturated.size else n
    return torch.from_numpy(table[: last + 1].copy())


SparseStep = Callable[..., None]  # sparse_adam_reference_'s signature
DenseStep = Callable[..., None]  # dense_adam_reference_'s signature


class TableAdam(torch.optim.Optimizer):
    """Adam whose groups listed in ``sparse_groups`` (default: group 0, the hash table) take ``sparse_step`` with
    per-entry step counts (state ``counts``, int32 like the parameter), the others ``dense_step`` (defaults: the
    PyTorch references; the native backend passes its kernels). State per parameter: ``step`` (int, the global
    count), ``exp_avg``, ``exp_avg_sq`` and, in sparse groups, ``counts``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        sparse_groups: tuple[int, ...] = (0,),
        sparse_step: SparseStep = sparse_adam_reference_,
        dense_step: DenseStep = dense_adam_reference_,
        **_ignored: Any,  # torch.optim.Adam options without meaning here (fused, foreach, ...)
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        for i, group in enumerate(self.param_groups):
            group["sparse"] = i in sparse_groups
        self.sparse_step, self.dense_step = sparse_step, dense_step
        self._corrections: dict[tuple[float, float, torch.device], torch.Tensor] = {}

    def corrections(self, betas: tuple[float, float], device: torch.device) -> torch.Tensor:
        key = (float(betas[0]), float(betas[1]), device)
        if key not in self._corrections:
            self._corrections[key] = bias_corrections(*key[:2]).to(device)
        return self._corrections[key]

    def init_state(self, param: torch.Tensor, sparse: bool) -> dict[str, Any]:
        """Fresh state of ``param`` (zero moments and counts)."""
        state: dict[str, Any] = {"step": 0, "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
        if sparse:
            state["counts"] = torch.zeros_like(param, dtype=torch.int32)
        return state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.dtype != torch.float32 or not p.is_contiguous():
                    raise TypeError("TableAdam needs contiguous float32 parameters")
                state = self.state[p]
                if not state:
                    state.update(self.init_state(p, group["sparse"]))
                state["step"] += 1
                grad = p.grad.contiguous()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if group["sparse"]:
                    corr = self.corrections((beta1, beta2), p.device)
                    self.sparse_step(p, grad, m, v, state["counts"], corr, lr, beta1, beta2, eps, wd)
                else:
                    self.dense_step(p, grad, m, v, state["step"], lr, beta1, beta2, eps, wd)
        return loss

    # ----------------------------------------------------------------------------------------- snapshots
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state as arrays named ``opt.<group>.<index>.<key>`` (exp_avg, exp_avg_sq, step, counts)."""
        out: dict[str, np.ndarray] = {}
        for gi, group in enumerate(self.param_groups):
            for pi, param in enumerate(group["params"]):
                st = self.state.get(param)
                if not st:
                    continue
                out[f"opt.{gi}.{pi}.exp_avg"] = st["exp_avg"].detach().cpu().numpy()
                out[f"opt.{gi}.{pi}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().numpy()
                out[f"opt.{gi}.{pi}.step"] = np.asarray(float(st["step"]), dtype=np.float64)
                if "counts" in st:
                    out[f"opt.{gi}.{pi}.counts"] = st["counts"].cpu().numpy()
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` wrote; parameters without saved moments keep their state. Snapshots
        from before per-entry counts have none: an entry then counts as updated at every step so far if its second
        moment is non-zero (the corrections it was trained with), else as never updated. Raises ValueError when a
        shape does not fit."""
        for gi, group in enumerate(self.param_groups):
            for pi, param in enumerate(group["params"]):
                key = f"opt.{gi}.{pi}"
                if f"{key}.exp_avg" not in arrays:
                    continue
                st = self.init_state(param, group["sparse"])
                st["step"] = int(float(arrays[f"{key}.step"]))
                for name in ("exp_avg", "exp_avg_sq", "counts"):
                    if name not in st or f"{key}.{name}" not in arrays:
                        continue
                    value = torch.from_numpy(np.asarray(arrays[f"{key}.{name}"]))
                    if value.shape != param.shape:
                        raise ValueError(
                            f"optimiser state {key}.{name} has shape {tuple(value.shape)}, expected "
                            f"{tuple(param.shape)}"
                        )
                    st[name].copy_(value)
                if "counts" in st:
                    max_count = self.corrections(group["betas"], param.device).shape[0] - 1
                    if f"{key}.counts" not in arrays:
                        st["counts"].copy_((st["exp_avg_sq"] != 0).int() * min(st["step"], max_count))
                    else:  # the kernels index the corrections by the count: keep a damaged file's counts in range
                        st["counts"].clamp_(0, max_count)
                self.state[param] = st


def table_adam(ops: Ops) -> Callable[..., TableAdam]:
    """The trainer's Adam on the backend ``ops``: :class:`TableAdam` with its steps bound (call it as the class)."""
    return partial(TableAdam, sparse_step=ops.sparse_adam, dense_step=ops.dense_adam)
