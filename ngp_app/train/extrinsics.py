"""Camera pose refinement ("optimize extrinsics" in instant-ngp, the camera optimizer of nerfstudio).

Each training image gets a correction of its camera-to-world pose, a rotation (axis-angle, about the camera centre)
and a translation, both zero at the start and trained with the field. Rays of image ``i`` become
``o' = o + t_i`` and ``d' = R_i d``, which is the camera ``[R_i R | o + t_i]``.
"""

from __future__ import annotations

import torch
from torch import nn


def axis_angle_to_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: w (n, 3) axis * angle -> rotations (n, 3, 3); smooth (and exact to second order) at 0."""
    theta2 = (w * w).sum(-1, keepdim=True)[..., None]  # (n, 1, 1)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)  # sin(theta) / theta
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)  # (1 - cos) / theta^2
    zero = torch.zeros_like(w[:, 0])
    k = torch.stack([zero, -w[:, 2], w[:, 1], w[:, 2], zero, -w[:, 0], -w[:, 1], w[:, 0], zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return eye + a * k + b * (k @ k)


class PoseRefinement(nn.Module):
    """Per-image pose corrections: ``delta`` (n_frames, 6) = axis-angle rotation (3) and translation (3)."""

    def __init__(self, n_frames: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(n_frames, 6))

    def rotations(self, images: torch.Tensor) -> torch.Tensor:
        """(n,) image indices -> (n, 3, 3) rotation corrections."""
        return axis_angle_to_matrix(self.delta[images, :3])

    def apply(
        self, rays_o: torch.Tensor, rays_d: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Correct rays of the given training images: rays_o, rays_d (n, 3), images (n,). Differentiable in
        ``delta``; directions stay unit length."""
        rot = self.rotations(images)
        return rays_o + self.delta[images, 3:], torch.einsum("nij,nj->ni", rot, rays_d)

    @torch.no_grad()
    def corrected_c2w(self, c2w: torch.Tensor) -> torch.Tensor:
        """The refined poses: c2w (n_frames, 3, 4) -> (n_frames, 3, 4)."""
        images = torch.arange(c2w.shape[0], device=c2w.device)
        rot = self.rotations(images).to(c2w.dtype)
        out = c2w.clone()
        out[:, :, :3] = rot @ c2w[:, :, :3]
        out[:, :, 3] = c2w[:, :, 3] + self.delta[:, 3:].to(c2w.dtype)
        return out
