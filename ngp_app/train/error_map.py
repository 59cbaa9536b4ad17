"""Error-map pixel sampling (instant-ngp's error map, issue 18 item 5): a coarse map of the training loss per image
(``resolution`` x ``resolution`` cells) chooses where each step's rays go. Images are drawn uniformly, as without
it; within an image half of the rays fall uniformly and half in proportion to the cells' error, so every pixel keeps
being trained while the hard ones (edges, fine texture) get more rays.

The map is fed from every step's per-ray squared errors (sums on the device) and folded in every ``interval`` steps,
when the sampling CDF is rebuilt; nothing is read back to the host. Scenes with masks sample as before (a cell's
pixels may all be masked out)."""

from __future__ import annotations

import torch

from ..data.scene import Scene


class ErrorMap:
    """Per-image coarse error maps and the pixel sampler they drive (module docstring).

    err: (n_images, resolution^2) the cells' smoothed mean squared error (a cell's first mean is taken as it is; a
    cell not seen yet holds the largest error of those seen, so it is sought out); the CDF is float64 over all
    cells, image after image, each image's block spanning (i, i + 1]."""

    def __init__(
        self,
        n_images: int,
        resolution: int = 16,
        interval: int = 16,
        smoothing: float = 0.5,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n_images, self.resolution, self.interval, self.smoothing = n_images, resolution, interval, smoothing
        cells = resolution * resolution
        self.err = torch.ones(n_images, cells, device=device)
        self._sum = torch.zeros(n_images * cells, device=device)
        self._count = torch.zeros(n_images * cells, device=device)
        self._seen = torch.zeros(n_images * cells, dtype=torch.bool, device=device)  # cells seen at some refresh
        self.cdf = self._build_cdf()

    def _build_cdf(self) -> torch.Tensor:
        """(n_images * cells,) float64: block i is i + the CDF of p(cell | i) = (1 / cells + err / sum err) / 2."""
        cells = self.err.shape[1]
        err = self.err.double()
        pmf = 0.5 / cells + 0.5 * err / err.sum(1, keepdim=True).clamp(min=1e-30)
        cdf = pmf.cumsum(1)
        cdf = cdf / cdf[:, -1:]  # exactly 1 at each block's end
        rows = torch.arange(self.n_images, device=cdf.device, dtype=cdf.dtype)[:, None]
        return (rows + cdf).reshape(-1)

    def sample(
        self, scene: Scene, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` training pixels: image (n,), px, py (n,) int64; images uniform among the included frames, the
        pixel's cell from the image's error CDF and its place in the cell uniform."""
        dev = self.err.device
        gdev = generator.device if generator is not None else dev
        pool = scene.pool
        if pool is None:
            img = torch.randint(0, self.n_images, (n,), generator=generator, device=gdev).to(dev)
        else:
            img = pool[torch.randint(0, pool.numel(), (n,), generator=generator, device=gdev).to(dev)]
        r = torch.rand(3, n, generator=generator, device=gdev).to(dev)
        cells = self.resolution * self.resolution
        at = torch.searchsorted(self.cdf, img.double() + r[0].double())  # first cell whose CDF reaches the draw
        cell = (at - img * cells).clamp(0, cells - 1)
        cy, cx = cell // self.resolution, cell % self.resolution
        w, h = scene.widths[img], scene.heights[img]
        px = (((cx.float() + r[1]) / self.resolution) * w).long().clamp(max=w - 1)
        py = (((cy.float() + r[2]) / self.resolution) * h).long().clamp(max=h - 1)
        return img, px, py

    def cell_of(self, scene: Scene, img: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        """Flat cell index (n,) into ``err`` of pixels (px, py) of images img."""
        res = self.resolution
        cx = (px * res) // scene.widths[img]
        cy = (py * res) // scene.heights[img]
        return img * (res * res) + cy * res + cx

    def record(
        self,
        scene: Scene,
        img: torch.Tensor,
        px: torch.Tensor,
        py: torch.Tensor,
        sq_err: torch.Tensor,
        weight: torch.Tensor,
    ) -> None:
        """Add one step's per-ray squared errors (n,) (``weight`` (n,): 0 for rays left out of the loss)."""
        cell = self.cell_of(scene, img, px, py)
        self._sum.index_add_(0, cell, (sq_err.detach() * weight).float())
        self._count.index_add_(0, cell, weight.float())

    def due(self, step: int) -> bool:
        """Whether step ``step`` folds the errors into the map and rebuilds the CDF."""
        return step > 0 and step % self.interval == 0

    def refresh(self) -> None:
        """Fold the errors recorded since the last refresh into the map (a cell seen before moves ``smoothing`` of
        the way to its new mean, one seen for the first time takes it) and rebuild the sampling CDF."""
        seen = self._count > 0
        mean = self._sum / self._count.clamp(min=1e-12)
        flat = self.err.view(-1)
        folded = torch.where(self._seen, torch.lerp(flat, mean, self.smoothing), mean)
        flat.copy_(torch.where(seen, folded, flat))
        self._seen |= seen
        top = torch.where(self._seen, flat, torch.zeros_like(flat)).amax()  # no host read
        flat.copy_(torch.where(self._seen, flat, torch.where(top > 0, top, flat)))
        self._sum.zero_()
        self._count.zero_()
        self.cdf = self._build_cdf()
