"""Every bad scene, config, snapshot, camera and keyframe file of issue 11's "Found" list, each run as ``ngp`` in a
process of its own (forked from one driver that imported ngp_app once, ``bad_inputs.run_ngp_many``): exit code 2,
exactly one stderr line ``ngp: error: ...`` (log lines aside), no traceback, nothing written. The processes run
concurrently (each fails before any training)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.bad_inputs import (
    DELETE,
    IMAGE_SIDE,
    Case,
    Inputs,
    break_deflate,
    error_line,
    llff_rows,
    make_inputs,
    rewrite_snapshot,
    run_ngp_many,
    set_path,
    snapshot_meta,
    write_json,
    write_llff,
    written,
)

FAST = ["--quiet", "--device", "cpu", "--backend", "torch"]
Build = Callable[[Path, Inputs], "list[str]"]


# ------------------------------------------------------------------------------------------------ builders
def train_config(path: tuple, value: object) -> Build:
    """``ngp train`` with the tiny config changed at ``path``."""

    def build(d: Path, inp: Inputs) -> list[str]:
        cfg = write_json(d / "bad.json", set_path(inp.config, path, value))
        return ["train", str(inp.scene), "--out", str(d / "out"), "--steps", "1", "--config", str(cfg), *FAST]

    return build


def train_scene(
    top: dict | None = None, frames: Callable[[list], list] | None = None, text: str | None = None
) -> Build:
    """``ngp train`` on the scene with top-level keys replaced, frames mapped, or the whole file replaced."""

    def build(d: Path, inp: Inputs) -> list[str]:
        doc = dict(inp.transforms, **(top or {}))
        if frames is not None:
            doc["frames"] = frames(json.loads(json.dumps(doc["frames"])))
        write_json(d / "scene" / "transforms.json", text if text is not None else doc)
        return [
            "train",
            str(d / "scene"),
            "--out",
            str(d / "out"),
            "--steps",
            "1",
            "--config",
            str(inp.config_path),
            *FAST,
        ]

    return build


def scaled_poses(factor: float) -> Callable[[list], list]:
    return lambda frames: [
        dict(f, transform_matrix=(np.asarray(f["transform_matrix"]) * factor).tolist()) for f in frames
    ]


def image_file(content: bytes | None) -> Build:
    """A scene whose second image (the first is held out) is ``content`` (None: a symbolic link to itself)."""

    def build(d: Path, inp: Inputs) -> list[str]:
        image = d / "scene" / "images" / "bad.png"
        image.parent.mkdir(parents=True)
        if content is None:
            os.symlink("bad.png", image)
        else:
            image.write_bytes(content)
        frames = list(inp.transforms["frames"])
        frames[1] = dict(frames[1], file_path="images/bad.png")
        write_json(d / "scene" / "transforms.json", dict(inp.transforms, frames=frames))
        return [
            "train",
            str(d / "scene"),
            "--out",
            str(d / "out"),
            "--steps",
            "1",
            "--config",
            str(inp.config_path),
            *FAST,
        ]

    return build


def train_args(d: Path, inp: Inputs, scene: Path) -> list[str]:
    """``ngp train`` of ``scene`` for one step with the tiny config, into ``d/out``."""
    return ["train", str(scene), "--out", str(d / "out"), "--steps", "1", "--config", str(inp.config_path), *FAST]


def llff_scene(mutate: Callable[[np.ndarray], np.ndarray]) -> Build:
    """``ngp train`` on the valid scene written as an LLFF folder whose poses_bounds.npy rows are ``mutate``d."""

    def build(d: Path, inp: Inputs) -> list[str]:
        return train_args(d, inp, write_llff(d / "scene", inp, mutate(llff_rows(inp.transforms, IMAGE_SIDE))))

    return build


def masked_scene(mask: np.ndarray) -> Build:
    """``ngp train`` on the valid scene whose second frame has ``mask`` (uint8 array) as its mask_path."""

    def build(d: Path, inp: Inputs) -> list[str]:
        import imageio.v3 as iio

        (d / "scene" / "masks").mkdir(parents=True)
        iio.imwrite(d / "scene" / "masks" / "bad.png", mask)
        frames = list(inp.transforms["frames"])
        frames[1] = dict(frames[1], mask_path="masks/bad.png")
        write_json(d / "scene" / "transforms.json", dict(inp.transforms, frames=frames))
        return train_args(d, inp, d / "scene")

    return build


def with_value(row: int, column: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def mutate(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[row, column] = value
        return a

    return mutate


def snapshot_command(
    meta_path: tuple | None = None,
    value: object = None,
    command: str = "render",
    broken: str | None = None,
    **entries: dict,
) -> Build:
    """``ngp <command>`` on the snapshot with its metadata changed at ``meta_path`` and/or entries changed
    (``lies``/``zeros`` of ``rewrite_snapshot``), and entry ``broken``'s deflate stream made invalid."""

    def build(d: Path, inp: Inputs) -> list[str]:
        meta = snapshot_meta(inp.snapshot)
        if meta_path is not None:
            meta = set_path(meta, meta_path, value)
        snap = rewrite_snapshot(inp.snapshot, d / "bad.npz", meta, **entries)
        if broken is not None:
            break_deflate(snap, broken)
        if command == "render":
            return ["render", str(snap), "--out", str(d / "out.png"), "--width", "8", "--height", "8", *FAST]
        if command == "eval":
            return ["eval", str(snap), str(inp.scene), *FAST]
        if command == "mesh":
            return ["mesh", str(snap), "--out", str(d / "out.ply"), "--resolution", "8", *FAST]
        if command == "video":
            return video_args(snap, d / "out.gif")
        return ["train", str(inp.scene), "--resume", str(snap), "--out", str(d / "out"), "--steps", "1", *FAST]

    return build


def camera_file(doc: dict) -> Build:
    def build(d: Path, inp: Inputs) -> list[str]:
        cam = write_json(d / "cam.json", doc)
        return [
            "render",
            str(inp.snapshot),
            "--camera",
            str(cam),
            "--out",
            str(d / "out.png"),
            "--width",
            "8",
            "--height",
            "8",
            *FAST,
        ]

    return build


def video_into(files: list[str], marker: str | None = None) -> Build:
    """``ngp video --out FOLDER`` where FOLDER holds ``files`` (PNG bytes) and, when given, a ``.ngp-video``."""

    def build(d: Path, inp: Inputs) -> list[str]:
        folder = d / "frames"
        folder.mkdir()
        for name in files:
            (folder / name).write_bytes((inp.scene / "images" / "000.png").read_bytes())
        if marker is not None:
            (folder / ".ngp-video").write_text(marker)
        return video_args(inp.snapshot, folder)

    return build


def video_over(name: str, marker: str | None = None, ours: bool = False) -> Build:
    """``ngp video --out FILE`` where FILE exists: the user's (a scene image's bytes) or, with ``ours``, an earlier
    export's with its marker, then changed; ``marker``: the text of ``.FILE.ngp-video`` when given."""

    def build(d: Path, inp: Inputs) -> list[str]:
        target = d / name
        target.write_bytes((inp.scene / "images" / "000.png").read_bytes())
        if ours:
            digest = hashlib.sha256(target.read_bytes() + b"!").hexdigest()
            marker_text = json.dumps({"written_by": "ngp video", "sha256": [digest]})
        else:
            marker_text = marker
        if marker_text is not None:
            (d / f".{name}.ngp-video").write_text(marker_text)
        return video_args(inp.snapshot, target)

    return build


def video_args(snapshot: Path, out: Path, *extra: str) -> list[str]:
    """``ngp video SNAPSHOT --out OUT`` for 2 frames of 8x8, then ``extra``."""
    return ["video", str(snapshot), "--out", str(out), "--frames", "2", "--width", "8", "--height", "8", *extra, *FAST]


def keyframe_file(doc: dict) -> Build:
    def build(d: Path, inp: Inputs) -> list[str]:
        keys = write_json(d / "keys.json", doc)
        return video_args(inp.snapshot, d / "out.gif", "--path", str(keys))

    return build


def video_with(extra: list[str], path_doc: dict | None = None) -> Build:
    """``ngp video`` with ``extra`` options, on a camera-path file holding ``path_doc`` when given."""

    def build(d: Path, inp: Inputs) -> list[str]:
        path = ["--path", str(write_json(d / "path.json", path_doc))] if path_doc is not None else []
        return [
            "video",
            str(inp.snapshot),
            "--out",
            str(d / "out.gif"),
            "--width",
            "8",
            "--height",
            "8",
            *path,
            *extra,
            *FAST,
        ]

    return build


def render_camera(spec: str) -> Build:
    def build(d: Path, inp: Inputs) -> list[str]:
        return [
            "render",
            str(inp.snapshot),
            "--camera",
            spec,
            "--out",
            str(d / "out.png"),
            "--width",
            "8",
            "--height",
            "8",
            *FAST,
        ]

    return build


def import_photos(extra: list[str]) -> Build:
    """``ngp import`` of the valid scene's photo folder with ``extra`` options."""

    def build(d: Path, inp: Inputs) -> list[str]:
        return ["import", str(inp.scene / "images"), "--out", str(d / "out"), "--quiet", *extra]

    return build


def our_path(**top: object) -> dict:
    """Our camera-path file: two keys a second apart, with top-level keys replaced."""
    keys = [{"time": t, "transform_matrix": np.eye(4).tolist()} for t in (0.0, 1.0)]
    return {"format": "ngp-app camera path", "version": 1, "keyframes": keys, **top}


def ns_path(matrix: object) -> dict:
    return {"camera_path": [{"camera_to_world": matrix, "fov": 50}], "fps": 30, "seconds": 1}


TABLE = "param/encoding.table"
HUGE_ROWS = 10**12  # 16 TB of float32 rows
BIG_ROWS = 100_000_000  # 1.6 GB of zeros, ~1.5 MB compressed: a table the config does not ask for


# ------------------------------------------------------------------------------------------------ cases
ANGLE = "camera_angle_x: expected an angle in radians"
CASES = [
    # scenes
    Case("scene-camera-angle-0", train_scene({"camera_angle_x": 0}), ANGLE),
    Case(
        "scene-deep-nesting", train_scene(text='{"frames": ' + "[" * 100000 + "]" * 100000 + "}"), "nested too deeply"
    ),
    Case("scene-nesting-40", train_scene(text='{"x": ' + "[" * 40 + "]" * 40 + ', "frames": []}'), "deeper than 32"),
    Case("scene-symlink-loop", image_file(None), "symbolic link loop"),
    Case("scene-aabb-scale-1e300", train_scene({"aabb_scale": 1e300}), "aabb_scale: expected a finite number in"),
    Case("scene-aabb-scale-1e-9", train_scene({"aabb_scale": 1e-9}), "aabb_scale: expected a finite number in"),
    Case("scene-all-zero-poses", train_scene(frames=scaled_poses(0.0)), "frames[0].transform_matrix: expected"),
    Case("scene-poses-1e30", train_scene(frames=scaled_poses(1e30)), "frames[0].transform_matrix: expected"),
    Case("scene-fov-180", train_scene({"camera_angle_x": math.pi}), ANGLE),
    Case("scene-focal-1e-9", train_scene({"fl_x": 1e-9}), "a field of view of 180.00 degrees"),
    Case("scene-rays-miss-box", train_scene({"offset": [1000, 1000, 1000]}), "no training ray hits the scene box"),
    Case("scene-text-png", image_file(b"hello, I am text\n"), "not a PNG or JPEG file"),
    Case("scene-empty-png", image_file(b""), "the file is empty"),
    Case("scene-frames-missing", train_scene(text='{"camera_angle_x": 0.7}'), "frames: required key is missing"),
    # LLFF poses_bounds.npy and masks (issue 18)
    Case("llff-wrong-shape", llff_scene(lambda a: a[:, :15]), "expected an array of shape (N, 17)"),
    Case("llff-nan-pose", llff_scene(with_value(1, 3, math.nan)), "rows[1].pose: expected a 3x4 [rotation"),
    Case("llff-near-0", llff_scene(with_value(2, 15, 0.0)), "rows[2].near: expected a finite number > 0, got 0"),
    Case("llff-count-mismatch", llff_scene(lambda a: a[:3]), "poses_bounds.npy: 3 cameras but"),
    Case("mask-size-mismatch", masked_scene(np.full((10, 12), 255, np.uint8)), "mask is 12x10 but its image"),
    Case("mask-covers-image", masked_scene(np.zeros((20, 20), np.uint8)), "leaves no pixel of the 20x20 image"),
    # configs: the 16 tracebacks, then the silently accepted values
    Case(
        "config-n-levels-str",
        train_config(("encoding", "n_levels"), "8"),
        'encoding.n_levels: expected an integer in 1..32, got "8"',
    ),
    Case("config-n-levels-0", train_config(("encoding", "n_levels"), 0), "encoding.n_levels: expected"),
    Case("config-n-levels-neg", train_config(("encoding", "n_levels"), -3), "encoding.n_levels: expected"),
    Case("config-log2-neg", train_config(("encoding", "log2_hashmap_size"), -1), "log2_hashmap_size: expected"),
    Case("config-log2-40", train_config(("encoding", "log2_hashmap_size"), 40), "log2_hashmap_size: expected"),
    Case("config-base-res-0", train_config(("encoding", "base_resolution"), 0), "base_resolution: expected"),
    Case("config-encoding-str", train_config(("encoding",), "HashGrid"), "encoding: expected an object"),
    Case("config-neurons-neg", train_config(("network", "n_neurons"), -64), "network.n_neurons: expected"),
    Case("config-neurons-frac", train_config(("network", "n_neurons"), 64.5), "network.n_neurons: expected"),
    Case("config-batch-str", train_config(("training", "target_batch_size"), "lots"), "target_batch_size: expected"),
    Case("config-lr-str", train_config(("optimizer", "learning_rate"), "fast"), "learning_rate: expected"),
    Case("config-update-interval-0", train_config(("density_grid", "update_interval"), 0), "update_interval: expected"),
    Case("config-grid-res-0", train_config(("density_grid", "resolution"), 0), "resolution: expected a power of two"),
    Case("config-grid-res-neg", train_config(("density_grid", "resolution"), -128), "resolution: expected a power"),
    Case("config-sh-degree-9", train_config(("dir_encoding", "degree"), 9), "dir_encoding.degree: expected"),
    Case("config-training-list", train_config(("training",), []), "training: expected an object, got []"),
    Case("config-lr-nan", train_config(("optimizer", "learning_rate"), float("nan")), "got NaN"),
    Case("config-lr-negative", train_config(("optimizer", "learning_rate"), -0.01), "learning_rate: expected"),
    Case("config-beta1-2", train_config(("optimizer", "beta1"), 2), "optimizer.beta1: expected"),
    Case("config-zero-features", train_config(("encoding", "n_features_per_level"), 0), "n_features_per_level"),
    Case("config-batch-0", train_config(("training", "target_batch_size_cpu"), 0), "target_batch_size_cpu: expected"),
    Case("config-batch-neg", train_config(("training", "target_batch_size"), -4096), "target_batch_size: expected"),
    Case("config-unknown-loss", train_config(("loss", "otype"), "L7"), 'loss.otype: expected one of "L2", "Huber"'),
    Case("config-missing-section", train_config(("optimizer",), DELETE), "optimizer: required key is missing"),
    # snapshot metadata and entries
    Case("snapshot-step-str", snapshot_command(("step",), "abc"), 'step: expected an integer >= 0, got "abc"'),
    Case("snapshot-step-null", snapshot_command(("step",), None, "eval"), "step: expected an integer >= 0, got null"),
    Case("snapshot-training-list", snapshot_command(("config", "training"), [], "mesh"), "config.training: expected"),
    Case(
        "snapshot-base-res-0",
        snapshot_command(("config", "encoding", "base_resolution"), 0, "video"),
        "config.encoding.base_resolution: expected",
    ),
    Case("snapshot-scene-list", snapshot_command(("scene",), [], "train"), "scene: expected an object, got []"),
    Case(
        "snapshot-no-intrinsics",
        snapshot_command(("scene", "intrinsics"), DELETE),
        "scene.intrinsics: required key is missing",
    ),
    Case(
        "snapshot-huge-header",
        snapshot_command(lies={TABLE: (HUGE_ROWS, 4)}, command="eval"),
        f"corrupt snapshot: entry {TABLE}: its header declares shape ({HUGE_ROWS}, 4)",
    ),
    Case(
        "snapshot-big-zero-entry",
        snapshot_command(zeros={TABLE: ((BIG_ROWS, 4), "<f4")}),
        f"corrupt snapshot: entry {TABLE} has shape ({BIG_ROWS}, 4), the metadata needs",
    ),
    Case(
        "snapshot-corrupt-deflate",
        snapshot_command(command="eval", broken=TABLE),
        f"corrupt snapshot: entry {TABLE}: unreadable header (error: Error -3 while decompressing data",
    ),
    # video frame folders ngp video did not write (issue 22 item 1)
    Case("video-into-images", video_into(["r_0.png", "r_1.png"]), "was not written by ngp video"),
    Case("video-into-frame-names", video_into(["00000.png", "keep.png"]), "was not written by ngp video"),
    Case("video-marker-not-json", video_into(["00000.png"], "{ nope"), "was not written by ngp video"),
    Case(
        "video-into-added-file",
        video_into(["00000.png", "keep.png"], '{"frames": ["00000.png"]}'),
        "holds keep.png, which ngp video did not write",
    ),
    # video files ngp video did not write, or that changed since (issue 22: a marker, not a guess from the name)
    Case("video-over-users-mp4", video_over("clip.mp4"), "clip.mp4: exists and was not written by ngp video"),
    Case("video-over-users-gif", video_over("clip.gif"), "clip.gif: exists and was not written by ngp video"),
    Case("video-file-marker-not-json", video_over("clip.mp4", "{ nope"), "was not written by ngp video"),
    Case("video-file-changed-since", video_over("clip.gif", ours=True), "clip.gif: has changed since ngp video"),
    # camera and keyframe files
    Case("camera-angle-0", camera_file({"transform_matrix": np.eye(4).tolist(), "camera_angle_x": 0}), ANGLE),
    Case("camera-angle-wide", camera_file({"transform_matrix": np.eye(4).tolist(), "camera_angle_x": "wide"}), ANGLE),
    Case("camera-angle-null", camera_file({"transform_matrix": np.eye(4).tolist(), "camera_angle_x": None}), ANGLE),
    Case(
        "keyframes-angle-y-wide",
        keyframe_file({"frames": [{"transform_matrix": np.eye(4).tolist(), "camera_angle_y": "wide"}]}),
        "frames[0].camera_angle_y: expected an angle in radians",
    ),
    Case(
        "keyframes-angle-x-0",
        keyframe_file({"camera_angle_x": 0, "frames": [{"transform_matrix": np.eye(4).tolist()}]}),
        ANGLE,
    ),
    # bounds before any work, options that do not apply, camera-path files as strict as transforms.json (issue 22)
    Case("video-frames-1e9", video_with(["--frames", "1000000000"]), "--frames: expected an integer in 1..100000"),
    Case("video-seconds-1e6", video_with(["--seconds", "1000000"], our_path()), "the video would have 30000001"),
    Case(
        "video-loop-duration-1e6",
        video_with([], our_path(loop=True, duration=1e6)),
        "the video would have 30000000 frames",
    ),
    Case("video-path-fps-tiny", video_with(["--frames", "2"], our_path(fps=0.01)), "fps: expected a finite number"),
    Case("video-seconds-on-orbit", video_with(["--seconds", "5"]), "--seconds applies to a camera-path file"),
    Case(
        "video-dataparser-on-orbit",
        video_with(["--dataparser-transforms", "x.json"]),
        "--dataparser-transforms applies to a camera-path file",
    ),
    Case(
        "video-dataparser-on-our-path",
        video_with(["--frames", "2", "--dataparser-transforms", "x.json"], our_path()),
        "--dataparser-transforms applies to nerfstudio camera paths",
    ),
    Case("video-radius-on-path", video_with(["--radius", "2"], our_path()), "--radius applies to the orbit path"),
    Case("video-loop-on-orbit", video_with(["--loop", "--frames", "2"]), "--loop does not apply to an orbit"),
    Case("ns-path-zero-matrix", video_with(["--frames", "2"], ns_path([0] * 16)), "camera_to_world: expected a 4x4"),
    Case(
        "ns-path-scaled-1000",
        video_with(["--frames", "2"], ns_path((np.eye(4) * 1000).ravel().tolist())),
        "whose 3x3 part is a rotation",
    ),
    Case(
        "ngp-path-T-1e30",
        video_with(["--frames", "2"], {"path": [{"R": [0, 0, 0, 1], "T": [1e30, 0, 0]}]}),
        "path[0].T: expected a position",
    ),
    Case("render-orbit-nan", render_camera("orbit:nan,0,1"), "expected a finite azimuth"),
    Case("render-orbit-inf", render_camera("orbit:0,0,inf"), "expected a finite azimuth"),
    Case("render-orbit-r0", render_camera("orbit:0,0,0"), "a radius > 0"),
    Case("import-seed-negative", import_photos(["--seed", "-1"]), "--seed: expected an integer in 0..2147483647"),
    Case("import-seed-20-digits", import_photos(["--seed", "1" * 20]), "--seed: expected an integer in 0..2147483647"),
    Case("import-features-huge", import_photos(["--max-features", "99999999999"]), "--max-features: expected"),
    Case("import-frames-on-photos", import_photos(["--frames", "10"]), "--frames applies to a video"),
    Case("import-images-on-photos", import_photos(["--images", "nowhere"]), "--images applies to a COLMAP project"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("valid"))


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, inputs: Inputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run the selected cases concurrently (one subprocess each)."""
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")
    }
    cases = [c for c in CASES if c.id in selected]
    dirs = {c.id: tmp_path_factory.mktemp(c.id) for c in cases}
    argvs = {c.id: c.build(dirs[c.id], inputs) for c in cases}
    ids = list(argvs)
    done = run_ngp_many([(argvs[cid], dirs[cid]) for cid in ids])
    return {cid: (res, dirs[cid]) for cid, res in zip(ids, done)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, results: dict) -> None:
    res, case_dir = results[case.id]
    line = error_line(res.stderr)
    assert res.returncode == 2, res.stderr
    assert case.needle in line, line
    assert written(case_dir) == []
