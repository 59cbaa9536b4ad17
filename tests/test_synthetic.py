"""Tests for the procedural demo-scene generator (ngp_app.data.synthetic)."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ngp_app.data import synthetic as syn
from ngp_app.data import synthetic_shapes as shp

SPLITS = ("train", "val", "test")
SMALL = dict(width=16, height=16, n_train=3, n_val=3, n_test=3, progress=False)


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "demo"
    assert syn.make_scene(out, **SMALL) == out
    return out


def _frames(root: Path, split: str) -> tuple[dict, list[dict]]:
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    return meta, meta["frames"]


def _all_files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_layout_and_images(scene_dir: Path) -> None:
    for split in SPLITS:
        meta, frames = _frames(scene_dir, split)
        assert meta["camera_angle_x"] == pytest.approx(syn.CAMERA_ANGLE_X)
        assert len(frames) == 3
        for i, fr in enumerate(frames):
            assert fr["file_path"] == f"./{split}/r_{i}"  # no extension, like NeRF-synthetic
            assert isinstance(fr["rotation"], float)
            assert np.asarray(fr["transform_matrix"]).shape == (4, 4)
            img = iio.imread(scene_dir / f"{fr['file_path']}.png")
            assert img.shape == (16, 16, 4) and img.dtype == np.uint8
    assert not list(scene_dir.rglob("*.tmp"))  # atomic writes leave no temp files behind


def test_background_transparent_centre_opaque(scene_dir: Path) -> None:
    saw_fractional = False
    for split in SPLITS:
        for fr in _frames(scene_dir, split)[1]:
            alpha = iio.imread(scene_dir / f"{fr['file_path']}.png")[..., 3]
            assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
            assert (alpha[7:9, 7:9] == 255).all()
            saw_fractional |= bool(((alpha > 0) & (alpha < 255)).any())
    assert saw_fractional  # supersampling anti-aliases silhouettes


def test_camera_convention(scene_dir: Path) -> None:
    for split in SPLITS:
        for fr in _frames(scene_dir, split)[1]:
            c2w = np.asarray(fr["transform_matrix"])
            eye, rot = c2w[:3, 3], c2w[:3, :3]
            np.testing.assert_allclose(np.linalg.norm(eye), syn.CAMERA_RADIUS, atol=1e-9)
            np.testing.assert_allclose(-rot[:, 2], -eye / np.linalg.norm(eye), atol=1e-5)
            np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-9)
            assert np.linalg.det(rot) == pytest.approx(1.0)
            assert rot[2, 1] > 0  # camera +Y has a world-up component
            np.testing.assert_array_equal(c2w[3], [0, 0, 0, 1])


def test_train_views_include_below_equator() -> None:
    eyes = syn.random_poses(80, (0, 0), below_fraction=0.15)[:, :3, 3]
    assert (eyes[:, 2] < 0).sum() == 12 and (eyes[:, 2] > 0).sum() == 68


def test_pixel_ray_convention() -> None:
    w, h, fov = 6, 4, 0.7
    c2w = np.eye(4)
    c2w[2, 3] = 4.0  # at +z, looking down -z at the origin
    rays_o, rays_d = syn.camera_rays(c2w, w, h, fov)
    f = 0.5 * w / np.tan(0.5 * fov)
    j, i = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    d = np.stack([(i + 0.5 - w / 2) / f, -(j + 0.5 - h / 2) / f, -np.ones((h, w))], -1)
    d = d.reshape(-1, 3)
    np.testing.assert_allclose(rays_d, d / np.linalg.norm(d, axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(rays_o, np.tile([0.0, 0.0, 4.0], (w * h, 1)))


def test_ray_at_origin_hits() -> None:
    eyes = syn._sphere_point(np.linspace(-0.9, 0.9, 7), np.linspace(0, 6, 7), syn.CAMERA_RADIUS)
    rgb, hit, t = syn.trace_rays(eyes, -eyes)
    assert hit.all() and (t < syn.CAMERA_RADIUS).all()
    assert ((rgb > 0) & (rgb <= 1)).any(axis=1).all()
    rgb, hit, t = syn.trace_rays(eyes, eyes)  # looking away from the object
    assert not hit.any() and np.isinf(t).all() and (rgb == 0).all()


def test_same_seed_same_bytes(scene_dir: Path, tmp_path: Path) -> None:
    again = syn.make_scene(tmp_path / "again", **SMALL)
    assert _all_files(again) == _all_files(scene_dir)
    other = syn.make_scene(tmp_path / "other", **{**SMALL, "seed": 1})
    assert _frames(other, "train")[1] != _frames(scene_dir, "train")[1]


def test_regenerate_smaller_removes_stale_frames(tmp_path: Path) -> None:
    syn.make_scene(tmp_path, **{**SMALL, "n_train": 4})
    syn.make_scene(tmp_path, **SMALL)
    names = sorted(p.name for p in (tmp_path / "train").glob("*.png"))
    assert names == ["r_0.png", "r_1.png", "r_2.png"]


def test_adaptive_matches_full_supersampling() -> None:
    c2w = syn.ring_poses(4)[1]
    fast = syn.render_view(c2w, 64, 64, supersample=3)  # big enough that rods span pixels
    full = syn.render_view(c2w, 64, 64, supersample=3, adaptive=False)
    assert np.abs(fast - full).mean() < 2e-3


_INSIDE = {  # canonical (local-frame) solid membership, to check the analytic intersections
    shp.Sphere: lambda s, p: np.linalg.norm(p, axis=-1) < s.radius,
    shp.Box: lambda s, p: (np.abs(p) < s.half).all(axis=-1),
    shp.Cylinder: lambda s, p: (np.hypot(p[..., 0], p[..., 1]) < s.radius) & (np.abs(p[..., 2]) < s.hh),
    shp.Cone: lambda s, p: (
        (p[..., 2] > 0)
        & (p[..., 2] < s.height)
        & (np.hypot(p[..., 0], p[..., 1]) < s.radius * (1 - p[..., 2] / s.height))
    ),
    shp.Torus: lambda s, p: np.hypot(np.hypot(p[..., 0], p[..., 1]) - s.R, p[..., 2]) < s.r,
}


@pytest.mark.parametrize(
    "prim",
    [
        shp.Sphere(0.5, center=(0.1, -0.2, 0.3)),
        shp.Box((0.3, 0.2, 0.4), center=(0.2, 0, -0.1), rot=shp.rotation((1, 2, 3), 40)),
        shp.Cylinder.between((-0.5, 0.2, -0.4), (0.3, -0.1, 0.5), 0.2),
        shp.Cone(0.3, 0.6, center=(0, 0.1, -0.3), rot=shp.rotation((1, 0, 0), 30)),
        shp.Torus(0.5, 0.12, center=(0.1, 0, 0), rot=shp.rotation((1, 1, 0), 60)),
        shp.Torus(0.6, 0.03, rot=shp.rotation((0, 1, 0), 80)),
    ],
    ids=lambda p: type(p).__name__,
)
def test_primitive_hits_are_first_crossings(prim: shp.Primitive) -> None:
    rng = np.random.default_rng(0)
    eyes = syn._sphere_point(rng.uniform(-1, 1, 400), rng.uniform(0, 2 * np.pi, 400), 3.0)
    d = prim.center + rng.normal(scale=0.4, size=(400, 3)) - eyes
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    t, n = prim.intersect(eyes, d)
    hit = np.isfinite(t)
    assert 0.05 < hit.mean() < 0.95
    inside = lambda pts: _INSIDE[type(prim)](prim, (pts - prim.center) @ prim.rot)  # noqa: E731
    s = np.linspace(0.0, 6.0, 6001)  # fine march along each ray: nothing solid before the hit
    pts = eyes[:, None] + s[None, :, None] * d[:, None]
    before = np.where(hit[:, None], s[None] < t[:, None] - 1e-6, True)
    assert not (inside(pts) & before).any()
    th = t[hit]
    assert inside(eyes[hit] + (th + 1e-4)[:, None] * d[hit]).mean() > 0.95  # enters the solid
    np.testing.assert_allclose(np.linalg.norm(n[hit], axis=1), 1.0, atol=1e-9)
    assert (np.einsum("ij,ij->i", n[hit], d[hit]) < 1e-9).all()  # outward, facing the ray


def test_backdrop_and_orbit_path(tmp_path: Path) -> None:
    out = syn.make_scene(
        tmp_path / "backdrop",
        width=24,
        height=18,
        n_train=6,
        n_val=0,
        n_test=0,
        progress=False,
        supersample=1,
        with_backdrop=True,
        path="orbit",
    )
    meta, frames = _frames(out, "train")
    eyes = np.array([fr["transform_matrix"] for fr in frames])[:, :3, 3]
    elevation = np.degrees(np.arcsin(eyes[:, 2] / np.linalg.norm(eyes, axis=1)))
    assert ((elevation > 14) & (elevation < 36)).all()  # one turn at 25 +- 10 degrees, above the ground
    azimuth = np.unwrap(np.arctan2(eyes[:, 1], eyes[:, 0]))
    np.testing.assert_allclose(np.diff(azimuth), 2 * np.pi / 6, atol=1e-9)
    for fr in frames:
        img = iio.imread(out / f"{fr['file_path']}.png")
        assert img.shape == (18, 24, 3)  # opaque: RGB, the ground and dome fill the background
        assert img.reshape(-1, 3).max(axis=1).min() > 0
    assert _frames(out, "val")[1] == []
    with pytest.raises(ValueError, match="camera path"):
        syn.make_scene(tmp_path / "bad", path="spiral", progress=False)


def test_far_backdrop(tmp_path: Path) -> None:
    """--backdrop-radius: the dome alone, that far out (rays traced to it), and an aabb_scale whose box holds it."""
    out = syn.make_scene(
        tmp_path / "far", width=16, height=12, n_train=2, n_val=0, n_test=1, progress=False, supersample=1,
        backdrop_radius=42.0,
    )  # fmt: skip
    meta, frames = _frames(out, "train")
    assert meta["aabb_scale"] == 32.0 and 42.0 * 2 * 0.33 <= 32.0
    assert _frames(out, "test")[0]["aabb_scale"] == 32.0
    for fr in frames:
        assert iio.imread(out / f"{fr['file_path']}.png").shape == (12, 16, 3)  # opaque: the dome fills the rest
    eye = np.array(frames[0]["transform_matrix"])[:3, 3]
    up = np.array([[0.0, 0.0, 1.0]])
    _, hit, t = syn.trace_rays(eye[None], up, True, 42.0)  # straight up: no ground, the dome
    assert hit[0] and abs(np.linalg.norm(eye + t[0] * up[0]) - 42.0) < 1e-6
    assert syn.aabb_scale_containing(10.0) == 8.0
    for bad in (4.0, 500.0):
        with pytest.raises(ValueError, match="backdrop radius"):
            syn.make_scene(tmp_path / "bad", backdrop_radius=bad, progress=False)


def test_noise_texture_does_not_repeat() -> None:
    tex = shp.noise_texture([(0, 0, 0), (1, 1, 1)], scale=1.0)
    x = np.linspace(0, 20, 4001)
    p = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    v = tex(p, np.zeros_like(p))[:, 0]
    assert 0.0 <= v.min() and v.max() <= 1.0 and v.std() > 0.1
    for shift in (200, 400, 800):  # no period of 1, 2 or 4 lattice cells
        assert np.abs(v[shift:] - v[:-shift]).mean() > 0.05
