"""Several processes (ranks) under ``torchrun``: joining them with torch.distributed, agreeing on failures, summing
tensors over the ranks (gradients, in buckets), and dealing out independent items (video frames, evaluation
images) round-robin with rank 0 collecting them in order.

Nothing here runs, and ``torch.distributed`` is not initialised, unless ``torchrun`` launched more than one rank
(``WORLD_SIZE`` > 1). Every collective has a timeout (``NGP_DIST_TIMEOUT`` seconds, default 1800), so a rank that
dies or hangs ends the others with one error line instead of blocking them forever. docs/scaling.md tells more.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator
from typing import Any, Callable

from .crash import failure_line
from .errors import NgpError, RankFailed

log = logging.getLogger(__name__)

TIMEOUT_ENV = "NGP_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
Failure = tuple[int, str, int]  # (rank, the line it would print, exit status)
BUCKET_BYTES = 32 << 20  # all_reduce_ flattens tensors into buffers of at most this size


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher setting its environment) started more than one rank."""
    return _env_int("WORLD_SIZE", 1) > 1


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 without one)."""
    return _env_int("RANK", 0)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise NgpError(f"{name}={os.environ[name]!r} in the environment is not an integer") from None


def timeout_s() -> float:
    """The collectives' timeout: ``NGP_DIST_TIMEOUT`` seconds (> 0), default 1800."""
    text = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise NgpError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return value


def with_rank(line: str, rank: int) -> str:
    """``ngp: error: msg`` as ``ngp: error: rank N: msg`` (rank 0's lines stay as they are)."""
    if rank == 0:
        return line
    head, sep, tail = line.partition("error: ")
    return f"{head}{sep}rank {rank}: {tail}" if sep else f"rank {rank}: {line}"


class Ranks:
    """This process's place among the ranks (``rank`` of ``world``; ``local_rank`` on its machine) and the
    collectives the commands use. Build it with :func:`joined`."""

    def __init__(self, rank: int, world: int, local_rank: int, timeout: float) -> None:
        self.rank, self.world, self.local_rank, self.timeout = rank, world, local_rank, timeout
        self.broken = False  # a collective failed: the others are gone or out of step; no further collectives

    @property
    def first(self) -> bool:
        """Whether this is rank 0, the one that writes outputs and prints."""
        return self.rank == 0

    def device(self, device: Any) -> Any:
        """The device this rank renders on: ``cuda:LOCAL_RANK`` for a CUDA ``device`` (an explicit index is refused:
        every rank would share it), else ``device``."""
        import torch

        if device.type != "cuda":
            return device
        if device.index is not None:
            raise NgpError(f"--device {device}: under torchrun each rank takes cuda:LOCAL_RANK; give --device cuda")
        if self.local_rank >= torch.cuda.device_count():
            raise NgpError(
                f"LOCAL_RANK {self.local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}; "
                "launch at most that many ranks per node"
            )
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def _collective(self, name: str, call: Callable[[], Any]) -> Any:
        if self.broken:
            raise NgpError(f"rank {self.rank}: the other ranks are gone")
        try:
            return call()
        except (RuntimeError, ValueError) as exc:  # gloo/NCCL errors, timeouts included, are RuntimeErrors
            self.broken = True
            raise NgpError(
                f"rank {self.rank}: lost the other ranks in {name} (a rank died, or took longer than "
                f"{self.timeout:g} s: {TIMEOUT_ENV}): {' '.join(str(exc).split())[:200]}"
            ) from None

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        self._collective("all_gather", lambda: dist.all_gather_object(out, obj))
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None on the others)."""
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.world if self.first else None
        self._collective("gather", lambda: dist.gather_object(obj, out, dst=0))
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        import torch.distributed as dist

        box = [obj]
        self._collective("broadcast", lambda: dist.broadcast_object_list(box, src=0))
        return box[0]

    def all_reduce_(self, tensors: list[Any], bucket_bytes: int = BUCKET_BYTES) -> None:
        """Sum ``tensors`` over the ranks, in place: one collective per bucket (:func:`buckets`); a bucket of one
        contiguous tensor is reduced where it lies, the others through one flat buffer."""
        import torch
        import torch.distributed as dist

        for bucket in buckets(tensors, bucket_bytes):
            if len(bucket) == 1 and bucket[0].is_contiguous():
                flat = bucket[0]
            else:
                flat = torch.cat([t.reshape(-1) for t in bucket])
            self._collective("all_reduce", lambda flat=flat: dist.all_reduce(flat))
            if flat is bucket[0]:
                continue
            for t, part in zip(bucket, flat.split([t.numel() for t in bucket])):
                t.copy_(part.view_as(t))

    def fail(self, failure: Failure) -> RankFailed:
        """The agreed error of ``failure`` as this rank raises it (printed by rank 0 only)."""
        rank, line, code = failure
        return RankFailed(with_rank(line, rank), code, shown=self.first)

    def failure(self, exc: BaseException) -> Failure:
        """``exc`` on this rank as what the others are told."""
        if isinstance(exc, RankFailed):
            return (0, exc.line, exc.code)
        line, code = failure_line(exc)
        return (self.rank, line, code)

    @contextlib.contextmanager
    def agree(self) -> Iterator[None]:
        """Run the block on every rank, then compare: when it failed anywhere, every rank raises the lowest failing
        rank's error (:class:`RankFailed`), so all stop together with one line."""
        mine: Failure | None = None
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the other ranks, then raised as agreed
            if self.broken:
                raise
            mine = self.failure(exc)
        failed = [f for f in self.all_gather(mine) if f is not None]
        if failed:
            raise self.fail(failed[0])

    def shards(self, n: int, compute: Callable[[int], Any]) -> Shards:
        """Items ``0..n-1`` dealt round-robin over the ranks (:class:`Shards`)."""
        return Shards(self, n, compute)


def buckets(tensors: list[Any], bucket_bytes: int) -> list[list[Any]]:
    """``tensors`` in order, grouped into runs of one dtype and device of at most ``bucket_bytes`` (a larger tensor
    is a bucket of its own)."""
    out: list[list[Any]] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        last = out[-1] if out else None
        if last is None or (t.dtype, t.device) != (last[0].dtype, last[0].device) or size + nbytes > bucket_bytes:
            out.append([t])
            size = nbytes
        else:
            last.append(t)
            size += nbytes
    return out


class Shards:
    """Items ``0..n-1`` computed round-robin: in round ``k`` rank ``r`` computes item ``k * world + r``, rank 0
    gathers the round and yields its results in item order, so it holds one round at a time. Use it as a context
    (``with ranks.shards(n, f) as items``) and iterate it on every rank (only rank 0 sees items); a failure on any
    rank, or of rank 0's use of the items, stops every rank with one agreed error."""

    def __init__(self, ranks: Ranks, n: int, compute: Callable[[int], Any]) -> None:
        self.ranks, self.n, self.compute = ranks, n, compute
        self.stage = "round"  # what this rank owes the others: a "round", the "final" word, or nothing ("done")

    def __enter__(self) -> Shards:
        return self

    def _rounds(self) -> int:
        return -(-self.n // self.ranks.world)

    def __iter__(self) -> Iterator[Any]:
        ranks = self.ranks
        for k in range(self._rounds()):
            i = k * ranks.world + ranks.rank
            item: tuple[Failure | None, Any] = (None, None)
            if i < self.n:
                try:
                    item = (None, self.compute(i))
                except Exception as exc:  # noqa: BLE001 - sent to rank 0, which stops every rank with it
                    item = (ranks.failure(exc), None)
            got = ranks.gather(item)
            status = None
            if got is not None:
                status = next((failure for failure, _ in got if failure is not None), None)
            status = ranks.broadcast(status)
            self.stage = "round" if k + 1 < self._rounds() else "final"
            if status is not None:
                self.stage = "done"
                raise ranks.fail(status)
            for j, (_, result) in enumerate(got or []):
                if k * ranks.world + j < self.n:
                    yield result
        self.stage = "final"

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        """Rank 0 settles what it owes (the round the others wait in, then the outcome); the others wait for the
        outcome when their rounds ended normally."""
        ranks = self.ranks
        if ranks.broken or self.stage == "done" or isinstance(exc, RankFailed):
            return
        if ranks.first:
            failure = ranks.failure(exc) if isinstance(exc, Exception) else None
            if failure is None and (exc is not None or self.stage != "final"):
                failure = (0, "ngp: error: rank 0 stopped before the last item", 2)
            if self.stage == "round":
                ranks.gather((None, None))
            ranks.broadcast(failure)
            self.stage = "done"
            return
        if exc is None:  # the rounds are over: wait for rank 0's use of the items
            status = ranks.broadcast(None)
            self.stage = "done"
            if status is not None:
                raise ranks.fail(status)


@contextlib.contextmanager
def joined() -> Iterator[Ranks | None]:
    """Join the other ranks when ``torchrun`` launched several (gloo; with NCCL too where CUDA is, for the ranks that
    render on it; object collectives stay on the CPU) and leave the group after the block; None without ``torchrun``."""
    if not launched():
        yield None
        return
    import torch
    import torch.distributed as dist

    rank, world, local = env_rank(), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    timeout = timeout_s()
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout), rank=rank, world_size=world)
    except (RuntimeError, ValueError) as exc:
        raise NgpError(
            f"rank {rank}: could not join the other {world - 1} rank(s) ({' '.join(str(exc).split())[:200]})"
        ) from None
    log.debug("rank %d of %d joined (%s)", rank, world, backend)
    try:
        yield Ranks(rank, world, local, timeout)
    finally:
        dist.destroy_process_group()


def agreed(ranks: Ranks | None) -> contextlib.AbstractContextManager[None]:
    """``ranks.agree()``, or nothing to agree on for one process (None)."""
    return ranks.agree() if ranks is not None else contextlib.nullcontext()
