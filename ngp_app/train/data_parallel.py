"""Data-parallel training under ``torchrun``: every rank draws the same global batch of rays (same generator, same
state) and keeps rows ``rank::world``; the gradients of the step's parameters are summed over the ranks in buckets
and divided by the global count of valid rays, so every rank takes the single-process step of the global batch and
the parameters, the generator and hence the occupancy grid stay identical on every rank. Counters read back (loss,
sample counts, the vote to stop) are summed too. Imported only when ``torchrun`` launched several ranks."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

from ..distributed import Ranks

log = logging.getLogger(__name__)


class RayShare:
    """This rank's share of each step (rows ``rank::world`` of the global batch) and the sums over the ranks."""

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks
        self.vote = False  # this rank wants to stop (its time is up, or a signal came)
        self.stop = False  # some rank voted to stop at the last read-back: every rank stops after this step

    @property
    def world(self) -> int:
        return self.ranks.world

    def rows(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's rows (``rank::world``) of each of ``tensors``."""
        return tuple(t[self.ranks.rank :: self.ranks.world] for t in tensors)

    def part(self, slots: int) -> int:
        """This rank's part of a buffer of ``slots`` sample slots sized for the global batch."""
        return -(-slots // self.ranks.world)

    def reduce_gradients(self, params: Iterable[torch.Tensor], count: torch.Tensor) -> torch.Tensor:
        """Sum the gradients of ``params`` and ``count`` (this rank's valid rays) over the ranks and divide the
        gradients by the global count (at least 1); returns that count. The loss must be this rank's sum."""
        grads = [p.grad for p in params if p.grad is not None]
        total = count.detach().to(torch.float32).reshape(1).clone()
        self.ranks.all_reduce_([*grads, total])
        total = total.clamp(min=1.0)
        for g in grads:
            g.div_(total)
        return total[0]

    def reduce_counters(self, values: torch.Tensor) -> list[float]:
        """The read-back ``values`` summed over the ranks, with this rank's vote to stop; sets ``stop``."""
        both = torch.cat([values.detach().double().reshape(-1), values.new_tensor([float(self.vote)]).double()])
        self.ranks.all_reduce_([both])
        summed = both.tolist()
        self.stop = summed[-1] > 0
        return summed[:-1]


def share_rays(trainer: object, ranks: Ranks) -> RayShare:
    """Make ``trainer`` (a ``Trainer``) take this rank's share of every step; NgpError for what cannot be shared."""
    from ..errors import NgpError

    if getattr(trainer, "error_map", None) is not None:
        raise NgpError("error-map sampling is not shared over several ranks yet: train with --error-map off")
    share = RayShare(ranks)
    trainer.share = share  # type: ignore[attr-defined]
    log.info("training over %d ranks: each takes 1/%d of every step's rays", ranks.world, ranks.world)
    return share
