"""Whole-frame inference in few passes over fixed-stride sample slots, with the rays that finished compacted away
on the device (render/slots.py describes the ops; the native ones are in kernels/include/ngp/slots.h).

Per call: find each ray's first sample, compact the rays that have one, then per pass march the alive rays' next K
samples into K slots each, evaluate the field on every slot, composite, and compact again. The ops come from the
backend (``Ops.frame``). The only host read is
the alive count after each compaction (it sizes the next pass or ends the loop), so a frame costs passes + 1 reads.
K grows as rays finish (``PassSchedule``), keeping the slot buffer near the call's ray count.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Callable, Protocol

import torch

FieldFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class PassSchedule:
    """Slots per alive ray and pass: ``clamp(target // n_alive, k_min, k_max)``, ``target`` slots per pass
    (default: the call's ray count, instant-ngp's rule). Few slots while many rays are alive (little work spent on
    slots past where a ray finishes), more for the last rays (fewer passes, each costing launches and a read).
    Measured on the CPU too (480x270 of the bundled scene): 14 passes took 7.5 s, a 2^14-slot target's 64 passes
    14 s for 12% fewer slots: fewer passes win on both devices."""

    k_min: int = 1
    k_max: int = 64
    target: int | None = None

    def slots_per_ray(self, n_alive: int, n_rays: int) -> int:
        target = self.target if self.target is not None else n_rays
        return max(self.k_min, min(self.k_max, target // max(n_alive, 1)))


@dataclass
class FrameState:
    """Per-ray state of the rays of one call: trans, depth (n,), rgb (n, 3) without background, k (n,) int64."""

    trans: torch.Tensor
    rgb: torch.Tensor
    depth: torch.Tensor
    k: torch.Tensor

    @staticmethod
    def new(n: int, device: torch.device) -> FrameState:
        return FrameState(
            torch.ones(n, device=device),
            torch.zeros(n, 3, device=device),
            torch.zeros(n, device=device),
            torch.empty(n, dtype=torch.int64, device=device),
        )


@dataclass
class FrameStats:
    """What a render did: passes, host reads of the alive count, slots evaluated (sum of n_alive * K)."""

    passes: int = 0
    reads: int = 0
    slots: int = 0
    rays: int = 0
    per_pass: list[tuple[int, int]] = dataclass_field(default_factory=list)  # (n_alive, K)

    def as_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "reads": self.reads, "slots": self.slots, "rays": self.rays}


class FrameOps(Protocol):
    """The per-pass ops of one frame (``Ops.frame(grid, aabb, params)``; render/slots.py is the reference)."""

    def march_first(self, rays_o: torch.Tensor, rays_d: torch.Tensor, k: torch.Tensor) -> None: ...

    def march_slots(
        self, rays_o: torch.Tensor, rays_d: torch.Tensor, alive: torch.Tensor, k: torch.Tensor, K: int
    ) -> list[torch.Tensor]: ...

    def composite_slots(
        self,
        sigmas: torch.Tensor,
        rgbs: torch.Tensor,
        t: torch.Tensor,
        dt: torch.Tensor,
        counts: torch.Tensor,
        alive: torch.Tensor,
        K: int,
        threshold: float,
        trans: torch.Tensor,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        k: torch.Tensor,
    ) -> None: ...

    def compact_rays(self, alive: torch.Tensor, k: torch.Tensor, out: torch.Tensor, counter: torch.Tensor) -> None: ...

    def rgba8(self, rgb: torch.Tensor, trans: torch.Tensor, background: torch.Tensor, out: torch.Tensor) -> None: ...


def march_frame(
    field: FieldFn,
    ops: FrameOps,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    transmittance_threshold: float = 1e-4,
    schedule: PassSchedule | None = None,
    on_pass: Callable[[int], None] | None = None,
    stats: FrameStats | None = None,
) -> FrameState:
    """Render rays (n, 3) (unit directions) in passes; returns their state. ``on_pass(n_finished)`` after each
    pass (it may raise to cancel). One host read per pass, plus one before the first. The field computes in its
    own precision (a model's MLPs: float16 on CUDA by default, model/precision.py)."""
    n, dev = rays_o.shape[0], rays_o.device
    rays_o, rays_d = rays_o.contiguous().float(), rays_d.contiguous().float()
    schedule = schedule or PassSchedule()
    state = FrameState.new(n, dev)
    alive = torch.arange(n, dtype=torch.int32, device=dev)
    spare = torch.empty_like(alive)
    counter = torch.zeros(1, dtype=torch.int32, device=dev)
    ops.march_first(rays_o, rays_d, state.k)
    ops.compact_rays(alive, state.k, spare, counter)
    alive, spare = spare, alive
    n_alive = int(counter.item())
    if stats is not None:
        stats.reads += 1
        stats.rays += n
    while n_alive > 0:
        K = schedule.slots_per_ray(n_alive, n)
        live = alive[:n_alive]
        positions, directions, t, dt, counts = ops.march_slots(rays_o, rays_d, live, state.k, K)
        sigmas, rgbs = field(positions, directions)
        ops.composite_slots(
            sigmas.float().contiguous(),
            rgbs.float().contiguous(),
            t,
            dt,
            counts,
            live,
            K,
            transmittance_threshold,
            state.trans,
            state.rgb,
            state.depth,
            state.k,
        )
        ops.compact_rays(live, state.k, spare, counter)
        alive, spare = spare, alive
        if stats is not None:
            stats.passes += 1
            stats.reads += 1
            stats.slots += n_alive * K
            stats.per_pass.append((n_alive, K))
        n_alive = int(counter.item())
        if on_pass is not None:
            on_pass(n - n_alive)
    return state


FRAME_BYTES_PER_RAY = 4096
"""Memory one ray of a call may need at once: its state and lists (~50 B) and, with the default schedule, up to one
pass slot of samples and float32 field activations (hash features, 64-wide hidden layers; the normals view runs the
density network on 7 points per slot). A generous bound, used only to decide when a frame must be split."""


def max_rays_per_call(device: torch.device) -> int:
    """Rays one call may render at once: a quarter of the free GPU memory (plus what torch caches unused), or 2 GiB
    of host memory on the CPU, over ``FRAME_BYTES_PER_RAY``."""
    budget = 2 << 30
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = (free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)) // 4
    return max(1 << 12, int(budget // FRAME_BYTES_PER_RAY))
