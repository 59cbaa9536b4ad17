"""A COLMAP project written by pycolmap from known poses, for the import tests (no SfM involved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np


def write_project(
    root: Path,
    poses_gl: np.ndarray,
    model: str,
    params: list[float],
    size: tuple[int, int],
    text: bool,
    world: tuple[float, np.ndarray, np.ndarray],
) -> tuple[Path, Any]:
    """A COLMAP project (root/sparse/0 + root/images) written by pycolmap: cameras at ``poses_gl`` (NeRF, in
    the reference world) moved into a COLMAP world by the similarity ``world`` (s, R, t), 200 points."""
    import pycolmap

    w, h = size
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera.create_from_model_name(1, model, params[0], w, h)
    cam.params = params
    rec.add_camera_with_trivial_rig(cam)
    s, rot_w, t_w = world
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, m in enumerate(poses_gl):
        c2w_cv = m[:3, :3] @ np.diag([1.0, -1.0, -1.0])
        rot_c2w = rot_w @ c2w_cv
        centre = s * rot_w @ m[:3, 3] + t_w
        rot = rot_c2w.T
        name = f"view_{i}.png"
        iio.imwrite(images / name, rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8))
        image = pycolmap.Image(name=name, keypoints=np.zeros((0, 2)), camera_id=1, image_id=i + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.hstack([rot, (-rot @ centre)[:, None]])))
    for p in rng.uniform(-1.0, 1.0, size=(200, 3)):
        rec.add_point3D(s * rot_w @ p + t_w, pycolmap.Track(), rng.integers(0, 255, 3).astype(np.uint8))
    model_dir = root / "sparse" / "0"
    model_dir.mkdir(parents=True)
    rec.write_text(model_dir) if text else rec.write(model_dir)
    for extra in ("rigs", "frames"):  # models from COLMAP before 3.12 have only cameras, images, points3D
        for ext in (".bin", ".txt"):
            (model_dir / f"{extra}{ext}").unlink(missing_ok=True)
    return root, rec


def small_project(root: Path, seed: int = 0) -> Path:
    """A small COLMAP project (12 views, no SfM needed to import it); ``seed`` turns its world."""
    from ngp_app.data.synthetic import ring_poses

    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return write_project(
        root, ring_poses(12), "PINHOLE", [70.0, 70.0, 32.0, 24.0], (64, 48), False, (1.5, q, np.zeros(3))
    )[0]
