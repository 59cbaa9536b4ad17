"""Pose refinement on the bundled scene with perturbed training poses (1 degree, 0.01 units per image): training
with and without it for STEPS steps at extrinsic learning rate LR, printing pose errors and held-out PSNR.
Usage: python scripts/pose_refinement_experiment.py STEPS LR   (docs/benchmarks.md has the results)"""

import math
import sys
import time

import torch

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.train.evaluate import evaluate
from ngp_app.train.extrinsics import axis_angle_to_matrix
from ngp_app.train.trainer import Trainer

torch.set_num_threads(2)
steps = int(sys.argv[1])
lr = float(sys.argv[2])
scene = load_scene("scenes/demo", "train", downscale=2)
test = load_scene("scenes/demo", "test", downscale=2)
gt = scene.c2w.clone()
g = torch.Generator().manual_seed(0)
w = torch.randn(scene.n_frames, 3, generator=g)
w = w / w.norm(dim=-1, keepdim=True) * math.radians(1.0)
t = torch.randn(scene.n_frames, 3, generator=g)
t = t / t.norm(dim=-1, keepdim=True) * 0.01
R = axis_angle_to_matrix(w)
scene.c2w = torch.cat([R @ gt[:, :, :3], (gt[:, :, 3] + t)[..., None]], -1)


def err(c2w):
    rot = c2w[:, :, :3] @ gt[:, :, :3].transpose(1, 2)
    ang = torch.rad2deg(torch.arccos(((rot.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    return float(ang.mean()), float((c2w[:, :, 3] - gt[:, :, 3]).norm(dim=-1).mean())


for on in (False, True):
    cfg = load_config("base", {"training": {"optimize_extrinsics": on, "extrinsic_learning_rate": lr}})
    tr = Trainer(scene, cfg, seed=0)
    t0 = time.time()
    tr.train(steps=steps)
    c2w = tr.poses.corrected_c2w(scene.c2w.float())
    res = evaluate(tr.eval_nerf, test)
    print(
        f"refine={on} lr={lr} steps={steps} pose err deg/trans {err(c2w)} start {err(scene.c2w)} "
        f"test psnr {res['psnr']:.2f} ({time.time() - t0:.0f}s)",
        flush=True,
    )
