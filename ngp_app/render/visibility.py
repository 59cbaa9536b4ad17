"""Which occupancy-grid cells the training cameras see (instant-ngp's mark-untrained-density-grid).

A cell is seen when any of its 8 corners projects inside at least one training image with positive depth. Cells
seen by no camera get no training signal, so the trainer marks them empty for good: without that, marching keeps
sampling (and the grid keeps whatever density the network extrapolates) there, which shows as floaters.

Lens distortion is handled conservatively: OpenCV-distorted cameras project with the pinhole model onto an image
padded by ``DISTORTED_PAD`` of its size on every side; fisheye cameras are taken to see everything.
"""

from __future__ import annotations

import torch

from ..data.cameras import FISHEYE

DISTORTED_PAD = 0.15  # fraction of the image size added on every side for cameras with OpenCV distortion


def corner_positions(cascade: int, resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Scene positions of the (R + 1)^3 cell corners of a cascade, x fastest: ((R + 1)^3, 3)."""
    n = resolution + 1
    a = torch.arange(n, device=device, dtype=torch.float32) / resolution
    z, y, x = torch.meshgrid(a, a, a, indexing="ij")
    unit = torch.stack([x, y, z], dim=-1).reshape(-1, 3)
    return (unit - 0.5) * (2.0**cascade) + 0.5


def project_inside(
    points: torch.Tensor, c2w: torch.Tensor, intrinsics: torch.Tensor, size: torch.Tensor, pad: float = 0.0
) -> torch.Tensor:
    """Whether points project inside one pinhole image, in front of the camera: points (n, 3), c2w (3, 4) with
    columns right, down, forward, position; intrinsics fx, fy, cx, cy; size (w, h); pad: fraction of the size added
    on every side. Returns (n,) bool."""
    local = (points - c2w[:, 3]) @ c2w[:, :3]  # camera coordinates: x right, y down, z forward
    z = local[:, 2]
    front = z > 1e-6
    zs = torch.where(front, z, torch.ones_like(z))
    u = intrinsics[0] * local[:, 0] / zs + intrinsics[2]
    v = intrinsics[1] * local[:, 1] / zs + intrinsics[3]
    w, h = float(size[0]), float(size[1])
    return front & (u > -pad * w) & (u < (1 + pad) * w) & (v > -pad * h) & (v < (1 + pad) * h)


def seen_by_any(
    points: torch.Tensor, c2w: torch.Tensor, intrinsics: torch.Tensor, sizes: torch.Tensor, pads: torch.Tensor
) -> torch.Tensor:
    """Whether each point projects inside at least one of the images (``project_inside``; c2w (k, 3, 4),
    intrinsics (k, 4), sizes (k, 2), pads (k,)): (n,) bool. Points already seen are not projected again, so a
    360-degree capture costs a few cameras' projections of the lattice."""
    seen = torch.zeros(points.shape[0], dtype=torch.bool)
    remaining = torch.arange(points.shape[0])
    for i in range(c2w.shape[0]):
        hit = project_inside(points[remaining], c2w[i], intrinsics[i], sizes[i], float(pads[i]))
        seen[remaining[hit]] = True
        remaining = remaining[~hit]
        if remaining.numel() == 0:
            break
    return seen


@torch.no_grad()
def unseen_cells(
    n_cascades: int,
    resolution: int,
    c2w: torch.Tensor,
    intrinsics: torch.Tensor,
    sizes: torch.Tensor,
    distortion: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cells no camera sees: (n_cascades, R^3) bool, cells indexed x + y R + z R^2 as in ``OccupancyGrid``.

    c2w: (n, 3, 4) ngp space; intrinsics: (n, 4) fx, fy, cx, cy; sizes: (n, 2) width, height; distortion: (n, 7)
    (``cameras.as_distortion``) or None. Runs on the CPU, once per trainer.
    """
    c2w, intrinsics, sizes = c2w.float().cpu(), intrinsics.float().cpu(), sizes.cpu()
    dist = distortion.float().cpu() if distortion is not None else torch.zeros(c2w.shape[0], 7)
    r = resolution
    out = torch.zeros(n_cascades, r**3, dtype=torch.bool)
    if bool((dist[:, 6] == FISHEYE).any()):
        return out  # a fisheye lens may see behind its image plane: every cell counts as seen
    pads = torch.where((dist[:, :6] != 0).any(dim=1), DISTORTED_PAD, 0.0)
    for c in range(n_cascades):
        seen = seen_by_any(corner_positions(c, r), c2w, intrinsics, sizes, pads)
        # a cell is seen when any of its 8 corners is: max over 2x2x2 corner blocks, indexed [z, y, x]
        grid = seen.view(1, 1, r + 1, r + 1, r + 1).float()
        cell_seen = torch.nn.functional.max_pool3d(grid, kernel_size=2, stride=1)[0, 0] > 0
        out[c] = ~cell_seen.reshape(-1)
    return out
