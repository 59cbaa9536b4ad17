"""``ngp train``: train a scene into an output folder without ever losing the work.

- ``--out`` is checked (a folder, writable, room for the snapshot) and locked before anything loads.
- Every ``--checkpoint-every`` seconds the snapshot/metrics pair is saved (``run_files.RunFolder``: atomic,
  consistent after a kill at any moment).
- SIGINT/SIGTERM finish the current step, save, and exit 130/143 with a line saying where the files are.
- ``--eval`` runs after the final save; when it fails, metrics.json records the error and the snapshot stays.
- Under ``torchrun`` the ranks share every step's rays (``train.data_parallel``); rank 0 alone owns ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from typing import Any

from .. import cli_args as types
from ..errors import NgpError
from ..schema.config import Config
from ..signals import Interrupted, StopRequests

log = logging.getLogger("ngp_app")
OUT_CONTENTS = "snapshot.npz and metrics.json"
DEFAULT_CHECKPOINT_SECONDS = 300.0
SUMMARY_KEYS = (
    "steps",
    "seconds",
    "samples_per_second",
    "backend",
    "device",
    "test_psnr",
    "test_psnr_pooled",
    "test_psnr_nerfw",
)


def register(sub: Any, options: Any) -> None:
    """Add the command's parser to ``sub`` (``options``: the shared option groups, ``commands.options``)."""
    t = sub.add_parser("train", help="train a NeRF on a scene and write a snapshot + metrics.json")
    t.add_argument(
        "scene",
        nargs="?",
        default=str(options.DEFAULT_SCENE),
        help="scene folder or transforms.json (default: bundled demo)",
    )
    t.add_argument("--out", required=True, help="output folder (created; snapshot.npz and metrics.json go inside)")
    t.add_argument("--steps", type=types.positive_int, default=None)
    t.add_argument("--seconds", type=types.positive_float, default=None, help="stop after this much wall time")
    t.add_argument(
        "--config",
        default=None,
        help="base | small | big | path to a JSON config (default: base, or the resumed snapshot's)",
    )
    t.add_argument(
        "--backend", default="auto", help='auto | torch | native | tcnn (auto: the config\'s "backend", itself auto)'
    )
    t.add_argument("--seed", type=types.seed, default=0)
    t.add_argument(
        "--table-precision",
        choices=["float32", "float16"],
        default=None,
        help="hash table lookups in float32 or float16 (a half copy of float32 parameters; default: config)",
    )
    t.add_argument(
        "--mlp-precision",
        choices=["auto", "float32", "float16", "bfloat16"],
        default=None,
        help="MLP matmuls on CUDA: float32, float16, bfloat16, or auto = float16 on CUDA (float32 weights and "
        "gradients; the CPU always computes in float32; default: the config's network.precision, auto)",
    )
    t.add_argument(
        "--resume",
        default=None,
        metavar="SNAPSHOT",
        help="continue training from a snapshot of this scene (its config unless --config is given)",
    )
    t.add_argument(
        "--save-optimizer-state",
        action="store_true",
        help="store Adam's moments in the snapshot, so --resume continues exactly (the file grows ~3x)",
    )
    t.add_argument(
        "--optimize-extrinsics",
        action="store_true",
        help="refine the training cameras' poses while training (stored in the snapshot)",
    )
    t.add_argument(
        "--appearance",
        choices=["auto", "on", "off"],
        default=None,
        help="per-image exposure and appearance codes (auto: on for scenes of opaque photos, off for RGBA renders; "
        "default: the config's appearance.enabled, auto)",
    )
    t.add_argument(
        "--error-map",
        choices=["auto", "on", "off"],
        default=None,
        help="error-map pixel sampling: each image's rays follow a coarse map of its loss, half uniform, half where "
        "the error is (instant-ngp's; auto: off, docs/benchmarks.md; never with masks; default: the config's "
        "training.error_map, auto)",
    )
    t.add_argument(
        "--eval",
        action="store_true",
        help="evaluate held-out views after training (into metrics.json: test_psnr, the mean "
        "of per-image PSNRs, test_psnr_pooled, and test_psnr_nerfw, the right halves' PSNR after fitting each "
        "view's look on its left half; docs/conventions.md)",
    )
    t.add_argument("--all-frames", action="store_true", help="train on every frame, held-out ones included")
    t.add_argument(
        "--aabb-scale",
        type=types.aabb_scale,
        default=None,
        metavar="N",
        help="the scene box, a power of two 1..128, instead of the scene file's aabb_scale (larger reaches far "
        "backgrounds; the occupancy grid gets a cascade per doubling)",
    )
    t.add_argument(
        "--near-distance",
        type=types.float_in(0.0, 64.0),
        default=None,
        metavar="D",
        help="training and rendering rays start D from the camera, in the unit cube's units (instant-ngp's "
        "near_distance; default: the config's training.near_distance, 0.1), so a camera inside the box grows no "
        "density on its own lens",
    )
    options.common(t)
    options.scene(t)
    t.add_argument(
        "--checkpoint-every",
        type=types.float_in(0.0),
        default=DEFAULT_CHECKPOINT_SECONDS,
        metavar="S",
        help=f"save the snapshot and metrics every S seconds while training (default "
        f"{DEFAULT_CHECKPOINT_SECONDS:g}; 0: only at the end)",
    )
    t.set_defaults(func=run, sharded=True)


def run(args: argparse.Namespace) -> int:
    """``ngp train``: one process, or under ``torchrun`` every step's rays shared by the ranks (rank 0 writes)."""
    from ..distributed import joined

    with joined() as ranks:
        return train_on(args, ranks)


def train_on(args: argparse.Namespace, ranks: Any) -> int:
    """The body of ``ngp train`` with ``ranks`` (a ``distributed.Ranks``, or None for one process): rank 0 alone
    checks, locks and writes ``--out``; setup failures on any rank stop every rank with one line."""
    from ..backends import resolve_device
    from ..distributed import agreed
    from ..outputs import check_free_space, check_output_dir
    from ..train.run_files import RunFolder, snapshot_bytes

    first = ranks is None or ranks.first
    with contextlib.ExitStack() as stack:
        with agreed(ranks):
            device = resolve_device(args.device)
            device = ranks.device(device) if ranks is not None else device
            run = None
            if first:
                out = check_output_dir(args.out, 0, "--out", OUT_CONTENTS)  # before anything loads
                run = stack.enter_context(RunFolder(out))
        with agreed(ranks):
            trainer, config, scene_path = _prepare(args, device)
            if ranks is not None:
                from ..train.data_parallel import share_rays

                share_rays(trainer, ranks)
            if run is not None:
                check_free_space(run.path, snapshot_bytes(trainer, args.save_optimizer_state), "the snapshot")
        return _train_and_save(args, run, trainer, config, scene_path, device, ranks)


def _prepare(args: argparse.Namespace, device: Any) -> tuple[Any, dict[str, Any], str]:
    """Resume snapshot, config, scene and trainer, in that order (a bad snapshot fails before the images load)."""
    from ..config import load_config, with_overrides
    from ..data.loaders import load_scene
    from ..train.run_files import load_run_snapshot
    from ..train.trainer import Trainer

    overrides: dict[str, Any] = {}
    if args.table_precision:
        overrides["encoding"] = {"table_precision": args.table_precision}
    if args.mlp_precision:
        overrides["network"] = {"precision": args.mlp_precision}
    if args.optimize_extrinsics:
        overrides.setdefault("training", {})["optimize_extrinsics"] = True
    if args.near_distance is not None:
        overrides.setdefault("training", {})["near_distance"] = args.near_distance
    if args.error_map:
        overrides.setdefault("training", {})["error_map"] = {"auto": "auto", "on": True, "off": False}[args.error_map]
    if args.appearance:
        overrides["appearance"] = {"enabled": {"auto": "auto", "on": True, "off": False}[args.appearance]}
    resumed = load_run_snapshot(args.resume, device=device) if args.resume else None
    if resumed is not None and args.config is None:  # the snapshot's own config
        config = with_overrides(resumed.config, overrides, f"{args.resume} (its config with the options given)")
    else:
        config = load_config(args.config or "base", overrides or None)
    scene = load_scene(
        args.scene, "train" if not args.all_frames else "all", args.downscale, args.max_size, progress=not args.quiet
    )
    if args.aabb_scale is not None and args.aabb_scale != scene.aabb_scale:
        log.info("aabb_scale %d as --aabb-scale asks (the scene's file says %g)", args.aabb_scale, scene.aabb_scale)
        scene.aabb_scale = float(args.aabb_scale)
    saved_box = float(resumed.nerf.grid.aabb_scale) if resumed is not None else scene.aabb_scale
    if saved_box != scene.aabb_scale:
        raise NgpError(
            f"{args.resume}: trained with aabb_scale {saved_box:g}, this run has {scene.aabb_scale:g}; resume with "
            f"the same box (--aabb-scale {saved_box:g})"
        )
    log.info(
        "scene %s: %d training frames of %dx%d, aabb_scale %g",
        scene.path,
        scene.n_frames,
        int(scene.widths[0]),
        int(scene.heights[0]),
        scene.aabb_scale,
    )
    trainer = Trainer(scene, config, device=device, backend=args.backend, seed=args.seed)
    if resumed is not None:
        if resumed.nerf.field.encoding.geometry != trainer.model.encoding.geometry:
            raise NgpError(
                f"{args.resume}: its hash grid does not match config {config.name!r}; resume with the "
                f"snapshot's own config (leave --config out)"
            )
        trainer.restore(resumed)
        log.info(
            "resumed from %s at step %d (%s)",
            args.resume,
            trainer.step_count,
            "with optimiser state"
            if any(k.startswith("opt.") for k in (resumed.training_state or {}))
            else "optimiser state not saved: Adam restarts",
        )
    return trainer, trainer.config, str(scene.path)  # the config with the scene's appearance decided


def _train_and_save(
    args: argparse.Namespace, run: Any, trainer: Any, config: Config, scene_path: str, device: Any, ranks: Any = None
) -> int:
    """Train, checkpointing and saving into ``run`` (None on the ranks other than 0, which write nothing)."""
    from tqdm import tqdm

    from ..distributed import agreed

    steps, seconds = args.steps, args.seconds
    if steps is None and seconds is None:
        steps = 5000 if device.type == "cuda" else None
        seconds = None if device.type == "cuda" else 300.0
    log.info(
        "training on %s with backend %s, config %s (%s)",
        device,
        trainer.backend,
        config.name,
        f"{steps} steps" if steps else f"{seconds:g} s",
    )
    bar = tqdm(
        total=steps if steps else int(seconds or 0),
        unit="step" if steps else "s",
        dynamic_ncols=True,
        desc="train",
        disable=args.quiet or run is None,
    )
    last_t = [0.0]
    checkpoint_seconds = [0.0]
    wall = time.perf_counter()

    def on_step(st: Any) -> None:
        if steps:
            bar.update(1)
        else:
            now = int(trainer.train_seconds)
            bar.update(now - int(last_t[0]))
            last_t[0] = now
        if st.step % 10 == 0 or st.step == 1:
            bar.set_postfix(
                step=st.step,
                loss=f"{st.loss:.4f}",
                psnr=f"{st.psnr:.2f}",
                rays=st.n_rays,
                spr=f"{st.n_samples / max(st.n_rays, 1):.1f}",
                marched=st.n_marched,
            )

    def metrics(status: str) -> dict[str, Any]:
        elapsed = time.perf_counter() - wall - checkpoint_seconds[0]
        return run_metrics(trainer, device, config, scene_path, args.seed, elapsed, status)

    def save(status: str) -> Any:
        return run.save(
            trainer.eval_nerf,
            config,
            trainer.scene_metadata(),
            trainer.step_count,
            metrics(status),
            {"backend": trainer.backend},
            trainer.training_state(args.save_optimizer_state),
        )

    def checkpoint() -> None:
        if run is None:
            return
        t = time.perf_counter()
        try:
            path = save("checkpoint")
            log.info("checkpoint at step %d: %s", trainer.step_count, path)
        except OSError as exc:  # a full disk must not end the run: the final save says so if it persists
            log.warning("checkpoint failed (%s: %s); training goes on", exc.strerror or exc, exc.filename or run.path)
        checkpoint_seconds[0] += time.perf_counter() - t

    with StopRequests() as stop:
        try:
            trainer.train(
                steps=steps,
                seconds=seconds,
                callback=on_step,
                should_stop=stop,
                checkpoint=checkpoint,
                checkpoint_every=args.checkpoint_every or None,
            )
        finally:
            bar.close()
        status = f"interrupted ({stop.name})" if stop.received else "complete"
        with agreed(ranks):
            snap = save(status) if run is not None else None
        if run is None:
            return stop.exit_code if stop.received else 0
        final = metrics(status)
        if args.eval and not stop.received:
            try:
                _evaluate_into(args, run, trainer, final, stop)
            except Interrupted:
                pass  # recorded in metrics.json; reported below like an interrupted training
        log.info("wrote %s and %s", snap, run.metrics_path)
        print(json.dumps({k: final[k] for k in SUMMARY_KEYS if k in final}))
        if stop.received:
            print(
                f"ngp: interrupted ({stop.name}) at step {trainer.step_count}: saved {snap} and {run.metrics_path}",
                file=sys.stderr,
            )
            return stop.exit_code
    return 0


def _evaluate_into(
    args: argparse.Namespace, run: Any, trainer: Any, metrics: dict[str, Any], stop: StopRequests
) -> None:
    """Evaluate the held-out views into ``metrics`` and rewrite metrics.json; on failure record the error there
    (the snapshot is already saved) and re-raise it."""
    from ..data.loaders import load_scene
    from ..train.appearance_fit import fit_settings
    from ..train.evaluate import evaluate

    try:
        with stop.raising():
            test = load_scene(args.scene, "test", args.downscale, args.max_size)
            fit = fit_settings(trainer.config)
            res = evaluate(trainer.eval_nerf, test, progress=not args.quiet, fit=fit)
    except Interrupted as exc:
        metrics["eval_error"] = f"interrupted ({exc})"
        run.write_metrics(metrics)
        raise
    except Exception as exc:
        metrics["eval_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        run.write_metrics(metrics)
        if isinstance(exc, NgpError):
            raise NgpError(
                f"{' '.join(str(exc).split())} (evaluation failed; {run.snapshot_path} and "
                f"{run.metrics_path} are saved)"
            ) from None
        raise
    metrics.update(
        {
            "test_psnr": res["psnr"],
            "test_psnr_pooled": res["psnr_pooled"],
            "test_ssim": res["ssim"],
            "test_psnr_nerfw": res["psnr_nerfw"],
            "test_nerfw_protocol": res["nerfw_protocol"],
            "test_images": res["n_images"],
        }
    )
    run.write_metrics(metrics)


def run_metrics(
    trainer: Any, device: Any, config: Config, scene_path: str, seed: int, seconds: float, status: str
) -> dict[str, Any]:
    """metrics.json of a run so far (``status``: complete, checkpoint or interrupted (SIGNAL))."""
    from ..model.precision import mlp_dtype

    last = trainer.history[-1] if trainer.history else None
    return {
        "status": status,
        "steps": trainer.step_count,
        "seconds": round(seconds, 3),
        "train_seconds": round(trainer.train_seconds, 3),
        "samples_per_second": round(trainer.samples_per_second(), 1),
        "steps_per_second": round(trainer.step_count / max(seconds, 1e-9), 3),
        **trainer.batch_summary(),
        "backend": trainer.backend,
        "device": str(device),
        "config": config.name,
        "table_precision": trainer.model.encoding.precision,
        "mlp_precision": str(mlp_dtype(trainer.model.mlp_precision, device)).removeprefix("torch."),
        "optimize_extrinsics": trainer.optimize_extrinsics,
        "appearance": trainer.model.appearance is not None,
        "error_map": trainer.error_map is not None,
        "final_loss": last.loss if last else None,
        "final_train_psnr": last.psnr if last else None,
        "occupancy": trainer.grid.occupancy_fraction(),
        "ranks": trainer.share.world if trainer.share is not None else 1,
        "scene": scene_path,
        "seed": seed,
    }
