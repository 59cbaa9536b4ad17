"""Marching tetrahedra (ours, ``export.mesh.extract_surface``) against a marching-cubes library (scikit-image's
Lewiner marching cubes) on the same density lattice of a snapshot: faces, vertices, time, and, for the bundled
scene, the distance to its analytic surfaces both ways (mesh -> truth: accuracy; truth -> mesh: completeness).

    python scripts/compare_meshers.py SNAPSHOT [--resolution 128 256] [--threshold 2.5] [--truth demo]

Needs scikit-image (not a dependency of ngp-app). Prints one JSON line per method and resolution.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def demo_truth(n_rays: int = 40000) -> np.ndarray:
    """Points on the bundled scene's analytic surfaces, ray-traced from its training cameras (nerf coordinates)."""
    from ngp_app.data import synthetic

    meta = json.loads((ROOT / "scenes" / "demo" / "transforms_train.json").read_text())
    rng = np.random.default_rng(0)
    points = []
    for frame in meta["frames"]:
        px, py = rng.random(n_rays) * 800, rng.random(n_rays) * 800
        o, d = synthetic.pixel_rays(np.asarray(frame["transform_matrix"]), px, py, 800, 800, meta["camera_angle_x"])
        _, hit, t = synthetic.trace_rays(o, d)
        points.append(o[hit] + t[hit, None] * d[hit])
    return np.concatenate(points)


def marching_cubes(density: torch.Tensor, level: float, lo: list[float], hi: list[float]):
    """scikit-image's marching cubes on the lattice, in box coordinates (as ``extract_surface`` returns)."""
    from skimage.measure import marching_cubes as mc

    r = density.shape[0]
    spacing = tuple((h - lo_) / (r - 1) for lo_, h in zip(lo, hi))
    verts, faces, _, _ = mc(density.numpy().astype(np.float32), level, spacing=spacing)
    return (verts + np.asarray(lo)).astype(np.float32), faces.astype(np.int64)


def distances(vertices: np.ndarray, faces: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    """Median and 90th percentile distances mesh -> truth (on 1M points sampled on the faces) and truth -> mesh."""
    import trimesh
    from scipy.spatial import cKDTree

    if truth is None:
        return {}
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    samples, _ = trimesh.sample.sample_surface(mesh, 1_000_000, seed=0)
    to_truth, _ = cKDTree(truth).query(samples)
    to_mesh, _ = cKDTree(samples).query(truth)
    return {
        "accuracy_median": float(np.median(to_truth)),
        "accuracy_p90": float(np.percentile(to_truth, 90)),
        "completeness_median": float(np.median(to_mesh)),
        "completeness_p90": float(np.percentile(to_mesh, 90)),
    }


def main() -> None:
    from ngp_app.backends import resolve_device
    from ngp_app.compute import resolve_ops
    from ngp_app.export.mesh import (
        crop_box,
        extract_surface,
        ngp_to_nerf_points,
        sample_density_grid,
        scene_transform,
    )
    from ngp_app.train.run_files import load_run_snapshot

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot")
    ap.add_argument("--resolution", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--threshold", type=float, default=2.5)
    ap.add_argument("--truth", choices=["demo", "none"], default="none")
    args = ap.parse_args()

    device = resolve_device("cpu")
    snap = load_run_snapshot(args.snapshot, device=device, backend=resolve_ops("auto", device))
    transform = scene_transform(snap.scene)
    truth = demo_truth() if args.truth == "demo" else None
    lo, hi = crop_box(snap.nerf.field, None)
    for r in args.resolution:
        density = sample_density_grid(snap.nerf.field, snap.nerf.grid, lo, hi, r)
        for name, extract in (("tetrahedra", extract_surface), ("cubes (scikit-image)", marching_cubes)):
            extract(density, args.threshold, lo, hi)  # warm up
            t0 = time.perf_counter()
            vertices, faces = extract(density, args.threshold, lo, hi)
            seconds = time.perf_counter() - t0
            nerf_vertices = ngp_to_nerf_points(vertices, *transform) if transform else vertices
            row = {"method": name, "resolution": r, "faces": len(faces), "vertices": len(vertices)}
            row["seconds"] = round(seconds, 3)
            row.update({k: round(v, 5) for k, v in distances(nerf_vertices, faces, truth).items()})
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
