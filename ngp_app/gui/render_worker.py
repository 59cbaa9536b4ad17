"""The viewport's render thread: dynamic resolution while the view changes, progressive refinement while it is
still. It only calls ``AppState.render_view`` and reads the camera and settings, so tests drive it without a window.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from .rendering import RenderCancelled

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger(__name__)


@dataclass
class Frame:
    image: np.ndarray  # (h, w, 4) uint8 RGBA, opaque (what the viewport uploads)
    scale: float  # linear fraction of the output size
    ms: float
    seq: int
    step: int


class RenderWorker:
    """Renders the viewport off the UI thread: dynamic resolution while the view changes, then progressive
    refinement towards full resolution while it is still. The UI picks up ``latest`` whenever ``seq`` moves."""

    def __init__(self, state: AppState, refine_budget_ms: float = 1500.0) -> None:
        self.state = state
        self.size = (1920, 1080)
        self.latest: Frame | None = None
        self.frames = 0
        self.refine_budget_ms = refine_budget_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._times: list[float] = []
        self._last_key: tuple | None = None  # view the last frame was rendered for

    def view_key(self) -> tuple:
        s = self.state
        return (s.camera.version, s.settings.key(), s.generation, self.size)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ngp-render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)

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
        img = self.state.render_view(w, h, cancel, timing=timing)
        ms = (time.perf_counter() - t0) * 1000.0
        if "ms" in timing:  # exclude waiting for the trainer: resolution cannot shorten that
            ms = min(ms, timing["ms"] + (ms - timing["ms"]) * 0.1)
        self.frames += 1
        self._times = self._times[-30:] + [time.perf_counter()]
        frame = Frame(img, scale, ms, self.frames, step)
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
        last_key: tuple | None = None
        last_step = -1
        refine: list[float] = []
        ref_ms, ref_scale = 0.0, 1.0  # the latest frame of this view (time and scale), to predict the next ones
        shown = 0.0  # scale of the latest frame of the current view
        while not self._stop.is_set():
            st = self.state
            key = self.view_key()
            cap = max(0.01, min(1.0, st.settings.resolution_scale))
            st.dynres.target_fps = st.settings.target_fps
            st.dynres.max_scale = cap
            running = st.runner.running
            try:
                if key != last_key:  # the view moved (or the scene, settings or window changed)
                    last_key, last_step = key, st.step
                    scale = min(st.dynres.scale, cap)
                    frame = self.render_once(scale)
                    ref_ms, ref_scale, shown = frame.ms, scale, scale
                    st.dynres.update(frame.ms, scale)
                    refine = st.dynres.refine_scales() if self.view_key() == key else []
                elif running and st.step != last_step and not refine:
                    # The view is still and only the model changed: the sharpest picture whose render stays within
                    # the budget, so the view sharpens as it trains without starving the trainer. It grows (at most
                    # doubling a frame, as refinement does) when frames got cheaper than when refinement stopped:
                    # an untrained model's dense grid makes the first frames slow.
                    last_step = st.step
                    affordable = ref_scale * math.sqrt(self.refine_budget_ms / max(ref_ms, 1e-3))
                    scale = max(min(affordable, 2.0 * shown, cap), min(st.dynres.scale, cap))
                    frame = self.render_once(scale, cancel=self._cancel(key))
                    ref_ms, ref_scale, shown = frame.ms, scale, scale
                elif refine:
                    scale = refine.pop(0)
                    # time goes with pixel count; extrapolate from the latest (largest) frame of this view
                    predicted = ref_ms * (scale / max(ref_scale, 1e-3)) ** 2
                    if running and predicted > self.refine_budget_ms:
                        refine = []  # resumed below once training stops
                        continue
                    frame = self.render_once(scale, cancel=self._cancel(key, predicted))
                    ref_ms, ref_scale, shown = frame.ms, scale, scale
                elif not running and shown < cap - 1e-6:
                    # Still and not training, but not yet sharp (refinement was cut short while training ran, or
                    # the cap was raised): refine from where it stopped.
                    refine = st.dynres.refine_scales(start=shown)
                else:
                    time.sleep(0.01)
            except RenderCancelled:
                refine = []
            except Exception as exc:  # noqa: BLE001 - a failing render must not kill the app
                st.report_error(exc, "app: rendering the viewport", prefix="render failed: ")
                refine, shown = [], cap  # no retry until the view changes
                time.sleep(0.2)
