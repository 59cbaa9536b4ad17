"""Per-step costs of instant-ngp's quality details on this machine: ms of a whole training step (config ``base``,
the bundled scene, native backend) next to the hash-table Adam with global and per-entry bias correction, the
weight-average update and one occupancy-grid update, timed in alternation so that a shared machine's load hits
all alike; plus the one-off marking of cells no training camera sees. Usage: python scripts/quality_step_costs.py
[ROUNDS] [SCENE]. Prints one JSON object (medians in ms)."""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.native import ops
from ngp_app.render.occupancy import n_cascades_for
from ngp_app.render.visibility import unseen_cells
from ngp_app.train.trainer import Trainer


def main(rounds: int = 12, scene_path: str = "scenes/demo") -> dict[str, float]:
    torch.set_num_threads(2)
    scene = load_scene(scene_path, "train", progress=False)
    t = time.perf_counter()
    unseen_cells(
        n_cascades_for(scene.aabb_scale),
        128,
        scene.c2w,
        scene.intrinsics,
        torch.stack([scene.widths, scene.heights], -1),
        scene.distortion,
    )
    mark_ms = (time.perf_counter() - t) * 1e3
    trainer = Trainer(scene, load_config("base"), backend="native", seed=0)
    for _ in range(40):
        trainer.step()
    table = trainer.model.encoding.table
    grad = table.grad.clone()
    p, m, v = table.detach().clone(), torch.zeros_like(table), torch.zeros_like(table)
    counts = torch.zeros_like(table, dtype=torch.int32)
    corr = trainer.optimizer.corrections((0.9, 0.99), table.device)
    cases = {
        "train step": trainer.step,
        "table adam, global step": lambda: ops.adam_step(p, grad, m, v, 0.01, 1.0, 0.9, 0.99, 1e-15, 0.0, True),
        "table adam, per-entry counts": lambda: ops.adam_step_counted(
            p, grad, m, v, counts, corr, 0.01, 0.9, 0.99, 1e-15, 0.0
        ),
        "weight average update": lambda: trainer.ema.update(trainer.model),
        "occupancy grid update": trainer.update_grid,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    out = {k: round(1e3 * statistics.median(v), 2) for k, v in times.items()}
    out["mark untrained cells (once)"] = round(mark_ms, 1)
    out["table entries"] = table.numel()
    out["entries with a gradient"] = round(float((grad != 0).float().mean()), 3)
    return out


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) if i == 0 else a for i, a in enumerate(sys.argv[1:])))))
