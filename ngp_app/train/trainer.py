"""The trainer: owns the field, occupancy grid and optimiser of one scene, and advances them step by step.

It is written to be driven from a CLI loop or a GUI background thread: ``step()`` does one optimisation step
and returns its statistics; ``lock`` guards the model so a renderer can read a consistent state.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..compute import resolve_ops
from ..data.scene import Scene
from ..model.field import NGPField
from ..nerf_model import NerfModel, SceneBox, build_model
from ..render.renderer import render_rays_train
from ..render.visibility import unseen_cells
from ..schema.config import Config
from .batching import BatchSizer
from .ema import WeightEMA, load_raw_weight_arrays, raw_weight_arrays
from .error_map import ErrorMap
from .extrinsics import PoseRefinement
from .image_stats import ImageStats
from .metrics import mse_to_psnr
from .optim import table_adam
from .policy import TrainingPolicy, error_map_on, resolve_appearance
from .scene_checks import check_rays_hit_box

log = logging.getLogger(__name__)


@dataclass
class StepStats:
    """What one training step did. Counters are read back from the device only every ``readback_interval`` steps
    (``synced``); in between, loss, psnr and the sample counts are those of the last read-back."""

    step: int
    loss: float
    psnr: float
    n_rays: int
    n_samples: int  # samples trained on (the kept, live samples)
    lr: float
    seconds: float
    n_marched: int = 0  # samples marched by all rays of the step
    synced: bool = True


class Trainer:
    """Trains an :class:`NGPField` on a :class:`Scene`."""

    def __init__(
        self,
        scene: Scene,
        config: Config,
        device: torch.device | str = "cpu",
        backend: str = "auto",
        seed: int = 0,
    ) -> None:
        check_rays_hit_box(scene)  # fail now, not after a run that trained on nothing
        self.scene = scene
        config = resolve_appearance(config, scene.has_alpha)  # snapshots store the decision
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        torch.manual_seed(seed)
        # random numbers are drawn on the device: no host-to-device copies in a step
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        # An explicit backend (CLI/GUI) wins; "auto" defers to the config's "backend" (itself "auto" by default).
        requested = backend if backend != "auto" else config.backend
        self.ops = resolve_ops(requested, self.device)
        self.backend = self.ops.name
        self.aabb_values = tuple(float(v) for v in scene.aabb.reshape(-1).tolist())  # for marching, no host read
        n_looks = scene.n_frames if config.appearance.enabled else 0
        self.nerf = build_model(config, SceneBox.of(scene), self.ops, self.device, n_images=n_looks)
        # the parts the step uses (the same objects as the model's)
        self.model, self.grid, self.march, self.aabb = self.nerf.field, self.nerf.grid, self.nerf.march, self.nerf.aabb
        dg, tr, opt = config.density_grid, config.training, config.optimizer
        # Cells no training camera sees get no training signal: empty for good (instant-ngp's mark-untrained).
        self.unseen = (
            unseen_cells(
                self.grid.n_cascades,
                self.grid.resolution,
                scene.c2w,
                scene.intrinsics,
                torch.stack([scene.widths, scene.heights], -1),
                scene.distortion,
            )
            if dg.mark_untrained
            else None
        )
        if self.unseen is not None:
            self.grid.mark_untrained(self.unseen)
        on_gpu = self.device.type == "cuda"
        self.policy = TrainingPolicy.for_config(config, on_gpu)  # learning rate, grid updates, read-backs
        self.target_samples = tr.target_batch_size if on_gpu else tr.target_batch_size_cpu
        self.transmittance_threshold = tr.transmittance_threshold
        self.random_background = tr.random_background
        self.batch = BatchSizer(self.target_samples, headroom=tr.march_headroom)
        self.last_read: dict[str, float] = {"loss": 0.0, "mse": 1.0, "marched": 0.0, "kept": 0.0}
        self._read_sums = np.zeros(4)  # read-backs, rays, marched and kept samples summed over them
        self.base_lr = opt.learning_rate
        # Pose refinement: per-image corrections, trained (at their own rate) while ``optimize_extrinsics`` is on.
        self.poses = PoseRefinement(scene.n_frames).to(self.device)
        self.optimize_extrinsics = tr.optimize_extrinsics
        self.extrinsic_lr_scale = tr.extrinsic_learning_rate / self.base_lr
        # group 0 (hash table): sparse step with per-entry step counts (TableAdam on the backend's steps)
        self.optimizer = table_adam(self.ops)(
            [
                {"params": [self.model.encoding.table], "weight_decay": 0.0},
                {"params": self.model.mlp_parameters(), "weight_decay": opt.l2_reg},
                {"params": [self.poses.delta], "weight_decay": 0.0, "extrinsics": True},
                *self._appearance_groups(),
            ],
            lr=self.base_lr,
            betas=(opt.beta1, opt.beta2),
            eps=opt.epsilon,
        )
        # Evaluation, rendering and snapshots read the moving average of the weights (off with ema_decay 0).
        self.ema = WeightEMA(self.model, opt.ema_decay) if opt.ema_decay > 0 else None
        self.loss_type = config.loss.otype.lower()
        self.step_count = 0
        self.train_seconds = 0.0
        self._samples_seen = torch.zeros((), dtype=torch.int64, device=self.device)  # kept samples, on the device
        self.budget_steps: int | None = None
        self.budget_seconds: float | None = None
        self.lock = threading.RLock()
        self.history: list[StepStats] = []
        # Under torchrun (train/data_parallel.py): this rank's share of each step's rays; None for one process.
        self.share: Any = None
        self.scene.to(self.device)
        self.image_stats = ImageStats(scene.n_frames, self.device)  # per-image loss, for the app's table
        # Error-map pixel sampling (instant-ngp's): where each step's rays go follows a coarse map of the loss.
        self.error_map: ErrorMap | None = None
        if error_map_on(config, scene.has_alpha, scene.kept is not None):
            self.error_map = ErrorMap(scene.n_frames, tr.error_map_resolution, device=self.device)
        elif tr.error_map is True:
            log.warning("error-map sampling is off: this scene has masks (a cell's pixels may all be masked out)")

    def _appearance_groups(self) -> list[dict[str, Any]]:
        """The optimiser groups of the per-image exposures (L2 towards 0) and codes, each at its own rate (a scale of
        the scheduled rate); none without appearance."""
        appearance = self.model.appearance
        if appearance is None:
            return []
        look, groups = self.config.appearance, appearance.parameter_groups()
        return [
            {"params": params, "weight_decay": decay, "lr_scale": rate / self.base_lr}
            for params, decay, rate in (
                (groups["exposure"], look.exposure_l2, look.exposure_learning_rate),
                (groups["latent"], 0.0, look.latent_learning_rate),
            )
            if params
        ]

    # ----------------------------------------------------------------------------------------------- resume
    def training_state(self, include_optimizer: bool = True) -> dict[str, np.ndarray]:
        """What a snapshot needs, beyond the model, to resume exactly: the batch-size estimate, pose corrections and
        (optionally) the Adam moments, step and per-entry step counts of every parameter (``TableAdam.state_arrays``)
        and, with the weight average on, the raw training weights (``raw.<name>``: the snapshot's model is the
        average)."""
        state: dict[str, np.ndarray] = {
            "samples_per_ray": np.asarray(self.batch.kept_per_ray, dtype=np.float64),
            "marched_per_ray": np.asarray(self.batch.marched_per_ray, dtype=np.float64),
        }
        if bool((self.poses.delta != 0).any()):
            state["poses"] = self.poses.delta.detach().cpu().numpy()
        if include_optimizer:
            state.update(self.optimizer.state_arrays())
            if self.ema is not None:
                state.update(raw_weight_arrays(self.model))
                state["ema_steps"] = np.asarray(self.ema.steps, dtype=np.int64)
        return state

    def restore(self, snapshot: Any) -> None:
        """Continue from a snapshot of this scene: weights, occupancy grid, step count, and the training state it
        carries (pose corrections, optimiser moments, raw weights; without moments Adam restarts from zero, without
        raw weights training continues from the snapshot's model, the weight average)."""
        from ..errors import SnapshotError

        with self.lock:
            try:
                self.model.load_state_dict(snapshot.nerf.field.state_dict())
                self.grid.load_state_dict(snapshot.nerf.grid.state_dict())
                if self.unseen is not None:  # snapshots from before the marking have none
                    self.grid.mark_untrained(self.unseen)
            except (RuntimeError, ValueError) as exc:
                raise SnapshotError(
                    f"the snapshot does not fit this scene and config: {str(exc).splitlines()[0][:200]}"
                ) from None
            self.step_count = int(snapshot.step)
            try:  # the frames the saved run had left out of training stay out
                self.scene.set_excluded((snapshot.scene or {}).get("excluded") or [])
            except ValueError as exc:
                raise SnapshotError(f"the snapshot's excluded frames do not fit this scene: {exc}") from None
            state = snapshot.training_state or {}
            if self.ema is not None:  # the snapshot's model is the average (or, from older snapshots, the weights)
                self.ema.reset(self.model, int(state.get("ema_steps", self.step_count)))
            try:
                load_raw_weight_arrays(self.model, state)
            except ValueError as exc:
                raise SnapshotError(str(exc)) from None
            if "samples_per_ray" in state:  # sizes the next batches as the saved run would have
                self.batch.kept_per_ray = float(state["samples_per_ray"])
            if "marched_per_ray" in state:
                self.batch.marched_per_ray = float(state["marched_per_ray"])
            if "poses" in state:
                poses = torch.from_numpy(state["poses"]).float()
                if poses.shape != self.poses.delta.shape:
                    raise SnapshotError(
                        f"the snapshot refines {poses.shape[0]} cameras, this scene has {self.poses.delta.shape[0]}"
                    )
                with torch.no_grad():
                    self.poses.delta.copy_(poses)
            try:
                self.optimizer.load_state_arrays(state)
            except ValueError as exc:
                raise SnapshotError(str(exc)) from None

    def save_snapshot(self, path: Any, include_optimizer: bool = False) -> Any:
        """Write a snapshot (``snapshot.save_snapshot``; returns its path): the evaluation model (the weight average),
        grid, config, scene, step, and the training state (``include_optimizer``: for an exact resume)."""
        from ..snapshot import save_snapshot

        with self.lock:
            return save_snapshot(
                path,
                self.eval_nerf,
                self.config,
                self.scene_metadata(),
                self.step_count,
                {"backend": self.backend},
                self.training_state(include_optimizer),
            )

    def scene_metadata(self) -> dict[str, Any]:
        """The scene's metadata for snapshots, with the refined training poses when pose refinement has run."""
        meta = self.scene.metadata()
        if bool((self.poses.delta != 0).any()):
            meta["c2w"] = self.poses.corrected_c2w(self.scene.c2w.float()).cpu().tolist()
            meta["extrinsics_refined"] = True
        return meta

    # ----------------------------------------------------------------------------------------------- schedule
    def progress(self) -> float | None:
        """Fraction of the training budget used (None without a budget)."""
        fractions = []
        if self.budget_steps:
            fractions.append(self.step_count / self.budget_steps)
        if self.budget_seconds:
            fractions.append(self.train_seconds / self.budget_seconds)
        return min(1.0, max(fractions)) if fractions else None

    def learning_rate(self) -> float:
        """The policy's rate for this step (``progress``: the budget used)."""
        return self.policy.learning_rate(self.step_count, self.progress())

    def update_grid(self) -> None:
        """Refresh the occupancy grid from the current density field (the share of cells the policy says)."""
        fraction = self.policy.grid_update_fraction(self.step_count)
        self.grid.update(self.model.density, fraction, generator=self.generator)

    # ----------------------------------------------------------------------------------------------- step
    def step(self) -> StepStats:
        """One optimisation step on a batch of random rays sized so that their live samples meet the target.

        Apart from read-back steps (``policy.readback_due``) and occupancy-grid updates, a step with the native ops
        does not synchronise with the device: no sizes or values are read back.
        """
        with self.lock:
            t_start = time.perf_counter()
            self.model.train()
            if self.policy.grid_update_due(self.step_count):
                self.update_grid()
            readback = self.policy.readback_due(self.step_count)
            n_rays = self.batch.n_rays()
            emap = self.error_map
            if emap is None:
                rays_o, rays_d, target, images = self.scene.sample_rays_with_images(n_rays, self.generator)
            else:
                if emap.due(self.step_count):
                    emap.refresh()
                images, px, py = emap.sample(self.scene, n_rays, self.generator)
                rays_o, rays_d, target = self.scene.rays_at(images, px, py)
            if self.optimize_extrinsics:
                rays_o, rays_d = self.poses.apply(rays_o, rays_d, images)
            if self.random_background:
                bg = torch.rand(n_rays, 3, generator=self.generator, device=self.device)
            else:
                bg = torch.ones(n_rays, 3, device=self.device)
            if target.shape[1] == 4:
                target = target[:, :3] * target[:, 3:] + bg * (1.0 - target[:, 3:])
            jitter = torch.rand(n_rays, generator=self.generator, device=self.device)
            march_slots, keep_slots = self.batch.march_capacity(n_rays), self.target_samples
            share = self.share
            if share is not None:  # every rank drew the same global batch: this rank's rows of it, its slots
                rays_o, rays_d, target, images, bg, jitter = share.rows(rays_o, rays_d, target, images, bg, jitter)
                march_slots, keep_slots = share.part(march_slots), share.part(keep_slots)
            out = render_rays_train(
                self.model,
                self.grid,
                self.aabb_values,
                rays_o,
                rays_d,
                self.march,
                bg,
                march_slots,
                keep_slots,
                jitter,
                self.transmittance_threshold,
                ops=self.ops,
                frames=images if self.model.appearance is not None else None,
            )
            # rays whose samples did not fit the buffers are left out of the loss (weight 0)
            valid = out["valid"]
            # one process: the mean over valid rays; several: this rank's sum, its gradients divided by the global
            # count of valid rays once summed over the ranks (RayShare.reduce_gradients)
            denom = 3.0 * valid.sum().clamp(min=1.0) if share is None else 3.0
            sq_err = ((out["rgb"] - target) ** 2).sum(-1)
            self.image_stats.update(images, sq_err, valid)
            if emap is not None:
                emap.record(self.scene, images, px, py, sq_err, valid)
            mse = (sq_err * valid).sum() / denom
            if self.loss_type == "huber":
                per_ray = torch.nn.functional.huber_loss(out["rgb"], target, delta=0.1, reduction="none").sum(-1)
                loss = (per_ray * valid).sum() / denom
            else:
                loss = mse
            lr = self.learning_rate()
            for group in self.optimizer.param_groups:
                if group.get("extrinsics"):  # frozen (lr 0, no gradient) unless pose refinement is on
                    group["lr"] = lr * self.extrinsic_lr_scale if self.optimize_extrinsics else 0.0
                else:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
            self.optimizer.zero_grad(set_to_none=False)
            loss.backward()
            if share is not None:
                total = share.reduce_gradients(self._trained_parameters(), valid.sum())
                loss, mse = loss / total, mse / total  # this rank's part of the global mean
            self.optimizer.step()
            if self.model.appearance is not None:
                self.model.appearance.recenter_()
            if self.ema is not None:  # no host read: one in-place lerp per parameter
                self.ema.update(self.model)
            kept = out["kept"]
            self._samples_seen += kept.total
            if readback:
                self._read_back(n_rays, loss, mse, out)
            self.step_count += 1
            seconds = time.perf_counter() - t_start
            self.train_seconds += seconds
            last = self.last_read
            stats = StepStats(
                self.step_count,
                last["loss"],
                mse_to_psnr(last["mse"]),
                n_rays,
                int(last["kept"]),
                lr,
                seconds,
                int(last["marched"]),
                readback,
            )
            self.history.append(stats)
            return stats

    def _read_back(self, n_rays: int, loss: torch.Tensor, mse: torch.Tensor, out: dict[str, Any]) -> None:
        """The one host read of a read-back step: loss, MSE and the sample counters, which size the next steps."""
        marched, kept = out["marched"], out["kept"]
        stacked = torch.stack(
            [
                loss.detach().double(),
                mse.detach().double(),
                marched.requested.double(),
                marched.valid.sum().double(),
                kept.requested.double(),
                kept.total.double(),
            ]
        )
        # several ranks: the sums over the ranks, the global batch's (n_rays is its count), identical on every rank
        values = stacked.tolist() if self.share is None else self.share.reduce_counters(stacked)
        loss_v, mse_v, n_marched, march_fit, n_live, n_kept = values
        self.last_read = {"loss": loss_v, "mse": mse_v, "marched": n_marched, "kept": n_kept}
        self._read_sums += (1, n_rays, n_marched, n_kept)
        self.batch.update(n_rays, n_marched, march_fit, n_live)

    def _trained_parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter the optimiser steps, in its groups' order (the same on every rank)."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def batch_summary(self) -> dict[str, float]:
        """Mean rays, marched and kept samples per step over the read-back steps (for metrics.json)."""
        n, rays, marched, kept = self._read_sums
        n = max(n, 1.0)
        return {
            "rays_per_step": round(rays / n, 1),
            "marched_samples_per_step": round(marched / n, 1),
            "kept_samples_per_step": round(kept / n, 1),
        }

    @property
    def samples_seen(self) -> int:
        """Samples trained on so far (reads a device counter)."""
        return int(self._samples_seen)

    def train(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        callback: Callable[[StepStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        checkpoint: Callable[[], None] | None = None,
        checkpoint_every: float | None = None,
    ) -> None:
        """Train until ``steps`` more steps or ``seconds`` of wall time (whichever first), or ``should_stop()``.
        ``checkpoint()`` runs every ``checkpoint_every`` seconds (not when the run ends sooner than a quarter of
        that: the final save follows); its time does not count against ``seconds``."""
        if steps is None and seconds is None:
            raise ValueError("give steps or seconds")
        self.budget_steps = self.step_count + steps if steps is not None else None
        self.budget_seconds = self.train_seconds + seconds if seconds is not None else None
        wall_start = time.perf_counter()
        first_step, paused = self.step_count, 0.0
        last_checkpoint = wall_start
        while True:
            elapsed = time.perf_counter() - wall_start - paused
            if steps is not None and self.step_count >= self.budget_steps:  # type: ignore[operator]
                break
            time_up = seconds is not None and elapsed >= seconds
            if self.share is not None:  # ranks stop together, at the read-back where one of them asked
                self.share.vote = time_up or (should_stop is not None and should_stop())
            elif time_up or (should_stop is not None and should_stop()):
                break
            stats = self.step()
            if callback is not None:
                callback(stats)
            if self.share is not None and self.share.stop:
                break
            if checkpoint is None or not checkpoint_every or time.perf_counter() - last_checkpoint < checkpoint_every:
                continue
            elapsed = time.perf_counter() - wall_start - paused
            left = [seconds - elapsed] if seconds is not None else []
            if steps is not None:  # time left at the pace so far
                left.append((self.budget_steps - self.step_count) * elapsed / max(self.step_count - first_step, 1))  # type: ignore[operator]
            if min(left) < checkpoint_every / 4:
                continue
            t = time.perf_counter()
            checkpoint()
            last_checkpoint = time.perf_counter()
            paused += last_checkpoint - t

    # ----------------------------------------------------------------------------------------------- eval
    @property
    def eval_model(self) -> NGPField:
        """The field to evaluate, render and save: the weight average when it is on, else the training field."""
        return self.ema.model if self.ema is not None else self.model

    @property
    def eval_nerf(self) -> NerfModel:
        """The model to evaluate, render and save (its field: ``eval_model``; the grid, march and box: training's)."""
        return self.nerf.with_field(self.eval_model)

    def samples_per_second(self) -> float:
        return self.samples_seen / self.train_seconds if self.train_seconds > 0 else 0.0
