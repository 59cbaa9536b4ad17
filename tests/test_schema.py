"""The file schemas and load-time checks in detail: the one-line error format, unknown keys, what valid files look
like, Windows paths, memory bounds of image and snapshot loading, banded resizing against the one-shot reference."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ngp_app.config import load_config
from ngp_app.data.loaders import load_scene
from ngp_app.errors import ConfigError, SceneError, SnapshotError
from ngp_app.schema.core import MAX_JSON_DEPTH, read_json
from tests.bad_inputs import ROOT, Inputs, make_inputs, rewrite_snapshot, write_json
from tests.conftest import DEMO, FOX


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("valid"))


# ------------------------------------------------------------------------------------------------ messages
def test_error_names_file_key_and_expected_value(tmp_path: Path) -> None:
    base = json.loads((ROOT / "configs" / "base.json").read_text())
    base["encoding"]["n_levels"] = "8"
    path = write_json(tmp_path / "x.json", base)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f'{path}: encoding.n_levels: expected an integer in 1..32, got "8"'
    base["optimizer"]["learning_rate"] = float("nan")
    del base["training"]
    write_json(path, base)
    with pytest.raises(
        ConfigError, match=r"optimizer.learning_rate: expected a finite number > 0, got NaN \(and 2 more\)$"
    ):
        load_config(path)


def test_unknown_keys_warn_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = json.loads((ROOT / "configs" / "base.json").read_text())
    base["colour"] = "blue"
    base["encoding"]["n_level"] = 8  # a typo: the real key keeps its value
    with caplog.at_level(logging.WARNING):
        load_config(write_json(tmp_path / "typo.json", base))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{tmp_path / 'typo.json'}: ignoring unknown keys: colour, encoding.n_level"]


@pytest.mark.parametrize("name", ["base", "small", "big"])
def test_bundled_configs_are_valid_and_complete(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_config(name)
    assert config.name == name and not caplog.records


def test_bundled_and_shared_scenes_are_valid_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    from ngp_app.data.loaders import read_transforms

    files = sorted(DEMO.glob("transforms_*.json")) + ([FOX / "transforms.json"] if FOX.is_dir() else [])
    with caplog.at_level(logging.WARNING):
        for path in files:
            read_transforms(path)
    assert not caplog.records


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[" * 50000 + "]" * 50000, "nested too deeply"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), f"deeper than {MAX_JSON_DEPTH}"),
        ("\xff", "not UTF-8"),
        ('{"a": 1,}', "malformed JSON"),
    ],
)
def test_json_reading_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(SceneError, match=needle):
        read_json(path, SceneError)


def test_json_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": [1]}')
    assert read_json(path) == {"a": [1]}


# ------------------------------------------------------------------------------------------------ scenes
def test_windows_separators_in_file_path(inputs: Inputs, tmp_path: Path) -> None:
    root = tmp_path / "win"
    (root / "images").mkdir(parents=True)
    frames = []
    for i, frame in enumerate(inputs.transforms["frames"]):
        (root / "images" / f"{i:03d}.png").write_bytes(Path(frame["file_path"]).read_bytes())
        frames.append(dict(frame, file_path=f"images\\{i:03d}.png"))
    write_json(root / "transforms.json", dict(inputs.transforms, frames=frames))
    scene = load_scene(root, "all")
    assert scene.n_frames == len(frames) and not scene.info["n_missing"]


def test_scene_box_check(inputs: Inputs, tmp_path: Path) -> None:
    from ngp_app.train.scene_checks import check_rays_hit_box, fraction_of_rays_hitting_box

    assert fraction_of_rays_hitting_box(load_scene(inputs.scene, "all")) > 0.9
    far = write_json(tmp_path / "far" / "transforms.json", dict(inputs.transforms, offset=[50.0, 0.5, 0.5]))
    scene = load_scene(far.parent, "all")
    assert fraction_of_rays_hitting_box(scene) == 0.0
    with pytest.raises(SceneError, match="no training ray hits the scene box: check the poses, scale and offset"):
        check_rays_hit_box(scene)


def test_banded_resize_matches_the_one_shot_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    from ngp_app.data import images

    def reference(img: np.ndarray, width: int, height: int) -> np.ndarray:
        t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        h0, w0 = img.shape[:2]
        if h0 % height == 0 and w0 % width == 0:
            out = F.avg_pool2d(t, kernel_size=(h0 // height, w0 // width))
        else:
            out = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    rng = np.random.default_rng(0)
    monkeypatch.setattr(images, "BAND_BYTES", 3000)  # many bands, some of them ragged
    for h, w, nh, nw in [(60, 90, 30, 45), (60, 90, 17, 31), (41, 29, 13, 9), (32, 32, 32, 10), (7, 5, 3, 2)]:
        img = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        assert np.array_equal(images.resize_image(img, nw, nh), reference(img, nw, nh)), (h, w, nh, nw)


MEMORY_PROBE = """
import sys
import numpy as np, PIL.Image, imageio.v3, torch
from ngp_app.data.loaders import load_scene
def status_kb(key):  # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
load_scene(sys.argv[3], "all", max_size=8)  # warm up: lazy imports, thread pools
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak to now
except OSError:
    pass
base = status_kb("VmRSS")
scene = load_scene(sys.argv[1], "all", max_size=int(sys.argv[2]))
print((status_kb("VmHWM") - base) * 1024, scene.n_frames)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures memory through /proc")
def test_max_size_decodes_one_image_at_a_time(inputs: Inputs, tmp_path: Path) -> None:
    """Three 3000x4000 images shrunk to 400 pixels: the peak stays below three full-size images (it was ~10)."""
    import imageio.v3 as iio

    h, w = 3000, 4000
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[..., 2] = 77
    root = tmp_path / "big"
    root.mkdir()
    frames = []
    for i, frame in enumerate(inputs.transforms["frames"][:3]):
        iio.imwrite(root / f"{i}.png", img)
        frames.append(dict(frame, file_path=f"{i}.png"))
    write_json(root / "transforms.json", {"camera_angle_x": 0.8, "frames": frames})
    res = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(root), "400", str(inputs.scene)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 0, res.stderr
    peak, n = (int(v) for v in res.stdout.split())
    assert n == 3 and peak < 3 * img.nbytes, f"peak {peak / 2**20:.0f} MB for images of {img.nbytes / 2**20:.0f} MB"


# ------------------------------------------------------------------------------------------------ snapshots
def test_snapshot_entry_larger_than_its_metadata_allows_is_not_read(inputs: Inputs, tmp_path: Path) -> None:
    """A 7 MB file holding a 1.6 GB table of zeros the config does not ask for: rejected from the header, with
    almost nothing allocated (numpy allocations are traced)."""
    from ngp_app.snapshot import load_snapshot

    path = rewrite_snapshot(
        inputs.snapshot, tmp_path / "bomb.npz", zeros={"param/encoding.table": ((100_000_000, 4), "<f4")}
    )
    assert path.stat().st_size < 16 << 20
    tracemalloc.start()
    try:
        with pytest.raises(SnapshotError, match=r"entry param/encoding.table has shape \(100000000, 4\)"):
            load_snapshot(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_npz_reader_checks_headers_against_the_zip(tmp_path: Path) -> None:
    from ngp_app.npz_reader import CorruptNpz, NpzReader
    from tests.bad_inputs import write_npz

    path = write_npz(tmp_path / "x.npz", {"a": np.arange(6, dtype=np.float32), "b": np.ones(3)}, lies={"b": (10**12,)})
    with NpzReader(path) as npz:
        assert npz.read("a", shape=(6,), dtype=np.float32).tolist() == [0, 1, 2, 3, 4, 5]
        out = np.empty(6, np.float32)
        assert npz.read("a", out=out) is out
        with pytest.raises(CorruptNpz, match="expected"):
            npz.read("a", shape=(7,))
        with pytest.raises(CorruptNpz, match=r"declares shape \(1000000000000,\)"):
            npz.header("b")
        with pytest.raises(CorruptNpz, match="missing"):
            npz.read("c")
