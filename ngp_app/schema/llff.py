"""Schema of LLFF's ``poses_bounds.npy`` (Mildenhall et al., "Local Light Field Fusion"): one row of 17 numbers per
image, a 3x5 matrix (rotation with columns [down, right, back], position, and the column [height, width, focal] of
the full-size images) followed by the near and far depth bounds.

The array's shape is checked by the reader (``data/llff.py``); this model checks each row's values, with the
file's one-line error format (``poses_bounds.npy: rows[3].near: expected a finite number > 0, got -1``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from .core import Model, Number, Whole, expect, finite_matrix, invalid
from .transforms import MAX_IMAGE_SIDE, rigid

COLUMNS = 17  # 3x5 pose matrix (row-major) + near + far

LlffPose = Annotated[
    Any,
    AfterValidator(finite_matrix(((3, 4),))),
    AfterValidator(rigid),
    expect("a 3x4 [rotation | position] of finite numbers whose 3x3 part is a rotation"),
]


class LlffRow(Model):
    """One image: its pose, the full-size image's height, width and focal length, and its depth bounds."""

    pose: LlffPose
    height: Whole(1, MAX_IMAGE_SIDE)
    width: Whole(1, MAX_IMAGE_SIDE)
    focal: Number(gt=0)
    near: Number(gt=0)
    far: Number(gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> LlffRow:
        if not self.far > self.near:
            raise invalid(f"the far bound ({self.far:g}) must exceed the near bound ({self.near:g})", "far")
        return self


class PosesBounds(Model):
    """The whole file: one row per image, in the order of the sorted image names."""

    rows: list[LlffRow]


def as_rows(array: Any) -> dict[str, Any]:
    """An (n, 17) array as the plain data :class:`PosesBounds` checks."""
    rows = []
    for r in array.tolist():
        m = [r[0:5], r[5:10], r[10:15]]
        rows.append(
            {
                "pose": [row[:4] for row in m],
                "height": m[0][4],
                "width": m[1][4],
                "focal": m[2][4],
                "near": r[15],
                "far": r[16],
            }
        )
    return {"rows": rows}
