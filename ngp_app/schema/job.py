"""The schema of a render job (``ngp video --job JOB.json``, written by ``ngp video ... --write-job JOB.json``): what
``ngp video`` renders, so a path authored on one machine renders on another. Every key but ``format`` and
``version`` is optional and means what the ``ngp video`` option of the same name means; relative file names are
relative to the job file's folder. ``camera_path`` holds a camera path of our format inline (the app's 'Save path')
instead of naming a file with ``path``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, model_validator

from ..cli_args import MAX_FPS, MAX_IMAGE_SIDE, MAX_SPP, MAX_VIDEO_FRAMES, MIN_FPS
from .camera_path import PathFile
from .core import Bool, Int, IntIn, Model, Number, OneOf, Text, Vector, expect, invalid

JOB_FORMAT = "ngp-app render job"
JOB_VERSION = 1
VIDEO_MODES = ("rgb", "depth", "normals")


def _unit(v: list[float]) -> list[float]:
    if not all(0.0 <= x <= 1.0 for x in v):
        raise ValueError("out of range")
    return v


Colour = Annotated[Vector(3), AfterValidator(_unit), expect("3 numbers in 0..1 (R, G, B)")]


class RenderJob(Model):
    """A render job: the snapshot, the camera path (``path``: orbit, train or a file; or ``camera_path`` inline), the
    frames, size and look, and the output."""

    format: OneOf(JOB_FORMAT)
    version: IntIn(JOB_VERSION)
    snapshot: Text = None
    out: Text = None
    path: Text = None
    camera_path: PathFile = None
    dataparser_transforms: Text = None
    frames: Int(1, MAX_VIDEO_FRAMES) = None
    fps: Number(ge=MIN_FPS, le=MAX_FPS) = None
    seconds: Number(gt=0.0, le=1e6) = None
    width: Int(2, MAX_IMAGE_SIDE) = None
    height: Int(2, MAX_IMAGE_SIDE) = None
    fov: Number(gt=0.0, le=179.0) = None
    radius: Number(gt=0.0) = None
    elevation: Number(ge=-89.0, le=89.0) = None
    loop: Bool = None
    mode: OneOf(*VIDEO_MODES) = None
    background: Colour = None
    look: Int(0) = None
    spp: Int(1, MAX_SPP) = None
    camera_model: OneOf("pinhole", "equirectangular") = None

    @model_validator(mode="after")
    def _one_path(self) -> RenderJob:
        if self.path is not None and self.camera_path is not None:
            raise invalid("give the camera path once: 'path' (orbit, train or a file) or 'camera_path' (inline)")
        return self
