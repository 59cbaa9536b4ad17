"""A loaded scene split: images as uint8 pixels plus per-frame cameras in ngp space, and ray sampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cameras import Camera, LensKinds, lens_kinds, pixel_rays


@dataclass
class KeptPixels:
    """The pixels of each frame that count (``data/masks.py``): their indices ``y * width + x`` within the frame,
    frame after frame. index: (n_kept,) int32; offsets, counts: (n_frames,) int64 (where each frame's run starts in
    ``index`` and how long it is; every count is at least 1)."""

    index: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor

    @classmethod
    def of_masks(cls, masks: list[Any]) -> KeptPixels:
        """From one (H, W) bool numpy mask per frame (True: the pixel counts)."""
        runs = [torch.from_numpy(np.flatnonzero(m).astype(np.int32)) for m in masks]
        counts = torch.tensor([len(r) for r in runs], dtype=torch.int64)
        offsets = torch.cumsum(counts, 0) - counts
        return cls(torch.cat(runs), offsets, counts)

    def frame(self, i: int, width: int, height: int) -> torch.Tensor:
        """Frame ``i``'s mask as (height, width) bool."""
        start, n = int(self.offsets[i]), int(self.counts[i])
        mask = torch.zeros(height * width, dtype=torch.bool, device=self.index.device)
        mask[self.index[start : start + n].long()] = True
        return mask.view(height, width)

    def select(self, frames: list[int]) -> KeptPixels:
        """The runs of ``frames`` only, in that order."""
        runs = [self.index[int(self.offsets[i]) : int(self.offsets[i] + self.counts[i])] for i in frames]
        counts = self.counts[frames]
        return KeptPixels(torch.cat(runs), torch.cumsum(counts, 0) - counts, counts)

    def to(self, device: torch.device | str) -> KeptPixels:
        return KeptPixels(self.index.to(device), self.offsets.to(device), self.counts.to(device))


@dataclass
class Scene:
    """Frames of one split. Images of any sizes are concatenated into one pixel buffer so that rays can be
    sampled from all frames in one vectorised draw.

    pixels: (total_pixels, C) uint8 with C = 3 or 4; image_offsets, widths, heights: (n_frames,) int64;
    c2w: (n_frames, 3, 4) ngp space; intrinsics: (n_frames, 4) as fx, fy, cx, cy in pixels; distortion: (n_frames, 7)
    (``cameras.as_distortion``); kept: the pixels that count when the scene has masks (None: every pixel).
    """

    path: Path
    split: str
    pixels: torch.Tensor
    image_offsets: torch.Tensor
    widths: torch.Tensor
    heights: torch.Tensor
    c2w: torch.Tensor
    intrinsics: torch.Tensor
    distortion: torch.Tensor
    file_names: list[str]
    aabb_scale: float = 1.0
    scale: float = 0.33
    offset: tuple[float, float, float] = (0.5, 0.5, 0.5)
    fmt: str = "transforms"
    info: dict[str, Any] = field(default_factory=dict)
    kept: KeptPixels | None = None
    excluded: tuple[int, ...] = ()  # frames left out of training (the app's per-image table; kept in snapshots)
    _pool: torch.Tensor | None = field(default=None, repr=False)  # (n_included,) int64 frames rays are drawn from

    @property
    def n_frames(self) -> int:
        return int(self.c2w.shape[0])

    @property
    def has_alpha(self) -> bool:
        return int(self.pixels.shape[1]) == 4

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    @property
    def aabb(self) -> torch.Tensor:
        """(2, 3) scene box: a cube of side ``aabb_scale`` centred at (0.5, 0.5, 0.5)."""
        half = self.aabb_scale / 2.0
        return torch.tensor([[0.5 - half] * 3, [0.5 + half] * 3], dtype=torch.float32)

    def image(self, i: int) -> torch.Tensor:
        """Frame ``i`` as (H, W, C) uint8."""
        h, w = int(self.heights[i]), int(self.widths[i])
        start = int(self.image_offsets[i])
        return self.pixels[start : start + h * w].view(h, w, -1)

    def mask(self, i: int) -> torch.Tensor | None:
        """Frame ``i``'s mask as (H, W) bool (True: the pixel counts); None when every pixel counts."""
        if self.kept is None:
            return None
        return self.kept.frame(i, int(self.widths[i]), int(self.heights[i]))

    def camera(self, i: int) -> Camera:
        fx, fy, cx, cy = (float(v) for v in self.intrinsics[i])
        dist = tuple(float(v) for v in self.distortion[i])
        return Camera(self.c2w[i].clone(), fx, fy, cx, cy, int(self.widths[i]), int(self.heights[i]), dist)  # type: ignore[arg-type]

    @cached_property
    def lens_kinds(self) -> LensKinds:
        """Which lens models the frames use (read once, so that sampling rays needs no host read)."""
        return lens_kinds(self.distortion)

    def to(self, device: torch.device | str) -> Scene:
        """Move pixel and camera tensors to ``device`` (ray sampling then runs there)."""
        for name in ("pixels", "image_offsets", "widths", "heights", "c2w", "intrinsics", "distortion"):
            setattr(self, name, getattr(self, name).to(device))
        if self._pool is not None:
            self._pool = self._pool.to(device)
        if self.kept is not None:
            self.kept = self.kept.to(device)
        return self

    def set_excluded(self, indices: Any) -> tuple[int, ...]:
        """Leave frames ``indices`` out of ray sampling (an empty list includes every frame again). Safe to call
        while another thread samples: the pool of included frames is swapped in one assignment."""
        idx = tuple(sorted({int(i) for i in indices}))
        if idx and not (0 <= idx[0] and idx[-1] < self.n_frames):
            raise ValueError(f"frame indices must be in 0..{self.n_frames - 1}, got {list(idx)[:8]}")
        if len(idx) >= self.n_frames:
            raise ValueError("at least one frame must stay in training")
        dropped = set(idx)
        keep = [i for i in range(self.n_frames) if i not in dropped]
        pool = torch.tensor(keep, dtype=torch.int64, device=self.pixels.device) if idx else None
        self._pool, self.excluded = pool, idx
        return idx

    def sample_rays(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rays through the centres of ``n`` training pixels: frames drawn uniformly, then a pixel uniformly among
        those that count (all of them without masks).

        Returns rays_o (n, 3), rays_d (n, 3) and target colours (n, C) in [0, 1] (C = 4 with alpha).
        """
        rays_o, rays_d, target, _ = self.sample_rays_with_images(n, generator)
        return rays_o, rays_d, target

    def sample_rays_with_images(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sample_rays`` plus the image index (n,) of each ray (for per-image pose refinement). The random numbers
        are drawn where ``generator`` lives (a generator on the scene's device: no host read or copy)."""
        dev = self.pixels.device
        gdev = generator.device if generator is not None else dev
        pool = self._pool  # read once: the app may swap it meanwhile
        if pool is None:
            img = torch.randint(0, self.n_frames, (n,), generator=generator, device=gdev).to(dev)
        else:  # only the included frames (the pool's size is known on the host: no read)
            img = pool[torch.randint(0, pool.numel(), (n,), generator=generator, device=gdev).to(dev)]
        ruv = torch.rand(2, n, generator=generator, device=gdev).to(dev)
        w, h = self.widths[img], self.heights[img]
        kept = self.kept
        if kept is None:
            px = (ruv[0] * w).long().clamp(max=w - 1)
            py = (ruv[1] * h).long().clamp(max=h - 1)
        else:  # the k-th of the frame's kept pixels
            count = kept.counts[img]
            k = (ruv[0] * count).long().clamp(max=count - 1)
            at = kept.index[kept.offsets[img] + k].long()
            px, py = at % w, at // w
        rays_o, rays_d, target = self.rays_at(img, px, py)
        return rays_o, rays_d, target, img

    @property
    def pool(self) -> torch.Tensor | None:
        """The included frames (k,) int64 when some are excluded (``set_excluded``), else None: every frame."""
        return self._pool

    def rays_at(
        self, img: torch.Tensor, px: torch.Tensor, py: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rays through the centres of pixels (px, py) (n,) int64 of images img (n,) int64: rays_o, rays_d (n, 3)
        and target colours (n, C) in [0, 1]."""
        w = self.widths[img]
        target = self.pixels[self.image_offsets[img] + py * w + px].float() / 255.0
        kinds = self.lens_kinds
        dist = self.distortion[img] if kinds.distorted else None
        rays_o, rays_d = pixel_rays(
            px.float() + 0.5, py.float() + 0.5, self.c2w[img], self.intrinsics[img], dist, kinds
        )
        return rays_o, rays_d, target

    def metadata(self) -> dict[str, Any]:
        """JSON-able description stored in snapshots (and shown by the app)."""
        return {
            "path": str(self.path),
            "split": self.split,
            "format": self.fmt,
            "n_frames": self.n_frames,
            "aabb_scale": self.aabb_scale,
            "scale": self.scale,
            "offset": list(self.offset),
            "has_alpha": self.has_alpha,
            "width": int(self.widths[0]) if self.n_frames else 0,
            "height": int(self.heights[0]) if self.n_frames else 0,
            "c2w": self.c2w.cpu().tolist(),
            "intrinsics": self.intrinsics.cpu().tolist(),
            "distortion": self.distortion.cpu().tolist(),
            "sizes": [[int(w), int(h)] for w, h in zip(self.widths.tolist(), self.heights.tolist())],
            "excluded": list(self.excluded),
            "file_names": [str(Path(name).resolve()) for name in self.file_names],
        }
