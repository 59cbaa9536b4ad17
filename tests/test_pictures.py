"""Render mode -> pixels (ngp_app/render/pictures.py): the depth ramp and range rule against hand-computed pixels, and
``ngp render --mode depth`` against the app's depth view of the same snapshot and camera (one picture path)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ngp_app.cli import main
from ngp_app.data.cameras import look_at, orbit_direction, orbit_eye
from ngp_app.render.pictures import depth_picture, depth_range, opacity_picture, picture, shaded_field


def test_depth_picture_hand_computed():
    # expected depth = depth / opacity: 1, 2, 3 where the pixels hit; the last pixel sees nothing
    opacity = np.array([[1.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    depth = np.array([[1.0, 2.0], [3.0, 0.0]], dtype=np.float32)
    assert depth_range(depth, opacity) == (1.0, 3.0)
    img = depth_picture(depth, opacity)
    # nearness t = 1, 0.5, 0 -> (t, t^2, 0.35 + 0.4 (1 - t)) * 255, rounded
    assert img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert img[0, 0].tolist() == [255, 255, 89]
    assert img[0, 1].tolist() == [128, 64, 140]
    assert img[1, 0].tolist() == [0, 0, 191]
    assert img[1, 1].tolist() == [0, 0, 0]  # empty space is black
    # a half-transparent pixel is faded by its opacity; a fixed range (a video's) clips what is outside it
    half = depth_picture(np.array([[1.0]]), np.array([[0.5]]), near_far=(2.0, 4.0))  # expected depth 2: nearest
    assert half[0, 0].tolist() == [128, 128, 45]
    # tensors (any device) are taken as they are
    assert np.array_equal(depth_picture(torch.from_numpy(depth), torch.from_numpy(opacity)), img)
    assert opacity_picture(np.array([[0.0, 0.5, 1.0]])).tolist() == [[[0] * 3, [128] * 3, [255] * 3]]


def test_depth_range_without_hits_and_unknown_modes():
    assert depth_range(np.zeros((3, 3)), np.full((3, 3), 0.4)) == (0.0, 1.0)  # nothing above the hit threshold
    with pytest.raises(ValueError, match="unknown render mode"):
        picture("sparkles", {"rgb": np.zeros((1, 1, 3))})
    model = object()
    assert shaded_field(model, "rgb", (1.0, 1.0, 1.0)) == (model, (1.0, 1.0, 1.0))
    from ngp_app.render.normals import NormalsField

    field, bg = shaded_field(model, "normals", (1.0, 1.0, 1.0), step=0.01)
    assert isinstance(field, NormalsField) and field.field is model and bg == (0.0, 0.0, 0.0)


def test_orbit_eye_formula():
    # azimuth 0, elevation 0 looks from +z; azimuth 90 from +x; elevation 90 from straight above
    assert np.allclose(orbit_eye((0.5, 0.5, 0.5), 2.0, 0.0, 0.0), [0.5, 0.5, 2.5])
    assert np.allclose(orbit_eye((0.0, 0.0, 0.0), 1.0, 90.0, 0.0), [1.0, 0.0, 0.0])
    assert np.allclose(orbit_eye((0.0, 0.0, 0.0), 3.0, 10.0, 90.0), [0.0, 3.0, 0.0], atol=1e-12)
    d = orbit_direction(math.radians(30.0), math.radians(20.0))
    assert np.linalg.norm(d) == pytest.approx(1.0)


def test_cli_depth_render_is_the_apps_depth_view(tiny_snapshot: Path, tmp_path: Path, state, capsys) -> None:
    import imageio.v3 as iio

    az, el, r, size = 30.0, 20.0, 1.6, 40
    png = tmp_path / "depth.png"
    assert (
        main(
            [
                "render",
                str(tiny_snapshot),
                "--mode",
                "depth",
                "--camera",
                f"orbit:{az},{el},{r}",
                "--width",
                str(size),
                "--height",
                str(size),
                "--fov",
                "50",
                "--device",
                "cpu",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    capsys.readouterr()
    cli = iio.imread(png)
    # the app: the same snapshot, its orbit camera at the same azimuth, elevation, distance and (square) field of view
    assert state.open_path(tiny_snapshot, start=False) and not state.status_is_error, state.status
    cam = state.camera
    cam.target, cam.distance, cam.fov_deg = np.array([0.5, 0.5, 0.5]), r, 50.0
    cam.yaw, cam.pitch, cam.pose = math.radians(az), math.radians(el), None
    assert torch.allclose(cam.c2w(), look_at(orbit_eye((0.5, 0.5, 0.5), r, az, el), np.array([0.5, 0.5, 0.5])))
    state.settings.mode = "depth"
    app = state.view.render_view(size, size)[..., :3]
    assert cli.shape == app.shape == (size, size, 3)
    hit = cli.sum(-1) > 0
    assert 0.05 < hit.mean() < 0.95  # the object and empty space are both in the picture
    diff = np.abs(cli.astype(np.int16) - app.astype(np.int16))
    assert diff.max() <= 1, diff.max()  # the same picture (at most a rounding apart)
    assert cli[hit].std() > 5.0  # and it shows depth, not a flat mask
