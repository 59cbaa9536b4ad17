"""The viewport's render thread: dynamic resolution while the view changes, progressive refinement while it is
still. It only calls the session's ``view.render_view`` and reads the camera and settings, so tests drive it without
a window. Its states are ``Phase``s; ``next_phase`` holds every transition.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Callable

import numpy as np

from .rendering import RenderCancelled

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


@dataclass
class Frame:
    image: np.ndarray  # (h, w, 4) uint8 RGBA, opaque (what the viewport uploads)
    scale: float  # linear fraction of the output size
    ms: float
    seq: int
    step: int
    generation: int = 0  # the scene/model swap it shows (``current.generation``): an older one is never shown


class Phase(Enum):
    """What the render thread does next."""

    NEW_VIEW = "new view"  # the view, scene, settings or window changed: a frame at the dynamic-resolution scale
    FOLLOW_TRAINING = "follow training"  # the view is still and the model trained on: the sharpest affordable frame
    REFINE = "refine"  # the view is still: the next, sharper frame of progressive refinement
    RESUME = "resume refinement"  # still, not training, not yet sharp: plan refinement from where it stopped
    IDLE = "idle"  # sharp, or training with nothing new: wait


def next_phase(view_moved: bool, training: bool, model_moved: bool, refining: bool, sharp: bool) -> Phase:
    """The render thread's transitions, first match wins: a moved view always re-renders; while training, a new
    step gets a frame once refinement is done (or was dropped); refinement goes on; a still, unsharp view that is
    not training resumes refinement (cut short while training ran, or the cap was raised); else idle."""
    if view_moved:
        return Phase.NEW_VIEW
    if training and model_moved and not refining:
        return Phase.FOLLOW_TRAINING
    if refining:
        return Phase.REFINE
    if not training and not sharp:
        return Phase.RESUME
    return Phase.IDLE


@dataclass
class ViewProgress:
    """Where the render thread stands with the current view."""

    key: tuple | None = None  # the view the latest frames are of
    step: int = -1  # the trainer's step when this view's latest model-following frame started
    refine: list[float] = field(default_factory=list)  # the refinement scales still to render
    ref_ms: float = 0.0  # the latest frame of this view (time and scale), to predict the next ones
    ref_scale: float = 1.0
    shown: float = 0.0  # scale of the latest frame of the current view

    def rendered(self, frame: Frame) -> None:
        self.ref_ms, self.ref_scale, self.shown = frame.ms, frame.scale, frame.scale


class RenderWorker:
    """Renders the viewport off the UI thread: dynamic resolution while the view changes, then progressive
    refinement towards full resolution while it is still. The UI picks up ``latest`` whenever ``seq`` moves."""

    def __init__(self, state: Session, refine_budget_ms: float = 1500.0) -> None:
        self.state = state
        self.size = (1920, 1080)
        self.latest: Frame | None = None
        self.frames = 0
        self.refine_budget_ms = refine_budget_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._times: list[float] = []
        self._last_key: tuple | None = None  # view the last frame was rendered for
        self.phase = Phase.IDLE  # the latest phase the thread entered

    def view_key(self) -> tuple:
        s = self.state
        return (s.camera.version, s.settings.key(), s.current.generation, self.size)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ngp-render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)

    def current(self) -> Frame | None:
        """The latest frame if it shows the current scene and model, else None (after an open or a reset, the old
        scene's picture is not shown under the new one's HUD while its first frame renders)."""
        frame = self.latest
        return frame if frame is not None and frame.generation == self.state.current.generation else None

    def fps(self) -> float:
        t = [x for x in self._times if x > time.perf_counter() - 2.0]
        return (len(t) - 1) / max(t[-1] - t[0], 1e-9) if len(t) > 1 else 0.0

    def render_once(self, scale: float, cancel: Callable[[], bool] | None = None) -> Frame:
        from .dynres import render_size

        key = self.view_key()
        w, h = render_size(*self.size, scale)
        t0 = time.perf_counter()
        step = self.state.step
        timing: dict[str, float] = {}
        img = self.state.view.render_view(w, h, cancel, timing=timing)
        ms = (time.perf_counter() - t0) * 1000.0
        if "ms" in timing:  # exclude waiting for the trainer: resolution cannot shorten that
            ms = min(ms, timing["ms"] + (ms - timing["ms"]) * 0.1)
        self.frames += 1
        self._times = self._times[-30:] + [time.perf_counter()]
        frame = Frame(img, scale, ms, self.frames, step, key[2])
        self._last_key = key
        self.latest = frame
        return frame

    def _cancel(self, key: tuple, predicted_ms: float = 0.0) -> Callable[[], bool]:
        """Stop a render when the view moves, the app closes, or training starts and the frame is over budget."""

        def cancel() -> bool:
            return (
                self.view_key() != key
                or self._stop.is_set()
                or (predicted_ms > self.refine_budget_ms and self.state.runner.running)
            )

        return cancel

    def _loop(self) -> None:
        p = ViewProgress()
        while not self._stop.is_set():
            st = self.state
            key = self.view_key()
            cap = max(0.01, min(1.0, st.settings.resolution_scale))
            st.dynres.target_fps = st.settings.target_fps
            st.dynres.max_scale = cap
            running = st.runner.running
            self.phase = next_phase(key != p.key, running, st.step != p.step, bool(p.refine), p.shown >= cap - 1e-6)
            try:
                self._act(self.phase, p, key, cap, running)
            except RenderCancelled:
                p.refine = []
            except Exception as exc:  # noqa: BLE001 - a failing render must not kill the app
                st.status_line.report_error(exc, "app: rendering the viewport", prefix="render failed: ")
                p.refine, p.shown = [], cap  # no retry until the view changes
                time.sleep(0.2)

    def _act(self, phase: Phase, p: ViewProgress, key: tuple, cap: float, running: bool) -> None:
        """Do what ``phase`` says for the view ``key``, updating ``p``."""
        st = self.state
        if phase is Phase.NEW_VIEW:
            p.key, p.step = key, st.step
            scale = min(st.dynres.scale, cap)
            frame = self.render_once(scale)
            p.rendered(frame)
            st.dynres.update(frame.ms, scale)
            p.refine = st.dynres.refine_scales() if self.view_key() == key else []
        elif phase is Phase.FOLLOW_TRAINING:
            # The sharpest picture whose render stays within the budget, so the view sharpens as it trains without
            # starving the trainer. It grows (at most doubling a frame, as refinement does) when frames got cheaper
            # than when refinement stopped: an untrained model's dense grid makes the first frames slow.
            p.step = st.step
            affordable = p.ref_scale * math.sqrt(self.refine_budget_ms / max(p.ref_ms, 1e-3))
            scale = max(min(affordable, 2.0 * p.shown, cap), min(st.dynres.scale, cap))
            p.rendered(self.render_once(scale, cancel=self._cancel(key)))
        elif phase is Phase.REFINE:
            scale = p.refine.pop(0)
            # time goes with pixel count; extrapolate from the latest (largest) frame of this view
            predicted = p.ref_ms * (scale / max(p.ref_scale, 1e-3)) ** 2
            if running and predicted > self.refine_budget_ms:
                p.refine = []  # resumed once training stops
                return
            p.rendered(self.render_once(scale, cancel=self._cancel(key, predicted)))
        elif phase is Phase.RESUME:
            p.refine = st.dynres.refine_scales(start=p.shown)
        else:
            time.sleep(0.01)
