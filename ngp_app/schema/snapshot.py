"""Schema of the JSON metadata inside ``snapshot.npz`` (written by ``snapshot.save_snapshot``): the config it was
trained with, the scene's cameras (``Scene.metadata``), the step, the scene box and the occupancy grid's layout."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from .config import GRID_RESOLUTION, Config
from .core import Bool, Int, Matrix, Model, Number, PowerOfTwo, Vector, expect, invalid
from .transforms import AABB_SCALE_RANGE, MAX_IMAGE_SIDE


def _positive_focal(v: list[float]) -> list[float]:
    if v[0] <= 0 or v[1] <= 0:
        raise ValueError("focal length")
    return v


def _size(v: Any) -> list[int]:
    if (
        not isinstance(v, list)
        or len(v) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= MAX_IMAGE_SIDE for x in v)
    ):
        raise ValueError("size")
    return v


def _box(v: list[list[float]]) -> list[list[float]]:
    if not all(lo < hi for lo, hi in zip(v[0], v[1])):
        raise ValueError("empty box")
    return v


CameraIntrinsics = Annotated[
    Vector(4), AfterValidator(_positive_focal), expect("4 finite numbers fx, fy, cx, cy with fx, fy > 0")
]
ImageSize = Annotated[Any, AfterValidator(_size), expect(f"[width, height], whole numbers in 1..{MAX_IMAGE_SIDE}")]
AabbScale = Number(ge=AABB_SCALE_RANGE[0], le=AABB_SCALE_RANGE[1])


class SceneMeta(Model):
    """The training cameras and the scene's coordinate mapping (render/video/mesh read them)."""

    path: str = ""  # absolute since snapshots store both (snapshot.with_scene_paths)
    path_from_snapshot: str = ""  # the scene relative to the snapshot's folder: found after moving both
    split: str = "train"
    format: str = "transforms"
    n_frames: Int(1) = None
    aabb_scale: AabbScale = 1.0
    scale: Number(gt=0, le=1e6) = 0.33
    offset: Vector(3) = [0.5, 0.5, 0.5]
    has_alpha: Bool = False
    width: Int(0, MAX_IMAGE_SIDE) = 0
    height: Int(0, MAX_IMAGE_SIDE) = 0
    c2w: list[Matrix(3, 4)]
    intrinsics: list[CameraIntrinsics]
    distortion: list[Vector((4, 7))] = []
    sizes: list[ImageSize]
    extrinsics_refined: Bool = False
    excluded: list[Int(0)] = []  # frames left out of training
    file_names: list[str] = []  # each camera's image (absolute); older snapshots have none

    @model_validator(mode="after")
    def _one_entry_per_camera(self) -> SceneMeta:
        n = len(self.c2w)
        if n == 0:
            raise invalid("expected at least one training camera", "c2w")
        for name in ("intrinsics", "sizes", "distortion", "file_names"):
            count = len(getattr(self, name))
            if count != n and not (name in ("distortion", "file_names") and count == 0):
                raise invalid(f"expected {n} entries (one per camera in c2w), got {count}", name)
        if any(i >= n for i in self.excluded) or len(set(self.excluded)) >= n:
            raise invalid(f"expected distinct frame indices below {n}, not all of them", "excluded")
        if self.n_frames is not None and self.n_frames != n:
            raise invalid(f"expected {n} (the cameras in c2w), got {self.n_frames}", "n_frames")
        return self


class SnapshotMeta(Model):
    """The whole metadata object (format tag and version are checked before, with their own messages)."""

    format: str
    version: int
    config: Config
    scene: SceneMeta
    step: Int(0)
    aabb: Annotated[Matrix(2, 3), AfterValidator(_box), expect("[[min x, y, z], [max x, y, z]] with min < max")]
    aabb_scale: AabbScale
    grid_resolution: PowerOfTwo(*GRID_RESOLUTION)
    backend: str = "torch"
    save_id: str | None = None  # pairs the snapshot with its run folder's metrics.json (train/run_files.py)
    metrics: dict[str, Any] | None = None  # a copy of the metrics written with this save
