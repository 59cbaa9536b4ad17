"""Draw a point cloud PLY (``ngp export pointcloud``) as seen by one camera of a transforms.json (``ngp export
cameras``), for docs pictures: each point a small square, the nearest in front (a z-buffer by sorting).

    python scripts/render_points.py cloud.ply cameras/transforms.json --frame 0 --width 640 --out cloud.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Positions (n, 3) and colours (n, 3) uint8 of an ``ngp export pointcloud`` PLY."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    n = int(next(ln for ln in data[:end].decode().splitlines() if ln.startswith("element vertex")).split()[-1])
    vertex = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    v = np.frombuffer(data[end : end + n * vertex.itemsize], dtype=vertex)
    return v["p"].astype(np.float64), v["c"]


def draw(points: np.ndarray, colours: np.ndarray, frame: dict, width: int, radius: int) -> np.ndarray:
    """The picture (H, W, 3) uint8 of the points seen by a transforms.json ``frame`` (OpenGL camera axes) scaled
    to ``width``, on white."""
    s = width / frame["w"]
    height = int(round(frame["h"] * s))
    c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera: x right, y up, z backwards
    front = cam[:, 2] < -1e-6
    cam, colours = cam[front], colours[front]
    u = frame["fl_x"] * s * cam[:, 0] / -cam[:, 2] + frame["cx"] * s
    v = -frame["fl_y"] * s * cam[:, 1] / -cam[:, 2] + frame["cy"] * s
    order = np.argsort(cam[:, 2])  # farthest first: nearer points overwrite them
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            x, y = np.round(u[order]).astype(int) + dx, np.round(v[order]).astype(int) + dy
            ok = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            image[y[ok], x[ok]] = colours[order][ok]
    return image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ply", type=Path)
    p.add_argument("cameras", type=Path, help="a transforms.json in the same coordinates (ngp export cameras)")
    p.add_argument("--frame", type=int, default=0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--radius", type=int, default=1, help="half the side of each point's square, in pixels")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    frame = json.loads(args.cameras.read_text())["frames"][args.frame]
    points, colours = read_points(args.ply)
    iio.imwrite(args.out, draw(points, colours, frame, args.width, args.radius))
    print(args.out)


if __name__ == "__main__":
    main()
