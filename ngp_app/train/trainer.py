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
from .batching import BatchSizer
from .ema import WeightEMA, load_raw_weight_arrays, raw_weight_arrays
from .extrinsics import PoseRefinement
from .image_stats import ImageStats
from .metrics import mse_to_psnr, psnr, ssim
from .optim import table_adam
from .scene_checks import check_rays_hit_box

log = logging.getLogger(__name__)
DEFAULT_EMA_DECAY = 0.95  # instant-ngp's; configs without optimizer.ema_decay get it


def grid_update_due(step: int, interval: int, warmup_steps: int) -> bool:
    """Whether training step ``step`` refreshes the occupancy grid. Without a warm-up (``warmup_steps`` <= 0): every
    ``interval`` steps from step 0. With one, instant-ngp's schedule: every step at first, then every ``step // g``
    steps (g = warmup_steps / interval), every ``interval`` steps from ``warmup_steps`` on (16 and 256 by default)."""
    if warmup_steps <= 0:
        return step % interval == 0
    growth = max(1, warmup_steps // interval)
    return step % min(interval, max(1, step // growth)) == 0


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
        config: dict[str, Any],
        device: torch.device | str = "cpu",
        backend: str = "auto",
        seed: int = 0,
    ) -> None:
        check_rays_hit_box(scene)  # fail now, not after a run that trained on nothing
        self.scene = scene
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        torch.manual_seed(seed)
        # random numbers are drawn on the device: no host-to-device copies in a step
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        # An explicit backend (CLI/GUI) wins; "auto" defers to the config's "backend" (itself "auto" by default).
        requested = backend if backend != "auto" else str(config.get("backend", "auto"))
        self.ops = resolve_ops(requested, self.device)
        self.backend = self.ops.name
        self.aabb_values = tuple(float(v) for v in scene.aabb.reshape(-1).tolist())  # for marching, no host read
        self.nerf = build_model(config, SceneBox.of(scene), self.ops, self.device)
        # the parts the step uses (the same objects as the model's)
        self.model, self.grid, self.march, self.aabb = self.nerf.field, self.nerf.grid, self.nerf.march, self.nerf.aabb
        dg = config["density_grid"]
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
            if dg.get("mark_untrained", True)
            else None
        )
        if self.unseen is not None:
            self.grid.mark_untrained(self.unseen)
        tr = config["training"]
        on_gpu = self.device.type == "cuda"
        self.target_samples = int(tr["target_batch_size"] if on_gpu else tr.get("target_batch_size_cpu", 16384))
        self.transmittance_threshold = float(tr.get("transmittance_threshold", 1e-4))
        self.random_background = bool(tr.get("random_background", True))
        self.batch = BatchSizer(self.target_samples, headroom=float(tr.get("march_headroom", 1.15)))
        self.readback_interval = max(1, int(tr.get("readback_interval", 16)))
        self.last_read: dict[str, float] = {"loss": 0.0, "mse": 1.0, "marched": 0.0, "kept": 0.0}
        self._read_sums = np.zeros(4)  # read-backs, rays, marched and kept samples summed over them
        opt = config["optimizer"]
        self.base_lr = float(opt["learning_rate"])
        # Pose refinement: per-image corrections, trained (at their own rate) while ``optimize_extrinsics`` is on.
        self.poses = PoseRefinement(scene.n_frames).to(self.device)
        self.optimize_extrinsics = bool(tr.get("optimize_extrinsics", False))
        self.extrinsic_lr_scale = float(tr.get("extrinsic_learning_rate", 3e-4)) / self.base_lr
        # group 0 (hash table): sparse step with per-entry step counts (TableAdam on the backend's steps)
        self.optimizer = table_adam(self.ops)(
            [
                {"params": [self.model.encoding.table], "weight_decay": 0.0},
                {"params": self.model.mlp_parameters(), "weight_decay": float(opt.get("l2_reg", 0.0))},
                {"params": [self.poses.delta], "weight_decay": 0.0, "extrinsics": True},
            ],
            lr=self.base_lr,
            betas=(float(opt["beta1"]), float(opt["beta2"])),
            eps=float(opt["epsilon"]),
        )
        # Evaluation, rendering and snapshots read the moving average of the weights (off with ema_decay 0).
        ema_decay = float(opt.get("ema_decay", DEFAULT_EMA_DECAY))
        self.ema = WeightEMA(self.model, ema_decay) if ema_decay > 0 else None
        self.loss_type = config.get("loss", {}).get("otype", "L2").lower()
        self.step_count = 0
        self.train_seconds = 0.0
        self._samples_seen = torch.zeros((), dtype=torch.int64, device=self.device)  # kept samples, on the device
        self.budget_steps: int | None = None
        self.budget_seconds: float | None = None
        self.lock = threading.RLock()
        self.history: list[StepStats] = []
        self.scene.to(self.device)
        self.image_stats = ImageStats(scene.n_frames, self.device)  # per-image loss, for the app's table

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
        """instant-ngp's exponential decay, plus (with a known budget) annealing to 0.1x over its second half."""
        opt = self.config["optimizer"]
        lr = self.base_lr
        start, interval = int(opt.get("decay_start", 20000)), int(opt.get("decay_interval", 10000))
        if self.step_count > start:
            lr *= float(opt.get("decay_base", 0.33)) ** ((self.step_count - start) // interval)
        p = self.progress()
        if opt.get("anneal_to_budget", True) and p is not None and p > 0.5:
            lr *= 0.1 ** ((p - 0.5) / 0.5)
        return lr

    # ----------------------------------------------------------------------------------------------- grid
    def grid_update_fraction(self) -> float:
        dg = self.config["density_grid"]
        if self.device.type != "cuda":
            return float(dg.get("update_fraction_cpu", dg.get("update_fraction", 0.25)))
        return 1.0 if self.step_count < self.grid_warmup_steps() else float(dg.get("update_fraction", 0.25))

    def update_grid(self) -> None:
        """Refresh the occupancy grid from the current density field."""
        self.grid.update(self.model.density, self.grid_update_fraction(), generator=self.generator)

    # ----------------------------------------------------------------------------------------------- step
    def grid_warmup_steps(self) -> int:
        """Length of the occupancy grid's warm-up (``grid_update_due``): ``density_grid.warmup_steps`` on CUDA, where
        a warm-up update evaluates every cell as instant-ngp's does; ``warmup_steps_cpu`` (0: none) on CPU, where
        updates sample ``update_fraction_cpu`` of the cells and frequent early ones cost quality
        (docs/benchmarks.md)."""
        dg = self.config["density_grid"]
        if self.device.type != "cuda":
            return int(dg.get("warmup_steps_cpu", 0))
        return int(dg.get("warmup_steps", 256))

    def is_grid_update_step(self) -> bool:
        """Whether this step first refreshes the occupancy grid (``grid_update_due``)."""
        return grid_update_due(
            self.step_count, int(self.config["density_grid"]["update_interval"]), self.grid_warmup_steps()
        )

    def is_readback_step(self) -> bool:
        """Whether this step reads its counters back from the device (the first steps, then every interval)."""
        return self.step_count < self.readback_interval or self.step_count % self.readback_interval == 0

    def step(self) -> StepStats:
        """One optimisation step on a batch of random rays sized so that their live samples meet the target.

        Apart from read-back steps (``is_readback_step``) and occupancy-grid updates, a step with the native ops
        does not synchronise with the device: no sizes or values are read back.
        """
        with self.lock:
            t_start = time.perf_counter()
            self.model.train()
            if self.is_grid_update_step():
                self.update_grid()
            readback = self.is_readback_step()
            n_rays = self.batch.n_rays()
            rays_o, rays_d, target, images = self.scene.sample_rays_with_images(n_rays, self.generator)
            if self.optimize_extrinsics:
                rays_o, rays_d = self.poses.apply(rays_o, rays_d, images)
            if self.random_background:
                bg = torch.rand(n_rays, 3, generator=self.generator, device=self.device)
            else:
                bg = torch.ones(n_rays, 3, device=self.device)
            if target.shape[1] == 4:
                target = target[:, :3] * target[:, 3:] + bg * (1.0 - target[:, 3:])
            jitter = torch.rand(n_rays, generator=self.generator, device=self.device)
            out = render_rays_train(
                self.model,
                self.grid,
                self.aabb_values,
                rays_o,
                rays_d,
                self.march,
                bg,
                self.batch.march_capacity(n_rays),
                self.target_samples,
                jitter,
                self.transmittance_threshold,
                ops=self.ops,
            )
            # rays whose samples did not fit the buffers are left out of the loss (weight 0)
            valid = out["valid"]
            denom = 3.0 * valid.sum().clamp(min=1.0)
            sq_err = ((out["rgb"] - target) ** 2).sum(-1)
            self.image_stats.update(images, sq_err, valid)
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
                    group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=False)
            loss.backward()
            self.optimizer.step()
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
        values = torch.stack(
            [
                loss.detach().double(),
                mse.detach().double(),
                marched.requested.double(),
                marched.valid.sum().double(),
                kept.requested.double(),
                kept.total.double(),
            ]
        ).tolist()
        loss_v, mse_v, n_marched, march_fit, n_live, n_kept = values
        self.last_read = {"loss": loss_v, "mse": mse_v, "marched": n_marched, "kept": n_kept}
        self._read_sums += (1, n_rays, n_marched, n_kept)
        self.batch.update(n_rays, n_marched, march_fit, n_live)

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
            if seconds is not None and elapsed >= seconds:
                break
            if should_stop is not None and should_stop():
                break
            stats = self.step()
            if callback is not None:
                callback(stats)
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


@torch.no_grad()
def evaluate(
    nerf: NerfModel,
    scene: Scene,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    on_image: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Render every frame of ``scene`` with ``nerf`` and compare with its images composited on ``background``.

    Returns ``psnr``: the mean of the per-image PSNRs (the convention of instant-ngp, nerfacc and nerfstudio),
    ``psnr_pooled``: the PSNR of the mean squared error over all pixels (with images of one size never above
    ``psnr``: it weighs the worst images more), mean ``ssim``, ``n_images`` and per-image values (``images``).
    """
    nerf.field.eval()
    bg = torch.tensor(background, dtype=torch.float32)
    per_image = []
    sq_err, n_px = 0.0, 0
    indices = range(scene.n_frames)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="img")
    for i in indices:
        gt = scene.image(i).float().cpu() / 255.0
        if gt.shape[-1] == 4:
            gt = gt[..., :3] * gt[..., 3:] + bg * (1.0 - gt[..., 3:])
        pred = nerf.render(scene.camera(i), background)["rgb"].cpu().clamp(0, 1)
        mse = float(((pred - gt) ** 2).mean())
        sq_err += mse * gt.shape[0] * gt.shape[1]
        n_px += gt.shape[0] * gt.shape[1]
        per_image.append({"file": scene.file_names[i], "psnr": psnr(pred, gt), "ssim": ssim(pred, gt)})
        if on_image is not None:
            on_image(i, pred, gt)
    return {
        "psnr": sum(p["psnr"] for p in per_image) / max(len(per_image), 1),
        "psnr_pooled": mse_to_psnr(sq_err / max(n_px, 1)),
        "ssim": sum(p["ssim"] for p in per_image) / max(len(per_image), 1),
        "n_images": len(per_image),
        "images": per_image,
    }
