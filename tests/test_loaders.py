"""Scene loaders: Blender layout, single transforms.json, the fox capture, intrinsics/distortion, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.data.cameras import (
    FISHEYE,
    OPENCV,
    Camera,
    as_distortion,
    camera_rays,
    distort,
    fisheye_theta_d,
    look_at,
    nerf_to_ngp,
    ngp_to_nerf,
    pixel_rays,
    undistort,
)
from ngp_app.data.loaders import held_out_frames, load_scene
from ngp_app.errors import SceneError


def test_blender_layout_splits(demo_scene: Path) -> None:
    train = load_scene(demo_scene, "train", downscale=4)
    test = load_scene(demo_scene, "test", downscale=4)
    assert train.n_frames == 80 and test.n_frames == 20
    assert train.has_alpha and train.image(0).shape == (50, 50, 4)
    assert math.isclose(
        float(train.intrinsics[0, 0]), 0.25 * 0.5 * 200 / math.tan(0.5 * 0.6911112070083618), rel_tol=1e-4
    )
    assert train.fmt == "blender" and train.aabb_scale == 1.0


def test_single_transforms_holdout_rule(single_transforms_scene: Path) -> None:
    train = load_scene(single_transforms_scene, "train")
    test = load_scene(single_transforms_scene, "test")
    both = load_scene(single_transforms_scene / "transforms.json", "all")
    assert (train.n_frames, test.n_frames, both.n_frames) == (8, 2, 10)  # frames 0 and 8 are held out
    assert test.file_names[0].endswith("000.png") and test.file_names[1].endswith("008.png")


def test_held_out_frames_are_counted_as_the_test_split_loads_them(
    demo_scene: Path, single_transforms_scene: Path, fox_scene: Path
) -> None:
    """What the app says is held out for evaluation: the frames the test split loads (their images present)."""
    assert held_out_frames(demo_scene) == 20  # transforms_test.json
    assert held_out_frames(single_transforms_scene) == 2  # every 8th of 10
    data = json.loads((fox_scene / "transforms.json").read_text())
    present = [i for i, f in enumerate(data["frames"]) if (fox_scene / f["file_path"]).is_file()]
    assert held_out_frames(fox_scene) == sum(i % 8 == 0 for i in present) == load_scene(fox_scene, "test").n_frames


def test_fox_with_missing_frames(fox_scene: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        scene = load_scene(fox_scene, "all", downscale=8)
    data = json.loads((fox_scene / "transforms.json").read_text())
    present = sum((fox_scene / f["file_path"]).is_file() for f in data["frames"])
    assert scene.n_frames == present == 50
    warnings = [r for r in caplog.records if "missing" in r.getMessage()]
    assert len(warnings) == 1 and "17" in warnings[0].getMessage()
    assert scene.aabb_scale == 4 and not scene.has_alpha
    assert scene.image(0).shape == (240, 135, 3)
    # intrinsics scaled with the images, distortion kept
    assert math.isclose(float(scene.intrinsics[0, 0]), 1375.52 * 135 / 1080, rel_tol=1e-5)
    assert math.isclose(float(scene.distortion[0, 0]), 0.0578421, rel_tol=1e-6)
    # cameras look at the scene: the centre pixel's ray passes near the box centre region
    o, d = camera_rays(scene.camera(0).scaled(9, 16))
    mid = o[8 * 9 + 4]
    assert float(torch.linalg.vector_norm(mid - torch.tensor([0.5, 0.5, 0.5]))) < 3.0


def test_known_camera_looks_at_known_point() -> None:
    # A Blender camera at (0, -4, 0) looking at the origin (its -z axis is +y): forward in ngp space points from
    # the camera to the ngp image of the origin, (0.5, 0.5, 0.5).
    nerf = np.array([[1, 0, 0, 0], [0, 0, -1, -4], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    nerf[:3, 2] = [0, -1, 0]  # camera z axis (backwards) = -y, so it looks along +y toward the origin
    nerf[:3, 1] = [0, 0, 1]  # camera up = +z
    m = torch.tensor(nerf_to_ngp(nerf), dtype=torch.float32)
    cam = Camera(m, 100.0, 100.0, 50.0, 50.0, 100, 100)
    o, d = pixel_rays(torch.tensor([50.0]), torch.tensor([50.0]), cam.c2w, torch.tensor([100.0, 100.0, 50.0, 50.0]))
    target = torch.tensor([0.5, 0.5, 0.5])
    to_target = torch.nn.functional.normalize(target - o[0], dim=0)
    assert torch.allclose(d[0], to_target, atol=1e-6)
    # pixel above the centre (smaller v) goes up in the world: Blender +z is ngp +y
    _, d_up = pixel_rays(torch.tensor([50.0]), torch.tensor([10.0]), cam.c2w, torch.tensor([100.0, 100.0, 50.0, 50.0]))
    assert float(d_up[0, 1]) > 0
    assert np.allclose(ngp_to_nerf(nerf_to_ngp(nerf)), nerf)
    # look_at gives the same frame
    assert torch.allclose(look_at(o[0].tolist(), target.tolist()), m, atol=1e-6)


def test_undistortion_inverts_distortion() -> None:
    dist = torch.tensor(as_distortion([0.0578421, -0.0805099, -0.000980296, 0.00015575]))  # legacy 4 numbers
    assert dist.tolist()[2:4] == [0.0, 0.0] and dist[6] == OPENCV
    x, y = torch.rand(500) - 0.5, torch.rand(500) - 0.5
    xd, yd = distort(x, y, dist)
    xu, yu = undistort(xd, yd, dist)
    assert torch.allclose(xu, x, atol=1e-6) and torch.allclose(yu, y, atol=1e-6)
    # with k3 and k4 (nerfstudio's OPENCV radial terms) too
    dist6 = torch.tensor([0.05, -0.08, 0.02, -0.01, -0.001, 0.0002, 0.0])
    xd, yd = distort(x, y, dist6)
    r2 = x * x + y * y
    radial = 1 + 0.05 * r2 - 0.08 * r2**2 + 0.02 * r2**3 - 0.01 * r2**4  # hand-written model
    assert torch.allclose(xd, x * radial + 2 * -0.001 * x * y + 0.0002 * (r2 + 2 * x * x), atol=1e-7)
    xu, yu = undistort(xd, yd, dist6)
    assert torch.allclose(xu, x, atol=1e-6) and torch.allclose(yu, y, atol=1e-6)
    # distortion is not ignored: rays differ from the pinhole ones
    c2w = torch.eye(3, 4)
    intr = torch.tensor([100.0, 100.0, 50.0, 50.0])
    _, d0 = pixel_rays(torch.tensor([5.0]), torch.tensor([5.0]), c2w, intr)
    _, d1 = pixel_rays(torch.tensor([5.0]), torch.tensor([5.0]), c2w, intr, dist[None])
    assert float((d0 - d1).abs().max()) > 1e-3


def test_fisheye_rays_invert_the_fisheye_projection() -> None:
    # Directions up to 100 degrees off axis, projected with the OpenCV fisheye model by hand, come back out of
    # pixel_rays; a perspective model could not even represent the ones past 90 degrees.
    k = [0.03, -0.01, 0.004, -0.001]
    dist = torch.tensor(k + [0.0, 0.0, float(FISHEYE)])
    theta = torch.linspace(0.0, math.radians(100.0), 200)
    phi = torch.rand(200) * 2 * math.pi
    d = torch.stack([torch.sin(theta) * torch.cos(phi), torch.sin(theta) * torch.sin(phi), torch.cos(theta)], -1)
    t2 = theta * theta
    theta_d = theta * (1 + k[0] * t2 + k[1] * t2**2 + k[2] * t2**3 + k[3] * t2**4)
    assert torch.allclose(fisheye_theta_d(theta, dist), theta_d)
    f, c = 300.0, 400.0
    u = c + f * theta_d * torch.cos(phi)
    v = c + f * theta_d * torch.sin(phi)
    _, rays = pixel_rays(u, v, torch.eye(3, 4), torch.tensor([f, f, c, c]), dist)
    assert torch.allclose(rays, d, atol=1e-5)
    # a camera with this distortion gives the same rays, and mixing models per frame works
    cam = Camera(torch.eye(3, 4), f, f, c, c, 800, 800, tuple(dist.tolist()))
    assert cam.distortion[6] == FISHEYE
    both = torch.stack([dist, torch.zeros(7)])
    _, mixed = pixel_rays(u[:2], v[:2], torch.eye(3, 4).expand(2, 3, 4), torch.tensor([f, f, c, c]).expand(2, 4), both)
    assert torch.allclose(mixed[0], d[0], atol=1e-5)
    pinhole = torch.tensor([(u[1] - c) / f, (v[1] - c) / f, 1.0])
    assert torch.allclose(mixed[1], pinhole / pinhole.norm(), atol=1e-6)


def test_camera_models_from_transforms(tmp_path: Path) -> None:
    _png(tmp_path / "s" / "a.png", 8, 6)
    frame = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}
    scene = load_scene(
        _write_scene(tmp_path / "s", [frame], camera_model="OPENCV_FISHEYE", k1=0.1, k2=0.01, k3=0.002, k4=0.0003),
        "all",
    )
    assert scene.distortion[0].tolist() == pytest.approx([0.1, 0.01, 0.002, 0.0003, 0.0, 0.0, FISHEYE])
    scene = load_scene(_write_scene(tmp_path / "s", [frame], camera_model="OPENCV", k1=0.1, k3=0.05, p1=0.01), "all")
    assert scene.distortion[0].tolist() == pytest.approx([0.1, 0.0, 0.05, 0.0, 0.01, 0.0, OPENCV])
    scene = load_scene(_write_scene(tmp_path / "s", [frame], is_fisheye=True), "all")
    assert scene.distortion[0, 6] == FISHEYE
    for top, needle in [
        ({"camera_model": "EQUIRECTANGULAR"}, 'camera_model: expected one of .*got "EQUIRECTANGULAR"'),
        ({"camera_model": 3}, "camera_model: expected one of .*got 3"),
        ({"camera_model": "OPENCV_FISHEYE", "p1": 0.1}, "no tangential"),
    ]:
        with pytest.raises(SceneError, match=needle):
            load_scene(_write_scene(tmp_path / "s", [frame], **top), "all")


def _write_scene(root: Path, frames: list[dict], **top: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7, **top, "frames": frames}))
    return root


def _png(path: Path, w: int, h: int, channels: int = 3) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full((h, w, channels), 128, np.uint8))


def test_per_frame_intrinsics_and_rgba(tmp_path: Path) -> None:
    _png(tmp_path / "s" / "a.png", 8, 6, 4)
    _png(tmp_path / "s" / "b.png", 8, 6, 3)
    frames = [
        {"file_path": "a.png", "transform_matrix": np.eye(4).tolist(), "fl_x": 10.0, "cx": 3.0},
        {"file_path": "b.png", "transform_matrix": np.eye(4).tolist(), "k1": 0.1},
    ]
    scene = load_scene(
        _write_scene(tmp_path / "s", frames, fl_x=20.0, fl_y=21.0, aabb_scale=2, scale=0.5, offset=[0.1, 0.2, 0.3]),
        "all",
    )
    assert scene.has_alpha and scene.pixels.shape[1] == 4
    assert scene.intrinsics[0].tolist() == [10.0, 21.0, 3.0, 3.0]
    assert scene.intrinsics[1].tolist() == [20.0, 21.0, 4.0, 3.0]
    assert scene.distortion[1, 0] == pytest.approx(0.1)
    assert scene.aabb_scale == 2 and scene.scale == 0.5
    assert torch.allclose(scene.c2w[0, :, 3], torch.tensor([0.2, 0.3, 0.1]))  # offset, axes cycled


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda root: (root / "transforms.json").write_text('{"frames": [ {"file_path": '), "malformed JSON"),
        (
            lambda root: _write_scene(root, [{"file_path": "nope.png", "transform_matrix": np.eye(4).tolist()}]),
            "no usable frame",
        ),
        (
            lambda root: _write_scene(root, [{"file_path": "a.png", "transform_matrix": [[float("nan")] * 4] * 4}]),
            "NaN",
        ),
        (
            lambda root: _write_scene(
                root, [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}], w=100, h=50
            ),
            "image is 8x6",
        ),
        (lambda root: _write_scene(root, [{"file_path": "a.png"}]), "transform_matrix"),
        (lambda root: (root / "transforms.json").unlink(), "not a scene"),
    ],
)
def test_bad_scenes_give_one_line_errors(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "bad"
    _png(root / "a.png", 8, 6)
    _write_scene(root, [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}])
    mutate(root)
    with pytest.raises(SceneError) as info:
        load_scene(root, "all")
    text = str(info.value)
    assert message in text and "\n" not in text


def test_corrupt_image_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "a.png").write_bytes(b"not a png")
    _write_scene(root, [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}])
    with pytest.raises(SceneError, match="cannot read image"):
        load_scene(root, "all")


def test_downscale_and_max_size(demo_scene: Path, tmp_path: Path) -> None:
    full = load_scene(demo_scene, "val")
    half = load_scene(demo_scene, "val", downscale=2)
    capped = load_scene(demo_scene, "val", max_size=40)
    assert full.image(0).shape[:2] == (200, 200) and half.image(0).shape[:2] == (100, 100)
    assert capped.image(0).shape[:2] == (40, 40)
    assert math.isclose(float(half.intrinsics[0, 0]) * 2, float(full.intrinsics[0, 0]), rel_tol=1e-6)
    # box-filtered: the mean colour is preserved
    assert abs(float(half.image(0).float().mean()) - float(full.image(0).float().mean())) < 1.0
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_intrinsics_declared_for_larger_images_are_scaled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """w/h and intrinsics written for a larger version of every image (by one factor): scaled, with one warning."""
    _png(tmp_path / "s" / "a.png", 8, 6)
    _png(tmp_path / "s" / "b.png", 8, 6)
    frames = [{"file_path": n, "transform_matrix": np.eye(4).tolist()} for n in ("a.png", "b.png")]
    root = _write_scene(tmp_path / "s", frames, fl_x=20.0, fl_y=22.0, cx=8.0, cy=6.5, w=16, h=12)
    with caplog.at_level("WARNING"):
        scene = load_scene(root, "all")
    assert scene.intrinsics.tolist() == [[10.0, 11.0, 4.0, 3.25]] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "2 times larger" in warnings[0] and "declared 16x12" in warnings[0]
    assert load_scene(root, "all", downscale=2).intrinsics[0].tolist() == [5.0, 5.5, 2.0, 1.625]
    # per-frame sizes: the same factor for both (and a 1365x1023 original shrunk to 683x512 by rounding is fine)
    frames[1].update(w=16, h=12)
    assert load_scene(_write_scene(root, frames, fl_x=20.0), "all").intrinsics[1, 0] == 10.0
    # not one factor: an error naming the image that differs, as before
    for bad, needle in [
        ([{"w": 16, "h": 12}, {"w": 24, "h": 18}], "b.png: image is 8x6 but the transforms file says 24x18, and the"),
        ([{"w": 8, "h": 6}, {"w": 16, "h": 12}], "b.png: image is 8x6 but the transforms file says 16x12, and the"),
        ([{"w": 16, "h": 20}, {"w": 16, "h": 12}], "a.png: image is 8x6 but the transforms file says 16x20"),
        ([{"w": 4, "h": 3}, {"w": 4, "h": 3}], "a.png: image is 8x6 but the transforms file says 4x3"),
    ]:
        with pytest.raises(SceneError, match=needle):
            load_scene(_write_scene(root, [dict(f, **b) for f, b in zip(frames, bad)], fl_x=20.0), "all")


def test_common_shrink_allows_rounding_either_way() -> None:
    from ngp_app.data.images import common_shrink

    assert common_shrink([(4032, 3024)] * 2, [(504, 378)] * 2) == (8.0, None)
    factor, misfit = common_shrink([(1365, 1023), (1365, 1023)], [(683, 512), (682, 511)])
    assert misfit is None and 1.99 < factor < 2.01
    assert common_shrink([(100, 50), (100, 50)], [(50, 25), (25, 12)])[1] == 1
    assert common_shrink([(10, 10)], [(10, 10)]) == (1.0, None)
