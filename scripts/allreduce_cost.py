"""Measure what summing one training step's gradients over the ranks costs (docs/scaling.md, "Training on several
ranks"): the dense all-reduce the trainer does (``Ranks.all_reduce_``: the whole table and MLP gradients) against
gathering only the table rows the step touched. Run under torchrun, e.g. on this CPU with gloo:

    torchrun --standalone --nproc-per-node 2 scripts/allreduce_cost.py --config small --threads 1

Each rank trains 3 steps of the bundled scene on the whole batch (so its touched rows are a full step's, an upper
bound of a rank's share) and then times both exchanges of its last gradient; rank 0 prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.distributed import Ranks, joined
from ngp_app.train.trainer import Trainer

DEMO = Path(__file__).resolve().parents[1] / "scenes" / "demo"
log = logging.getLogger("allreduce_cost")


def timed(call: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``call`` over ``repeats`` runs (after one warm-up), all ranks in step."""
    call()
    times = []
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def touched_exchange(ranks: Ranks, table_grad: torch.Tensor) -> torch.Tensor:
    """The summed table gradient from every rank's touched rows only: counts, then padded rows and indices, gathered
    and added up."""
    rows = table_grad.abs().sum(1).nonzero().squeeze(1)
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(ranks.world)]
    dist.all_gather(counts, torch.tensor([rows.numel()]))
    most = int(max(c.item() for c in counts))
    idx = torch.full((most,), -1, dtype=torch.int64)
    idx[: rows.numel()] = rows
    vals = torch.zeros(most, table_grad.shape[1])
    vals[: rows.numel()] = table_grad[rows]
    all_idx = [torch.empty_like(idx) for _ in range(ranks.world)]
    all_vals = [torch.empty_like(vals) for _ in range(ranks.world)]
    dist.all_gather(all_idx, idx)
    dist.all_gather(all_vals, vals)
    total = torch.zeros_like(table_grad)
    for i, v in zip(all_idx, all_vals):
        keep = i >= 0
        total.index_add_(0, i[keep], v[keep])
    return total


def measure(ranks: Ranks, config_name: str, repeats: int) -> dict[str, Any]:
    """Train 3 steps on this rank alone, then time the dense and the touched-rows exchange of the last gradient."""
    scene = load_scene(DEMO, "train", downscale=8)
    trainer = Trainer(scene, load_config(config_name), device="cpu", backend="torch", seed=ranks.rank)
    for _ in range(3):
        trainer.step()
    grads = [p.grad for g in trainer.optimizer.param_groups for p in g["params"] if p.grad is not None]
    table = trainer.model.encoding.table.grad
    touched = int((table.abs().sum(1) > 0).sum())
    dense_bytes = sum(g.numel() * g.element_size() for g in grads)
    dense_s = timed(lambda: ranks.all_reduce_([g.clone() for g in grads]), repeats)
    clone_s = timed(lambda: [g.clone() for g in grads], repeats)  # the clones are not the exchange's cost
    touched_s = timed(lambda: touched_exchange(ranks, table), repeats)
    return {
        "config": config_name,
        "ranks": ranks.world,
        "table_rows": table.shape[0],
        "touched_rows": touched,
        "dense_bytes": dense_bytes,
        "table_bytes": table.numel() * table.element_size(),
        "touched_bytes_per_rank": touched * (8 + table.shape[1] * 4),
        "dense_allreduce_s": round(dense_s - clone_s, 4),
        "touched_gather_s": round(touched_s, 4),
        "step_s": round(trainer.train_seconds / 3, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    with joined() as ranks:
        if ranks is None:
            raise SystemExit("run under torchrun with --nproc-per-node 2 or more")
        result = measure(ranks, args.config, args.repeats)
        if ranks.first:
            print(json.dumps(result))


if __name__ == "__main__":
    main()
