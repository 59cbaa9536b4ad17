"""Compositing against closed forms, occupancy grid pruning, ray-box and marching invariants."""

from __future__ import annotations

import math

import torch

from ngp_app.compute import get_ops
from ngp_app.render.composite import composite, exclusive_segment_cumsum
from ngp_app.render.occupancy import OccupancyGrid, cell_index, mip_from_dt, mip_from_pos, n_cascades_for
from ngp_app.render.raymarch import MarchParams, lattice_t, march_rays, ray_aabb, step_dt

UNIT = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])


def test_transmittance_matches_closed_form() -> None:
    # constant density sigma over n samples of size dt: T_i = exp(-sigma * dt * i), opacity = 1 - exp(-sigma*n*dt)
    sigma, dt, n = 3.0, 0.01, 50
    sig = torch.full((n,), sigma)
    t = torch.arange(n) * dt
    out = composite(
        sig, torch.ones(n, 3) * 0.5, t, torch.full((n,), dt), torch.zeros(n, dtype=torch.long), torch.tensor([0]), 1
    )
    expected_t = torch.exp(-sigma * dt * torch.arange(n, dtype=torch.float32))
    assert torch.allclose(out["transmittance"], expected_t, rtol=1e-5)
    assert math.isclose(float(out["opacity"][0]), 1 - math.exp(-sigma * n * dt), rel_tol=1e-5)
    assert torch.allclose(out["rgb"][0], torch.full((3,), 0.5 * (1 - math.exp(-sigma * n * dt))), rtol=1e-5)
    # depth: sum_i T_i (1 - e^{-sigma dt}) t_i
    w = expected_t * (1 - math.exp(-sigma * dt))
    assert math.isclose(float(out["depth"][0]), float((w * t).sum()), rel_tol=1e-5)


def test_composite_segments_are_independent_and_early_termination() -> None:
    sig = torch.tensor([100.0, 100.0, 1.0, 2.0, 3.0])
    dt = torch.full((5,), 0.1)
    t = torch.tensor([0.0, 0.1, 0.0, 0.1, 0.2])
    rays = torch.tensor([0, 0, 1, 1, 1])
    offsets = torch.tensor([0, 2])
    out = composite(sig, torch.ones(5, 3), t, dt, rays, offsets, 2, transmittance_threshold=1e-4)
    # ray 0: first sample has T=1, second T=exp(-10)<1e-4 -> terminated (weight 0)
    assert float(out["weights"][1]) == 0.0
    assert math.isclose(float(out["opacity"][0]), 1 - math.exp(-10), rel_tol=1e-6)
    assert math.isclose(float(out["opacity"][1]), 1 - math.exp(-0.6), rel_tol=1e-5)
    cs = exclusive_segment_cumsum(sig * dt, rays, offsets)
    assert torch.allclose(cs, torch.tensor([0.0, 10.0, 0.0, 0.1, 0.3]), atol=1e-6)


def test_composite_gradient_matches_finite_differences() -> None:
    torch.manual_seed(0)
    n = 7
    sig = (torch.rand(n, dtype=torch.float64) * 5).requires_grad_()
    rgb = torch.rand(n, 3, dtype=torch.float64).requires_grad_()
    dt = torch.full((n,), 0.05, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64) * 0.05
    rays = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    offsets = torch.tensor([0, 3])
    f = lambda s, c: composite(s, c, t, dt, rays, offsets, 2)["rgb"]  # noqa: E731
    assert torch.autograd.gradcheck(f, (sig, rgb))


def test_ray_aabb_hits_misses_and_inside() -> None:
    o = torch.tensor([[-1.0, 0.5, 0.5], [-1.0, 2.0, 0.5], [0.5, 0.5, 0.5]])
    d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    tn, tf = ray_aabb(o, d, UNIT)
    assert math.isclose(float(tn[0]), 1.0) and math.isclose(float(tf[0]), 2.0)
    assert float(tn[1]) > float(tf[1])  # parallel to the y slab and outside it: a miss
    assert float(tn[2]) == 0.0 and math.isclose(float(tf[2]), 0.5)  # starts inside


def test_mip_and_cell_lookup() -> None:
    pos = torch.tensor([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5], [1.2, 0.5, 0.5], [2.4, 0.5, 0.5]])
    assert mip_from_pos(pos, 3).tolist() == [0, 0, 1, 2]
    assert mip_from_dt(torch.tensor([0.001, 1 / 128, 2.5 / 128]), 128, 4).tolist() == [0, 1, 2]
    idx = cell_index(
        torch.tensor([[0.0, 0.0, 0.0], [0.999, 0.0, 0.0], [0.0, 1 / 128, 0.0]]), torch.zeros(3, dtype=torch.long), 128
    )
    assert idx.tolist() == [0, 127, 128]
    assert n_cascades_for(1) == 1 and n_cascades_for(4) == 3 and n_cascades_for(16) == 5


def test_lattice_closed_form_matches_iteration() -> None:
    params = MarchParams(dt_min=math.sqrt(3) / 1024, dt_max=0.05, cone_angle=1 / 256, max_steps=1024)
    t0 = torch.tensor([0.1, 1.0, 20.0], dtype=torch.float64)
    k = torch.arange(1024)
    closed = lattice_t(t0[:, None], k[None, :], params)
    t = t0.clone()
    for i in range(1024):
        assert torch.allclose(closed[:, i], t, rtol=1e-9), i
        t = t + step_dt(t, params)


def test_occupancy_grid_marks_known_empty_space_empty() -> None:
    grid = OccupancyGrid(aabb_scale=1, resolution=32, ops=get_ops("torch"))
    center = torch.tensor([0.5, 0.5, 0.5])

    def sphere_density(x: torch.Tensor) -> torch.Tensor:  # dense ball of radius 0.2
        return torch.where((x - center).norm(dim=-1) < 0.2, 1000.0, 0.0)

    for _ in range(3):
        grid.update(sphere_density, fraction=1.0)
    centers = grid.cell_centers(0, torch.arange(32**3))
    dist = (centers - center).norm(dim=-1)
    occ = grid.occupied[0]
    assert not bool(occ[dist > 0.2 + math.sqrt(3) / 32].any())  # cells wholly outside the ball are empty
    assert bool(occ[dist < 0.2 - math.sqrt(3) / 32].all())  # cells wholly inside are occupied
    # marching then only produces samples inside the ball
    o = torch.tensor([[0.5, 0.5, -1.0], [0.05, 0.05, -1.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    s = march_rays(o, d, grid, UNIT, MarchParams.for_grid(grid))
    assert s.counts[1] == 0 and s.counts[0] > 0
    assert float(((s.positions - center).norm(dim=-1)).max()) < 0.2 + math.sqrt(3) / 32


def test_march_rays_packing_and_budget() -> None:
    grid = OccupancyGrid(aabb_scale=1, resolution=16, ops=get_ops("torch"))  # all cells occupied initially
    params = MarchParams.for_grid(grid)
    torch.manual_seed(0)
    o = torch.rand(20, 3) * 0.2 - 1.0 + 0.5
    d = torch.nn.functional.normalize(torch.tensor([0.5, 0.5, 0.5]) - o + 0.1 * torch.randn(20, 3), dim=-1)
    s = march_rays(o, d, grid, UNIT, params)
    assert s.n_samples == int(s.counts.sum())
    assert torch.equal(s.offsets, torch.cumsum(s.counts, 0) - s.counts)
    assert bool((s.positions >= -1e-6).all() and (s.positions <= 1 + 1e-6).all())
    # samples of a ray are ordered and spaced by the step
    first = s.ray_indices == 0
    ts = s.t[first]
    assert torch.allclose(ts[1:] - ts[:-1], torch.full_like(ts[1:], params.dt_min), atol=1e-5)
    budget = int(s.counts[:5].sum())
    b = march_rays(o, d, grid, UNIT, params, max_samples=budget)
    assert b.n_samples == budget and int(b.counts[5:].sum()) == 0


def _brute_force_samples(o, d, grid, aabb, params, jitter):  # type: ignore[no-untyped-def]
    """Every lattice point to the box exit, the first max_steps samples of each ray kept."""
    from ngp_app.render.raymarch import candidates_at

    t_near, t_far = ray_aabb(o, d, aabb)
    hit = t_near < t_far
    t0 = t_near + jitter * step_dt(t_near, params)
    k = torch.arange(8192)[None, :].expand(o.shape[0], -1)
    t, mask = candidates_at(o, d, t0, torch.where(hit, t_far, torch.zeros_like(t_far)), grid, params, aabb, k)
    assert bool((t[:, -1] >= t_far).all())  # walked past every exit
    mask &= hit[:, None]
    return t[mask & (torch.cumsum(mask.long(), 1) <= params.max_steps)]


def test_empty_space_skipping_keeps_every_sample() -> None:
    # A sparse random grid over 3 cascades with cone stepping: skipping must not lose or add samples.
    gen = torch.Generator().manual_seed(7)
    grid = OccupancyGrid(aabb_scale=4, resolution=32, ops=get_ops("torch"))
    grid.density = (torch.rand(grid.density.shape, generator=gen) < 0.002).float()
    grid.update_bitfield()
    grid.occupied = grid.density > 0.5
    grid._coarse = None
    aabb = torch.tensor([[-1.5] * 3, [2.5] * 3])
    params = MarchParams.for_grid(grid)
    o = torch.rand(64, 3, generator=gen) * 6 - 2.5
    o[:8] = torch.rand(8, 3, generator=gen) * 0.5 + 0.25  # rays starting inside
    d = torch.nn.functional.normalize(torch.randn(64, 3, generator=gen), dim=-1)
    jitter = torch.rand(64, generator=gen)
    fast = march_rays(o, d, grid, aabb, params, jitter=jitter)
    ref = _brute_force_samples(o, d, grid, aabb, params, jitter)
    assert fast.n_samples == ref.numel() and fast.n_samples > 0
    assert torch.allclose(fast.t, ref, rtol=1e-6, atol=1e-6)


def test_normals_of_a_sphere_point_outwards() -> None:
    from ngp_app.render.normals import NormalsField, density_normals

    centre = torch.tensor([0.5, 0.5, 0.5])

    def density(x: torch.Tensor) -> torch.Tensor:  # a soft ball: density falls off with the distance from the centre
        return 100.0 * torch.sigmoid((0.25 - (x - centre).norm(dim=-1)) * 40.0)

    x = centre + torch.nn.functional.normalize(torch.randn(500, 3), dim=-1) * 0.25
    n = density_normals(density, x, 1e-3)
    radial = torch.nn.functional.normalize(x - centre, dim=-1)
    assert torch.allclose(n, radial, atol=1e-3)
    assert torch.equal(density_normals(lambda p: torch.ones(p.shape[0]), x[:4], 1e-3), torch.zeros(4, 3))

    class Ball:
        def density(self, x: torch.Tensor) -> torch.Tensor:
            return density(x)

        def __call__(self, x, d):  # pragma: no cover - NormalsField replaces the colours
            raise AssertionError

    shaded = NormalsField(Ball(), step=1e-3)
    sigma, colour = shaded(x, torch.zeros_like(x))
    assert torch.allclose(sigma, density(x)) and torch.allclose(colour, radial * 0.5 + 0.5, atol=1e-3)
