"""Compare two sets of camera poses of one capture after the best similarity alignment (issue 18 item 7).

    python scripts/compare_poses.py A B

A and B are each a scene (a ``transforms.json`` or a folder holding one), an LLFF folder (``poses_bounds.npy``
with its images) or a COLMAP model (a folder with ``cameras``/``images`` .bin or .txt, or a project with
``sparse/0``). Cameras are matched by image name (file stem); A's are aligned onto B's by Umeyama's similarity of
the camera centres. Prints one JSON object: cameras matched, the centre error (median and max, in % of B's camera
spread), the rotation error (median and max, degrees) and the alignment's scale. Both reprojection errors can be
sub-pixel while the poses disagree: this says by how much. Bad input: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ngp_app.data.importer.align import pose_errors


def _colmap_model(path: Path) -> Path | None:
    """The model folder of ``path`` (itself, or its ``sparse/0``) when it holds a COLMAP model, else None."""
    for folder in (path, path / "sparse" / "0"):
        if any((folder / f"images{ext}").is_file() for ext in (".bin", ".txt")):
            return folder
    return None


def read_poses(source: str) -> dict[str, np.ndarray]:
    """Camera-to-world matrices (4, 4) in the NeRF/OpenGL camera convention, by image file stem."""
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    model = _colmap_model(path) if path.is_dir() else None
    if path.is_dir() and (path / "poses_bounds.npy").is_file():
        from ngp_app.data.llff import choose_images, llff_transforms

        frames = llff_transforms(choose_images(path, 1)[0])["frames"]  # poses up to a similarity, any image size
    elif model is not None:
        import pycolmap

        from ngp_app.data.importer.conventions import colmap_to_nerf_c2w
        from ngp_app.data.importer.convert import registered_images

        rec = pycolmap.Reconstruction(str(model))
        return {Path(im.name).stem: colmap_to_nerf_c2w(im.cam_from_world().matrix()) for im in registered_images(rec)}
    else:
        transforms = path / "transforms.json" if path.is_dir() else path
        if not transforms.is_file():
            raise ValueError(f"{path}: not a transforms.json, an LLFF folder or a COLMAP model")
        frames = json.loads(transforms.read_text())["frames"]
    out = {}
    for f in frames:
        m = np.asarray(f["transform_matrix"], dtype=np.float64)
        out[Path(f["file_path"]).stem] = np.vstack([m[:3], [0.0, 0.0, 0.0, 1.0]])
    return out


def compare(a: str, b: str) -> dict[str, object]:
    """The JSON-ready comparison of poses ``a`` aligned onto poses ``b`` (see the module's docstring)."""
    pa, pb = read_poses(a), read_poses(b)
    names = sorted(set(pa) & set(pb))
    if len(names) < 3:
        raise ValueError(f"only {len(names)} cameras are in both {a} and {b} (matched by image name; need 3)")
    err = pose_errors(np.stack([pa[n] for n in names]), np.stack([pb[n] for n in names]))
    return {
        "matched": len(names),
        "only_in_a": len(set(pa) - set(pb)),
        "only_in_b": len(set(pb) - set(pa)),
        "centre_error_median_pct": round(err.centre_median, 3),
        "centre_error_max_pct": round(float(err.centre_error.max()), 3),
        "rotation_error_median_deg": round(err.rotation_median, 3),
        "rotation_error_max_deg": round(float(err.rotation_error.max()), 3),
        "scale": round(err.scale, 6),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="poses to align: transforms.json / scene folder / LLFF folder / COLMAP model")
    parser.add_argument("b", help="reference poses, the same kinds")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(compare(args.a, args.b)))
    except (ValueError, KeyError, OSError) as exc:
        print(f"compare_poses: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - pycolmap and the loaders raise many kinds for a bad model
        print(f"compare_poses: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
