"""Sharp final renders: ``spp`` jittered sub-pixel rays per pixel, averaged (instant-ngp's ``--video_spp``).

Sample ``k`` of a pixel passes through the pixel at the offset ``subpixel_offsets(spp)[k]``: the first ``spp``
points of the R2 low-discrepancy sequence (Roberts 2018), which spreads any number of samples evenly over the
pixel, moved together so that their mean is the pixel centre (one sample is the plain render; a few never shift the
picture). They are the same for every pixel and frame, so a render is deterministic (and a frame is the same on
any rank). The average is taken over the colours composited on the background and over opacity and depth.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import torch

from ..cli_args import MAX_SPP
from ..data.cameras import Camera

_PHI2 = 1.3247179572447460  # the plastic number: x^3 = x + 1
_ALPHA = (1.0 / _PHI2, 1.0 / _PHI2**2)


def subpixel_offsets(spp: int) -> list[tuple[float, float]]:
    """``spp`` positions (x, y) in the pixel (0..1 across it; a few reach 0.03 past its edge): the R2
    sequence from the centre, moved so that their mean is the centre (0.5, 0.5)."""
    if not 1 <= spp <= MAX_SPP:
        raise ValueError(f"samples per pixel must be in 1..{MAX_SPP}, got {spp}")
    points = [[math.fmod(0.5 + k * a, 1.0) for a in _ALPHA] for k in range(spp)]
    shift = [0.5 - sum(p[axis] for p in points) / spp for axis in (0, 1)]
    return [(x + shift[0], y + shift[1]) for x, y in points]


def jittered(camera: Camera, offset: tuple[float, float]) -> Camera:
    """``camera`` whose pixel rays pass ``offset`` (in [0, 1)) into each pixel instead of its centre: the principal
    point moves the other way, which leaves the lens distortion (applied to normalised coordinates) as it was."""
    return replace(camera, cx=camera.cx + 0.5 - offset[0], cy=camera.cy + 0.5 - offset[1])


def render_supersampled(
    render: Callable[..., dict[str, torch.Tensor]],
    camera: Camera,
    spp: int,
    progress: Callable[[int, int], None] | None = None,
    **kw: Any,
) -> dict[str, torch.Tensor]:
    """The mean of ``render(camera_k, progress=..., **kw)`` (float outputs: rgb (H, W, 3) over the background,
    opacity and depth (H, W)) over the ``spp`` jittered cameras; ``progress(done, total)`` over all of them."""
    total: dict[str, torch.Tensor] = {}
    pixels = camera.width * camera.height
    for k, offset in enumerate(subpixel_offsets(spp)):
        step = None if progress is None else (lambda done, _t, k=k: progress(k * pixels + done, spp * pixels))
        out = render(jittered(camera, offset), progress=step, **kw)
        for name, value in out.items():
            total[name] = value.clone() if name not in total else total[name].add_(value)
    return {name: value / spp for name, value in total.items()}


def rgba8_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """uint8 RGBA (H, W, 4) of float outputs (colour over the background, opacity), rounded as the frame path
    rounds."""
    values = torch.cat([out["rgb"], out["opacity"][..., None]], dim=-1)
    return (values.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
