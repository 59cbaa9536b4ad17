"""Camera pose refinement: rotation maths against hand-computed cases, corrected rays and cameras agree, the
corrections train only when enabled, and they reach snapshots."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ngp_app.config import load_config
from ngp_app.data.cameras import pixel_rays
from ngp_app.data.loaders import load_scene
from ngp_app.train.extrinsics import PoseRefinement, axis_angle_to_matrix
from ngp_app.train.trainer import Trainer

TINY = {"training": {"target_batch_size_cpu": 4096}, "encoding": {"log2_hashmap_size": 14}}


def test_axis_angle_hand_cases_and_gradient() -> None:
    r = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2], [0.0, 0.0, 0.0], [math.pi, 0.0, 0.0]]))
    assert torch.allclose(r[0], torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), atol=1e-6)
    assert torch.equal(r[1], torch.eye(3))
    assert torch.allclose(r[2], torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6)
    w = torch.randn(50, 3, dtype=torch.float64) * torch.logspace(-6, 0, 50, dtype=torch.float64)[:, None]
    rot = axis_angle_to_matrix(w)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(50, dtype=torch.float64))
    w0 = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)  # the derivative at 0 is the cross-product matrix
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (w0,))
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (w.detach()[-5:].clone().requires_grad_(),))


def test_corrected_rays_are_the_corrected_cameras_rays() -> None:
    poses = PoseRefinement(3)
    with torch.no_grad():
        poses.delta.copy_(torch.randn(3, 6) * 0.1)
    c2w = torch.cat([torch.linalg.qr(torch.randn(3, 3, 3))[0], torch.randn(3, 3, 1)], dim=-1)
    intr = torch.tensor([50.0, 50.0, 20.0, 15.0])
    images = torch.tensor([0, 1, 2, 2, 1])
    u, v = torch.rand(5) * 40, torch.rand(5) * 30
    o, d = pixel_rays(u, v, c2w[images], intr)
    o2, d2 = poses.apply(o, d, images)
    o3, d3 = pixel_rays(u, v, poses.corrected_c2w(c2w)[images], intr)
    assert torch.allclose(o2, o3, atol=1e-6) and torch.allclose(d2, d3, atol=1e-6)
    assert torch.allclose(d2.norm(dim=-1), torch.ones(5), atol=1e-6)


def test_poses_train_only_when_enabled_and_reach_snapshots(demo_scene: Path, tmp_path: Path) -> None:
    from ngp_app.snapshot import load_snapshot, save_snapshot

    scene = load_scene(demo_scene, "train", downscale=8)
    off = Trainer(scene, load_config("small", TINY), seed=1)
    for _ in range(5):
        off.step()
    assert not off.optimize_extrinsics and torch.count_nonzero(off.poses.delta) == 0
    assert "extrinsics_refined" not in off.scene_metadata()
    on = Trainer(
        scene,
        load_config("small", {**TINY, "training": {"target_batch_size_cpu": 4096, "optimize_extrinsics": True}}),
        seed=1,
    )
    for _ in range(5):
        on.step()
    moved = on.poses.delta.detach().abs().amax(dim=1) > 0
    assert bool(moved.any())  # images that had rays in the batches got corrections
    assert float(on.poses.delta.detach().abs().max()) < 0.01  # small steps at the extrinsic learning rate
    meta = on.scene_metadata()
    assert meta["extrinsics_refined"] is True
    refined = torch.tensor(meta["c2w"])
    assert torch.allclose(refined, on.poses.corrected_c2w(scene.c2w.float()), atol=1e-6)
    assert not torch.allclose(refined, scene.c2w.float())
    path = save_snapshot(tmp_path, on.nerf, on.config, meta, on.step_count)
    assert torch.allclose(torch.tensor(load_snapshot(path).scene["c2w"]), refined)
    on.optimize_extrinsics = False  # switched off (the app's checkbox): the corrections stay where they are
    before = on.poses.delta.detach().clone()
    for _ in range(3):
        on.step()
    assert torch.equal(on.poses.delta.detach(), before)


def _trained(demo_scene: Path, backend: str) -> tuple[Trainer, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    scene = load_scene(demo_scene, "train", downscale=8)
    tr = Trainer(scene, load_config("small", TINY), backend=backend, seed=2)
    for _ in range(30):
        tr.step()
    o, d, target, images = scene.sample_rays_with_images(64, torch.Generator().manual_seed(5))
    return tr, (o, d, target[:, :3] * target[:, 3:] + (1.0 - target[:, 3:]), images)


def _fixed_sample_loss(model, composite, samples, poses, rays, dtype, threshold=1e-4):
    """The loss with the samples held where the unrefined rays put them: what the pose gradient differentiates."""
    o, d, target, images = rays
    ro, rd = (v.to(dtype) for v in poses.apply(o.to(poses.delta.dtype), d.to(poses.delta.dtype), images))
    ri, t = samples.ray_indices, samples.t.to(dtype)
    sigma, rgb = model(ro[ri] + t[:, None] * rd[ri], rd[ri])
    res = composite(sigma, rgb, t, samples.dt.to(dtype), ri, samples.offsets, ro.shape[0], threshold)
    return ((res["rgb"] + (1.0 - res["opacity"])[:, None] - target.to(dtype)) ** 2).mean()


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_training_render_gives_the_fixed_sample_pose_gradient(demo_scene: Path, backend: str) -> None:
    # render_rays_train places samples along the detached rays and recomputes their positions from the rays: its
    # pose gradient must be the gradient of the rendering with those samples held fixed.
    from ngp_app.compute import get_ops
    from ngp_app.native import loader
    from ngp_app.render.renderer import render_rays_train

    if backend == "native" and not loader.available(torch.device("cpu"))[0]:
        pytest.skip("native extension unavailable")
    tr, rays = _trained(demo_scene, backend)
    o, d, target, images = rays
    poses = PoseRefinement(tr.scene.n_frames)
    ro, rd = poses.apply(o, d, images)
    out = render_rays_train(
        tr.model, tr.grid, tr.aabb, ro, rd, tr.march, torch.ones(3), 1 << 20, 1 << 20, ops=get_ops(backend)
    )
    ((out["rgb"] - target) ** 2).mean().backward()
    via_render = poses.delta.grad.clone()
    march, composite = get_ops(backend).march, get_ops(backend).composite
    samples = march(o, d, tr.grid, tr.aabb, tr.march, max_samples=1 << 20)
    # it trains on the live samples only (they carry the whole gradient: test_batch.py)
    assert samples.n_samples == int(out["marched"].total) >= int(out["kept"].total) > 0
    poses.delta.grad = None
    _fixed_sample_loss(tr.model, composite, samples, poses, rays, torch.float32).backward()
    assert float(via_render.abs().max()) > 0
    torch.testing.assert_close(via_render, poses.delta.grad, rtol=1e-4, atol=1e-7)


def test_pose_gradient_matches_finite_differences(demo_scene: Path) -> None:
    # In float64 (torch reference), against central differences for every component of one image's correction
    # (no early termination here: a sample crossing the transmittance threshold would be a jump).
    import copy

    from ngp_app.compute import get_ops
    from ngp_app.render.composite import composite

    tr, rays = _trained(demo_scene, "torch")
    model = copy.deepcopy(tr.model).double()
    samples = get_ops("torch").march(rays[0], rays[1], tr.grid, tr.aabb, tr.march, max_samples=1 << 20)
    poses = PoseRefinement(tr.scene.n_frames).double()
    _fixed_sample_loss(model, composite, samples, poses, rays, torch.float64, 0.0).backward()
    img = int(rays[3][0])
    eps = 1e-8  # small enough that few samples cross a kink (ReLU, trilinear cell border) of the field
    for k in range(6):
        with torch.no_grad():
            poses.delta[img, k] = eps
            plus = float(_fixed_sample_loss(model, composite, samples, poses, rays, torch.float64, 0.0))
            poses.delta[img, k] = -eps
            minus = float(_fixed_sample_loss(model, composite, samples, poses, rays, torch.float64, 0.0))
            poses.delta[img, k] = 0.0
        numeric, analytic = (plus - minus) / (2 * eps), float(poses.delta.grad[img, k])
        assert math.isclose(analytic, numeric, rel_tol=1e-3, abs_tol=1e-9), (k, analytic, numeric)
