"""Schema of network/training configs (``configs/*.json``, user configs, and the config inside a snapshot): every key
the code reads, with its type, range and default (the only place defaults live: the code reads the attributes of
:class:`Config`, never a raw dict). Required keys have no default.

Field types are built by functions of ``core`` (``Int(1, 32)``), which static checkers do not read as types; the
project runs no static type checker on these modules."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import AfterValidator, model_validator

from .core import Bool, Int, IntIn, Model, Number, OneOf, PowerOfTwo, Text, expect, invalid

# The names a config may use; the modules that act on them import them from here.
BACKENDS = ("auto", "torch", "native", "tcnn")  # backends.resolve_backend
TABLE_PRECISIONS = ("float32", "float16")  # encoding.hashgrid.HashGridEncoding
MLP_PRECISIONS = ("auto", "float32", "float16", "bfloat16")  # model/precision.py
FULLY_FUSED_WIDTHS = (16, 32, 64, 128)  # tiny-cuda-nn's FullyFusedMLP
LOSSES = ("L2", "Huber")  # train/trainer.py
GRID_RESOLUTION = (8, 512)  # power of two: the bitfield packs 8 cells per byte, the coarse grid is resolution / 8

Fraction = Number(gt=0, le=1)


def _auto_or_bool(v: Any) -> bool | str:
    if v != "auto" and not isinstance(v, bool):
        raise ValueError("not auto or a bool")
    return v


AutoBool = Annotated[Any, AfterValidator(_auto_or_bool), expect('true, false or "auto"')]
Beta = Number(ge=0, lt=1)
BatchSize = Int(1, 1 << 24)


class Loss(Model):
    otype: OneOf(*LOSSES, case_sensitive=False) = "L2"


class Optimizer(Model):
    otype: OneOf("Adam") = "Adam"
    learning_rate: Number(gt=0)
    beta1: Beta
    beta2: Beta
    epsilon: Number(gt=0)
    l2_reg: Number(ge=0) = 0.0
    decay_start: Int(0) = 20000
    decay_interval: Int(1) = 10000
    decay_base: Fraction = 0.33
    anneal_to_budget: Bool = True
    ema_decay: Number(ge=0, lt=1) = 0.95  # weight average per step, 0: off (train/ema.py)


class Encoding(Model):
    otype: OneOf("HashGrid") = "HashGrid"
    n_levels: Int(1, 32)
    n_features_per_level: IntIn(1, 2, 4, 8)
    log2_hashmap_size: Int(10, 24)
    base_resolution: Int(1, 4096)
    desired_resolution: Number(ge=1, le=1 << 20) = 2048
    per_level_scale: Optional[Number(ge=1, le=16)] = None  # noqa: UP045 - pydantic evaluates it (py3.9)
    table_precision: OneOf(*TABLE_PRECISIONS) = "float32"


class Mlp(Model):
    """What both MLPs share."""

    otype: OneOf("FullyFusedMLP", "CutlassMLP") = "FullyFusedMLP"
    activation: OneOf("ReLU") = "ReLU"
    n_neurons: Int(1, 1024)
    n_hidden_layers: Int(0, 16)

    @model_validator(mode="after")
    def _fused_width(self) -> Mlp:
        if self.otype == "FullyFusedMLP" and self.n_neurons not in FULLY_FUSED_WIDTHS:
            raise invalid(
                f"expected {', '.join(map(str, FULLY_FUSED_WIDTHS))} for a FullyFusedMLP, got "
                f'{self.n_neurons} (or use "otype": "CutlassMLP")',
                "n_neurons",
            )
        return self


class Network(Mlp):
    """The density MLP (its precision applies to both MLPs)."""

    output_activation: OneOf("None") = "None"
    n_output_dims: Int(1, 256) = 16
    precision: OneOf(*MLP_PRECISIONS) = "auto"


class RgbNetwork(Mlp):
    output_activation: OneOf("Sigmoid") = "Sigmoid"
    n_output_dims: Int(3, 3) = 3


class DirEncoding(Model):
    otype: OneOf("SphericalHarmonics") = "SphericalHarmonics"
    degree: Int(1, 4) = 4


class Training(Model):
    target_batch_size: BatchSize
    target_batch_size_cpu: BatchSize = 16384
    max_steps_per_ray: Int(1, 1 << 16) = 1024  # samples a ray may take (NERF_STEPS); empty space costs none
    near_distance: Number(ge=0, le=64) = 0.1  # rays start this far from the camera (instant-ngp's near_distance)
    transmittance_threshold: Number(ge=0, lt=1) = 1e-4
    readback_interval: Int(1, 1 << 16) = 16  # steps between read-backs of the batch counters (train/trainer.py)
    march_headroom: Number(ge=1, le=16) = 1.15  # march buffer: expected marched samples times this (train/batching.py)
    random_background: Bool = True
    error_map: AutoBool = "auto"  # error-map pixel sampling (train/error_map.py); auto: policy.error_map_on
    error_map_resolution: Int(1, 256) = 16  # cells per side of each image's error map (instant-ngp's 16)
    optimize_extrinsics: Bool = False
    extrinsic_learning_rate: Number(ge=0) = 3e-4


class DensityGrid(Model):
    resolution: PowerOfTwo(*GRID_RESOLUTION)
    update_interval: Int(1)
    decay: Fraction
    threshold: Number(ge=0)
    warmup_steps: Int(0) = 256  # CUDA: instant-ngp's warm-up schedule, every cell evaluated (train/trainer.py)
    warmup_steps_cpu: Int(0) = 0  # CPU: none, updates every update_interval from step 0 (docs/benchmarks.md)
    mark_untrained: Bool = True  # cells no training camera sees stay empty (render/visibility.py)
    update_fraction: Fraction = 0.25
    update_fraction_cpu: Fraction = 0.0625


class Appearance(Model):
    """Per-image exposure and appearance codes (model/appearance.py; docs/conventions.md, "Appearance")."""

    enabled: AutoBool = "auto"  # auto: on for scenes of opaque photos (real captures), off for RGBA renders
    exposure: Bool = True  # a learned log2 exposure per image and colour channel, applied to linear colour
    latent_dims: Int(0, 64) = 8  # a learned code per image, extra inputs of the colour MLP (0: none)
    exposure_learning_rate: Number(gt=0) = 1e-2  # follows the learning-rate schedule, as the other groups
    latent_learning_rate: Number(gt=0) = 1e-2
    exposure_l2: Number(ge=0) = 1e-4  # L2 weight pulling exposures towards 0 (unseen images: exactly there)
    fit_steps: Int(1, 10000) = 48  # NeRF-in-the-Wild evaluation: Adam steps fitting a held-out image's look
    fit_rays: Int(16, 1 << 20) = 4096  # ... on this many rays of its left half
    fit_learning_rate: Number(gt=0) = 5e-2


class Config(Model):
    """A whole config: the six required sections plus optional name, backend, loss, direction encoding and
    appearance."""

    name: Text = "config"
    backend: OneOf(*BACKENDS) = "auto"
    loss: Loss = Loss()
    optimizer: Optimizer
    encoding: Encoding
    network: Network
    dir_encoding: DirEncoding = DirEncoding()
    rgb_network: RgbNetwork
    training: Training
    density_grid: DensityGrid
    appearance: Appearance = Appearance()
