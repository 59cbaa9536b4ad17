"""Shared fixtures: paths to the bundled scene and the shared fox and fern captures, and small derived scenes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scenes" / "demo"
FOX = ROOT.parent / "shared" / "data" / "fox"
FERN = ROOT.parent / "shared" / "data" / "fern"


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def demo_scene() -> Path:
    return DEMO


@pytest.fixture
def fox_scene() -> Path:
    if not (FOX / "transforms.json").is_file():
        pytest.skip("../shared/data/fox is not present")
    return FOX


@pytest.fixture
def fern_scene() -> Path:
    if not (FERN / "poses_bounds.npy").is_file():
        pytest.skip("../shared/data/fern is not present")
    return FERN


@pytest.fixture
def single_transforms_scene(tmp_path: Path) -> Path:
    """A one-file transforms.json scene (instant-ngp layout) built from a few demo training views."""
    src = json.loads((DEMO / "transforms_train.json").read_text())
    out = tmp_path / "single"
    (out / "images").mkdir(parents=True)
    frames = []
    for i, frame in enumerate(src["frames"][:10]):
        name = f"images/{i:03d}.png"
        shutil.copy(DEMO / (frame["file_path"] + ".png"), out / name)
        frames.append({"file_path": name, "transform_matrix": frame["transform_matrix"]})
    data = {"camera_angle_x": src["camera_angle_x"], "w": 200, "h": 200, "aabb_scale": 1, "frames": frames}
    (out / "transforms.json").write_text(json.dumps(data))
    return out


def thin_grid(state: Any, radius: float = 0.2) -> None:
    """Keep only the occupancy cells of a ball at the centre of the scene box. An untrained model's grid has every
    cell occupied, so each of its rays marches the whole box (hundreds of passes on a CPU); tests about jobs,
    refinement and overlays need a picture, not that cost."""
    grid = state.trainer.grid
    r = grid.resolution
    idx = torch.arange(r**3)
    ijk = torch.stack([idx % r, (idx // r) % r, idx // (r * r)], -1).float()
    outside = ((ijk + 0.5) / r - 0.5).norm(dim=-1) >= radius
    grid.mark_untrained(outside.unsqueeze(0).expand_as(grid.occupied))


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, interval: float = 0.02) -> bool:
    """Poll ``cond`` until it is true (True) or ``timeout`` seconds pass (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(interval)
    return False


def app_state(downscale: int) -> Iterator[Any]:
    """The body of a ``Session`` fixture: the app's session on the CPU with the small config, closed afterwards."""
    from ngp_app.gui.session import Session

    s = Session(config="small", device="cpu", backend="torch", downscale=downscale)
    yield s
    s.close()


@pytest.fixture()
def state() -> Iterator[Any]:
    """The app's state (no window) with training images at 1/8 size."""
    yield from app_state(8)


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-step snapshot of the bundled scene at 1/8 size (small config, 2^14 table): for render/video tests."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import save_snapshot
    from ngp_app.train.trainer import Trainer

    scene = load_scene(DEMO, "train", downscale=8)
    config = load_config("small", {"training": {"target_batch_size_cpu": 4096}, "encoding": {"log2_hashmap_size": 14}})
    trainer = Trainer(scene, config, seed=0)
    trainer.train(steps=60)
    out = tmp_path_factory.mktemp("video-snap")
    return save_snapshot(out, trainer.nerf, trainer.config, scene.metadata(), trainer.step_count)


@pytest.fixture(scope="session")
def demo_trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-step snapshot of the bundled scene at 1/4 size (small config): for exports checked against the
    scene's analytic surfaces."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import save_snapshot
    from ngp_app.train.trainer import Trainer

    scene = load_scene(DEMO, "train", downscale=4)
    trainer = Trainer(scene, load_config("small"), seed=0)
    trainer.train(steps=300)
    return save_snapshot(tmp_path_factory.mktemp("demo-300"), trainer.nerf, trainer.config, scene.metadata(), 300)


@pytest.fixture(scope="session")
def demo_surface() -> tuple[Any, Any]:
    """Points (n, 3) on the bundled scene's analytic surfaces and their shaded colours (n, 3), ray-traced from its
    training cameras (8,000 rays each), in its transforms.json coordinates."""
    import numpy as np

    from ngp_app.data import synthetic

    meta = json.loads((DEMO / "transforms_train.json").read_text())
    rng = np.random.default_rng(0)
    points, colours = [], []
    for frame in meta["frames"]:
        px, py = rng.random(8000) * 800, rng.random(8000) * 800
        o, d = synthetic.pixel_rays(np.asarray(frame["transform_matrix"]), px, py, 800, 800, meta["camera_angle_x"])
        rgb, hit, t = synthetic.trace_rays(o, d)
        points.append(o[hit] + t[hit, None] * d[hit])
        colours.append(rgb[hit])
    return np.concatenate(points), np.concatenate(colours)
