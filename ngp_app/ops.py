"""The :class:`Ops` record: what a backend implements. A leaf: the domain types it names are imported for annotations
only, so the domain modules that receive an ``Ops`` import nothing above them (``compute/`` builds the records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:  # annotations only
    from torch import nn

    from .encoding.hashgrid import HashGridEncoding
    from .render.batch import FixedSamples
    from .render.frame import FrameOps
    from .render.occupancy import OccupancyGrid
    from .render.raymarch import MarchParams, PackedSamples


@dataclass(frozen=True)
class Ops:
    """One backend's implementations, all with the signatures of the PyTorch reference.

    - ``encode(encoding, x)``: hash-grid features (n, L*F) of points x (n, 3) in [0, 1] from the module's table;
    - ``mlp(mlp, x, dtype)``: apply one of the field's bias-free MLPs, computing in ``dtype`` (float32, or
      float16/bfloat16 with the float32 weights as master copy: ``model/precision.py``); returns float32;
    - ``sh(dirs, degree)``: spherical-harmonics encoding (n, degree^2) of unit directions (n, 3);
    - ``march(rays_o, rays_d, grid, aabb, params, jitter=None, max_samples=None)`` -> PackedSamples;
    - ``composite(sigmas, rgbs, t, dt, ray_indices, offsets, n_rays, threshold)`` -> dict (render.composite);
    - ``frame(grid, aabb, params)`` -> the per-pass ops of whole-frame inference (render.frame.FrameOps) bound to
      one frame's occupancy grid, box and step rule;
    - ``march_fixed(rays_o, rays_d, grid, aabb, params, jitter, capacity)`` -> FixedSamples: marching into
      buffers of a capacity known on the host (``aabb``: 6 floats or a (2, 3) tensor), no host read in native;
    - ``compact(samples, sigmas, threshold, capacity)`` -> FixedSamples: the live samples (transmittance >=
      threshold, from densities ``sigmas``) in buffers of ``capacity`` (render/batch.py);
    - ``cell_positions(cascade, indices (n,), jitter (n, 3), resolution)`` -> (n, 3) jittered cell points;
    - ``decay_max(density, fresh, decay)`` -> ``max(density * decay, fresh)`` where ``density >= 0`` (cells marked
      untrained, density < 0, keep their mark; may update ``density`` in place);
    - ``sparse_adam(param, grad, exp_avg, exp_avg_sq, counts, corrections, lr, beta1, beta2, eps, weight_decay)``
      and ``dense_adam(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay)``: the Adam
      steps (in place) that the trainer's ``train.optim.TableAdam`` runs, the sparse one with per-entry step counts
      on the hash table (references: ``compute.reference.sparse_adam_reference_``, ``dense_adam_reference_``).
    """

    name: str
    encode: Callable[[HashGridEncoding, torch.Tensor], torch.Tensor]
    mlp: Callable[[nn.Sequential, torch.Tensor, torch.dtype], torch.Tensor]
    sh: Callable[[torch.Tensor, int], torch.Tensor]
    march: Callable[..., PackedSamples]
    composite: Callable[..., dict[str, torch.Tensor]]
    frame: Callable[[OccupancyGrid, torch.Tensor, MarchParams], FrameOps]
    march_fixed: Callable[..., FixedSamples]
    compact: Callable[..., FixedSamples]
    cell_positions: Callable[[int, torch.Tensor, torch.Tensor, int], torch.Tensor]
    decay_max: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    sparse_adam: Callable[..., None]
    dense_adam: Callable[..., None]

    def __repr__(self) -> str:
        return f"Ops({self.name})"

    def __deepcopy__(self, memo: dict[int, Any]) -> Ops:  # stateless: models deep-copied share it
        return self
