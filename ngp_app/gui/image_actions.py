"""The app's per-image loss table as actions: read from the trainer about once a second; a row flies the view to its
camera and shows its training image beside the render; a frame can be left out of training.

A collaborator of :class:`~ngp_app.gui.session.Session` (UI thread); every refusal is a status line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..render.pictures import to_uint8
from .image_table import ImageRow, ImageTable

if TYPE_CHECKING:
    from .camera import OrbitCamera
    from .scene_state import SceneState
    from .settings import RenderSettings
    from .training import TrainingRunner


class ImageActions:
    """The per-image table and the training image shown beside the render. ``stop_preview()`` stops a playing
    camera-path preview before the view flies to an image."""

    def __init__(
        self,
        camera: OrbitCamera,
        settings: RenderSettings,
        current: SceneState,
        runner: TrainingRunner,
        set_status: Callable[..., None],
        stop_preview: Callable[[], None],
    ) -> None:
        self.camera, self.settings, self.current, self.runner = camera, settings, current, runner
        self.set_status, self.stop_preview = set_status, stop_preview
        self.image_table = ImageTable()
        self.compare_index: int | None = None  # training image shown beside the render (a table row's)
        self._table_step = -1  # the trainer's step when the table was last read
        self._compare_cache: tuple[tuple, np.ndarray] | None = None

    def refresh_image_table(self, force: bool = False) -> bool:
        """Re-read the per-image losses (about once a second while training runs; UI thread). Returns whether the
        rows changed."""
        t = self.runner.trainer
        step = int(t.step_count) if t is not None else -1
        if not force and t is self.image_table._trainer and step == self._table_step:
            return False  # nothing new: no host read
        changed = self.image_table.refresh(t, force)
        if changed:
            self._table_step = step
        return changed

    def image_row(self, index: int) -> ImageRow | None:
        return next((r for r in self.image_table.rows if r.index == index), None)

    def fly_to_image(self, index: int) -> bool:
        """Show training frame ``index``: the view jumps to its camera and its image is shown beside the render."""
        c2w, intr, sizes = self.current.train_cams
        if self.current.scene is None or not 0 <= index < len(c2w):
            self.set_status(f"no training frame {index} to show", error=True)
            return False
        self.stop_preview()
        self.settings.gt_index = index
        self.settings.ground_truth = False
        fov = math.degrees(2.0 * math.atan(0.5 * float(sizes[index, 1]) / float(intr[index, 1])))
        self.camera.show_pose(c2w[index], fov)  # exactly that camera (roll included), so the render lines up
        self.compare_index = index
        row = self.image_row(index)
        loss = f": loss {row.mse:.5f} ({row.psnr:.1f} dB)" if row is not None and row.rays > 0 else ""
        self.set_status(f"frame {index} {self._frame_name(index)}{loss}")
        return True

    def close_compare(self) -> None:
        self.compare_index = None

    def compare_image(self) -> np.ndarray | None:
        """The training image shown beside the render, (h, w, 3) uint8 on the background (None when off)."""
        i = self.compare_index
        if i is None or self.current.scene is None or not 0 <= i < self.current.scene.n_frames:
            return None
        key = (id(self.current.scene), i, tuple(self.settings.background))
        if self._compare_cache is None or self._compare_cache[0] != key:
            img = self.current.scene.image(i).cpu().numpy().astype(np.float32) / 255.0
            if img.shape[-1] == 4:
                bg = np.asarray(self.settings.background, dtype=np.float32)
                img = img[..., :3] * img[..., 3:] + bg * (1.0 - img[..., 3:])
            self._compare_cache = (key, to_uint8(img))
        return self._compare_cache[1]

    def compare_caption(self) -> str:
        i = self.compare_index
        if i is None:
            return ""
        row = self.image_row(i)
        loss = f"  loss {row.mse:.5f}" if row is not None and row.rays > 0 else ""
        state = "  (excluded)" if self.current.scene is not None and i in self.current.scene.excluded else ""
        return f"ground truth {i}: {self._frame_name(i)}{loss}{state}"

    def toggle_image_excluded(self, index: int) -> bool | None:
        """Leave training frame ``index`` out of training or bring it back, without restarting; returns whether it
        is now excluded (None when refused)."""
        t = self.runner.trainer
        if t is None:
            self.set_status("no training: open a scene to exclude frames", error=True)
            return None
        try:
            now = self.image_table.toggle_excluded(t, index)
        except ValueError as exc:
            self.set_status(f"cannot exclude frame {index}: {exc}", error=True)
            return None
        n = len(t.scene.excluded)
        self.set_status(
            f"frame {index} {self._frame_name(index)} "
            + (f"left out of training ({n} excluded)" if now else f"back in training ({n} excluded)")
        )
        return now

    def use_look(self, index: int | None) -> bool:
        """Show the scene with training frame ``index``'s look (its learned exposure and appearance code) in the view,
        screenshots and videos, or with the default look (``index`` None: the mean code, no exposure change).
        Returns whether the look changed; a model without per-image appearance is a status line."""
        if index is None:
            changed = self.settings.look != -1
            self.settings.look = -1
            self.set_status("default look: the mean appearance code, no exposure change")
            return changed
        t = self.runner.trainer
        appearance = getattr(t.model, "appearance", None) if t is not None else None
        if appearance is None:
            self.set_status(
                "no per-image looks: this model was trained without appearance (train with --appearance on)",
                error=True,
            )
            return False
        if not 0 <= index < appearance.n_images:
            self.set_status(
                f"no look for frame {index}: the model has {appearance.n_images} training frames", error=True
            )
            return False
        changed = self.settings.look != index
        self.settings.look = index
        self.set_status(f"look of frame {index} {self._frame_name(index)}: its exposure and appearance code")
        return changed

    def look_caption(self) -> str:
        """What the view shows: the default look or a training frame's."""
        i = self.settings.look
        return "look: default (mean code)" if i < 0 else f"look: frame {i} {self._frame_name(i)}"

    def _frame_name(self, index: int) -> str:
        row = self.image_row(index)
        if row is not None:
            return row.name
        names = getattr(self.current.scene, "file_names", None) or []
        return Path(names[index]).name if 0 <= index < len(names) else ""
