"""Host synchronisations of a block of code: the operators that read a device value on the host (or need a
data-dependent size, which is the same) as the torch profiler records them, plus ``Tensor.tolist``/``numpy`` calls,
which it does not record. Listed once, for ``ngp bench step`` and the sync-free-step tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Callable

import torch
from torch.profiler import ProfilerActivity, profile

# A step that runs any of these waits for the device (on CUDA) and cannot be captured in a CUDA graph.
HOST_SYNC_OPS = frozenset(
    {
        "aten::_local_scalar_dense",  # .item(), float(t), int(t), bool(t)
        "aten::item",
        "aten::is_nonzero",  # if tensor: ...
        "aten::nonzero",  # also behind boolean-mask indexing (aten::index / index_put_ with a bool mask)
        "aten::nonzero_numpy",
        "aten::argwhere",
        "aten::bincount",
        "aten::masked_select",
        "aten::masked_scatter",
        "aten::masked_scatter_",
        "aten::unique_consecutive",
        "aten::_unique",
        "aten::_unique2",
        "aten::unique_dim",
        "aten::equal",
        "aten::allclose",
        "aten::repeat_interleave",  # with tensor repeats: output size from the data
    }
)
TENSOR_READS = ("tolist", "numpy")  # host reads the profiler does not see


def host_syncs(events: Iterable[Any]) -> Counter[str]:
    """Count the host-sync operators among profiler events (``prof.events()`` of ``torch.profiler.profile``)."""
    return Counter(e.name for e in events if e.name in HOST_SYNC_OPS)


def count_ops(events: Iterable[Any]) -> int:
    """Number of top-level ``aten::`` operator calls (ops called by other ops are not counted again)."""
    return sum(1 for e in events if e.name.startswith("aten::") and getattr(e, "cpu_parent", None) is None)


class HostReads:
    """Result of :func:`watch_host_reads`: ``counts`` (operator or ``Tensor.<method>`` -> calls) and the profile."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.profile: Any = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@contextmanager
def watch_host_reads(cuda: bool = False) -> Iterator[HostReads]:
    """Profile the block (CPU activity, and CUDA kernels with ``cuda``) and count its host reads."""
    result = HostReads()
    originals: dict[str, Callable[..., Any]] = {name: getattr(torch.Tensor, name) for name in TENSOR_READS}

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            result.counts[f"Tensor.{name}"] += 1
            return fn(self, *args, **kwargs)

        return read

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, counting(name, fn))
        with profile(activities=activities) as prof:
            yield result
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
    result.profile = prof
    result.counts.update(host_syncs(prof.events()))
