"""The training schedules in one object: learning rate, occupancy-grid updates (with instant-ngp's warm-up) and the
steps that read counters back from the device. The trainer asks it; it holds no model state."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import with_overrides
from ..schema.config import Config


def grid_update_due(step: int, interval: int, warmup_steps: int) -> bool:
    """Whether training step ``step`` refreshes the occupancy grid. Without a warm-up (``warmup_steps`` <= 0): every
    ``interval`` steps from step 0. With one, instant-ngp's schedule: every step at first, then every ``step // g``
    steps (g = warmup_steps / interval), every ``interval`` steps from ``warmup_steps`` on (16 and 256 by default)."""
    if warmup_steps <= 0:
        return step % interval == 0
    growth = max(1, warmup_steps // interval)
    return step % min(interval, max(1, step // growth)) == 0


def appearance_on(config: Config, has_alpha: bool) -> bool:
    """Whether a scene trains per-image appearance: ``appearance.enabled``, where ``"auto"`` means on for scenes of
    opaque photos (real captures: exposure and white balance vary) and off for RGBA renders (synthetic scenes,
    where it measures no better: docs/benchmarks.md); off when neither exposure nor codes are configured."""
    look = config.appearance
    wanted = (not has_alpha) if look.enabled == "auto" else bool(look.enabled)
    return wanted and (look.exposure or look.latent_dims > 0)


def error_map_on(config: Config, has_alpha: bool, has_masks: bool) -> bool:
    """Whether a scene trains with error-map pixel sampling: ``training.error_map``, where ``"auto"`` means off for
    now (docs/benchmarks.md "Error-map sampling": one seed each, +1.46 dB on the fox, +0.09 on the demo; to be
    confirmed on more seeds and with appearance on before it turns on for photos); never with masks."""
    wanted = config.training.error_map
    on = False if wanted == "auto" else bool(wanted)
    return on and not has_masks


def resolve_appearance(config: Config, has_alpha: bool) -> Config:
    """``config`` with ``appearance.enabled`` decided (true or false, as a snapshot stores it)."""
    on = appearance_on(config, has_alpha)
    return config if config.appearance.enabled is on else with_overrides(config, {"appearance": {"enabled": on}})


@dataclass(frozen=True)
class TrainingPolicy:
    """When and how fast the trainer does things, for one config on one kind of device.

    Learning rate: instant-ngp's exponential decay (``decay_base`` every ``decay_interval`` steps after
    ``decay_start``), plus annealing to 0.1x over the second half of a known budget. Grid: updated every
    ``grid_interval`` steps, more often during the warm-up (``grid_update_due``), sampling ``update_fraction`` of
    the cells (every cell during the warm-up). Read-backs: the first ``readback_interval`` steps, then every
    ``readback_interval`` steps."""

    base_lr: float
    decay_start: int
    decay_interval: int
    decay_base: float
    anneal_to_budget: bool
    grid_interval: int
    grid_warmup_steps: int
    update_fraction: float
    warmup_fraction: float  # the share of cells a warm-up update evaluates
    readback_interval: int

    @staticmethod
    def for_config(config: Config, on_gpu: bool) -> TrainingPolicy:
        """The config's schedules: on CUDA, ``density_grid.warmup_steps`` with every cell evaluated per warm-up
        update, as instant-ngp's; on CPU ``warmup_steps_cpu`` (0: none) and ``update_fraction_cpu``, where
        frequent early updates cost quality (docs/benchmarks.md)."""
        opt, dg = config.optimizer, config.density_grid
        return TrainingPolicy(
            base_lr=opt.learning_rate,
            decay_start=opt.decay_start,
            decay_interval=opt.decay_interval,
            decay_base=opt.decay_base,
            anneal_to_budget=opt.anneal_to_budget,
            grid_interval=dg.update_interval,
            grid_warmup_steps=dg.warmup_steps if on_gpu else dg.warmup_steps_cpu,
            update_fraction=dg.update_fraction if on_gpu else dg.update_fraction_cpu,
            warmup_fraction=1.0 if on_gpu else dg.update_fraction_cpu,
            readback_interval=config.training.readback_interval,
        )

    def learning_rate(self, step: int, progress: float | None = None) -> float:
        """The rate for ``step``; ``progress``: the fraction of the training budget used (None without one)."""
        lr = self.base_lr
        if step > self.decay_start:
            lr *= self.decay_base ** ((step - self.decay_start) // self.decay_interval)
        if self.anneal_to_budget and progress is not None and progress > 0.5:
            lr *= 0.1 ** ((progress - 0.5) / 0.5)
        return lr

    def grid_update_due(self, step: int) -> bool:
        """Whether ``step`` first refreshes the occupancy grid."""
        return grid_update_due(step, self.grid_interval, self.grid_warmup_steps)

    def grid_update_fraction(self, step: int) -> float:
        """The share of cells the update at ``step`` evaluates."""
        return self.warmup_fraction if step < self.grid_warmup_steps else self.update_fraction

    def readback_due(self, step: int) -> bool:
        """Whether ``step`` reads its counters back from the device (the first steps, then every interval)."""
        return step < self.readback_interval or step % self.readback_interval == 0
