"""Instant-NGP's NeRF network: hash grid -> density MLP (1x64, 16 outputs) -> colour MLP (2x64) on SH(dir), plus,
with per-image appearance on (``model/appearance.py``), each image's code as extra colour inputs and its exposure.

Points enter in scene coordinates inside the scene's axis-aligned box and are normalised to [0, 1]^3 for the
grid. Like tiny-cuda-nn's fully fused MLPs, the linear layers have no biases.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..encoding.hashgrid import GridGeometry, HashGridEncoding
from ..ops import Ops
from ..schema.config import Config
from .appearance import Appearance, Look, apply_exposure, latent_inputs
from .precision import check_precision, mlp_dtype


class _TruncExp(torch.autograd.Function):
    """exp(x) whose gradient uses exp(min(x, 15)), so one large activation cannot blow up training."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """Truncated exponential density activation (forward exp, gradient clamped at exp(15))."""
    return _TruncExp.apply(x)


def make_mlp(n_in: int, n_hidden: int, n_layers: int, n_out: int) -> nn.Sequential:
    """Bias-free ReLU MLP with ``n_layers`` hidden layers of width ``n_hidden``."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, n_hidden, bias=False), nn.ReLU(inplace=True)]
        width = n_hidden
    layers.append(nn.Linear(width, n_out, bias=False))
    for m in layers:
        if isinstance(m, nn.Linear):
            # Glorot-uniform like tiny-cuda-nn's default initialisation.
            bound = math.sqrt(6.0 / (m.in_features + m.out_features))
            nn.init.uniform_(m.weight, -bound, bound)
    return nn.Sequential(*layers)


class NGPField(nn.Module):
    """Density and colour of points and directions in a box ``aabb``.

    aabb: (2, 3) min and max corner of the box the hash grid covers; ``ops``: the backend's operations (the
    :class:`Ops` that ``compute.select`` resolved; ``get_ops("torch")`` is the reference); ``n_images``: the
    training images that get their own appearance (``config.appearance``), 0 for none.
    """

    def __init__(self, config: Config, aabb: torch.Tensor, ops: Ops, n_images: int = 0) -> None:
        super().__init__()
        enc, net, rgb = config.encoding, config.network, config.rgb_network
        aabb_size = float((aabb[1] - aabb[0]).max())
        geometry = GridGeometry.create(
            n_levels=enc.n_levels,
            n_features=enc.n_features_per_level,
            log2_hashmap_size=enc.log2_hashmap_size,
            base_resolution=enc.base_resolution,
            per_level_scale=enc.per_level_scale,
            finest_resolution=enc.desired_resolution * aabb_size,
        )
        self.register_buffer("aabb", aabb.clone().float())
        self.ops = ops
        self.encoding = HashGridEncoding(geometry, ops=self.ops, precision=enc.table_precision)
        # float32, or half precision on CUDA (model/precision.py); "auto": float16 on CUDA, float32 on the CPU
        self.mlp_precision = check_precision(net.precision)
        self.n_geo_features = net.n_output_dims
        self.density_net = make_mlp(geometry.n_output_dims, net.n_neurons, net.n_hidden_layers, self.n_geo_features)
        self.sh_degree = config.dir_encoding.degree
        look = config.appearance
        self.appearance = Appearance(n_images, look.latent_dims, look.exposure) if n_images > 0 else None
        n_in = self.n_geo_features + self.sh_degree**2 + (self.appearance.latent_dims if self.appearance else 0)
        self.rgb_net = make_mlp(n_in, rgb.n_neurons, rgb.n_hidden_layers, rgb.n_output_dims)  # 3: RGB

    @property
    def backend(self) -> str:
        """Name of the backend running the field (for logs and metrics)."""
        return self.ops.name

    def set_ops(self, ops: Ops) -> None:
        """Switch backend (parameters are shared by all backends)."""
        self.ops = self.encoding.ops = ops

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Scene coordinates (n, 3) -> [0, 1]^3 grid coordinates (clamped)."""
        return ((x - self.aabb[0]) / (self.aabb[1] - self.aabb[0])).clamp(0.0, 1.0)

    def _mlp(self, mlp: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """Apply one of the MLPs in the configured precision on x's device."""
        return self.ops.mlp(mlp, x, mlp_dtype(self.mlp_precision, x.device))

    def geometry_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 3) scene points. Returns (n, 16) density-MLP outputs, raw (channel 0 is log-density)."""
        return self._mlp(self.density_net, self.encoding(self.normalize(x)))

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 3) scene points. Returns sigma (n,)."""
        return trunc_exp(self.geometry_features(x)[:, 0])

    def colour(self, h: torch.Tensor, sh: torch.Tensor, look: Look | torch.Tensor | None = None) -> torch.Tensor:
        """h: (n, 16) geometry features, sh: (n, degree^2) encoded directions. Returns rgb (n, 3) in [0, 1] with
        ``look`` (a :class:`Look`, or (n,) int64 training frames, one per sample; None: the default look). A field
        without appearance ignores ``look``."""
        if self.appearance is None:
            return torch.sigmoid(self._mlp(self.rgb_net, torch.cat([h, sh], dim=-1)))
        if look is None:
            look = self.appearance.default()
        elif isinstance(look, torch.Tensor):
            look = self.appearance.of_frames(look)
        x = torch.cat([h, sh, *latent_inputs(look, h.shape[0])], dim=-1)
        return apply_exposure(torch.sigmoid(self._mlp(self.rgb_net, x)), look)

    def forward(
        self, x: torch.Tensor, d: torch.Tensor, look: Look | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, 3) points, d: (n, 3) unit directions, ``look`` as :meth:`colour`. Returns sigma (n,) and rgb
        (n, 3) in [0, 1]."""
        h = self.geometry_features(x)
        return trunc_exp(h[:, 0]), self.colour(h, self.ops.sh(d, self.sh_degree), look)

    def mlp_parameters(self) -> list[nn.Parameter]:
        return list(self.density_net.parameters()) + list(self.rgb_net.parameters())
