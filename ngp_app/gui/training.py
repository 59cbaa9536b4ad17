"""Training on a background thread: start/stop/reset without ever taking the app down."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

from ..crash import describe_error

log = logging.getLogger(__name__)


class TrainingRunner:
    """Runs ``trainer.step()`` in a daemon thread until stopped.

    Errors inside a step stop the thread and are kept in ``error`` (one line) for the UI; nothing is raised.
    ``pause_s`` is slept between steps so a renderer waiting on ``trainer.lock`` gets its turn. Start, stop, toggle,
    replace and reset may be called from any thread: a lock makes each one whole, so there is never more than one
    training thread.
    """

    def __init__(self, trainer: Any = None, pause_s: float = 0.001) -> None:
        self.trainer = trainer
        self.pause_s = pause_s
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._times: deque[float] = deque(maxlen=64)
        self._lock = threading.RLock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def step(self) -> int:
        return int(self.trainer.step_count) if self.trainer is not None else 0

    def start(self) -> bool:
        """Start training (no-op when already running or without a trainer). Returns whether it runs."""
        with self._lock:
            if self.trainer is None:
                self.error = "nothing to train: open a scene first"
                return False
            if self.running:
                return True
            self.error = None
            self._stop = threading.Event()  # each thread has its own: a late stop cannot reach the next thread
            self._thread = threading.Thread(
                target=self._loop, args=(self.trainer, self._stop), name="ngp-train", daemon=True
            )
            self._thread.start()
            return True

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the current step and wait for it."""
        with self._lock:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout)
                if self._thread.is_alive():  # pragma: no cover - a step longer than the timeout
                    log.warning("training thread did not stop within %.0f s", timeout)
            self._thread = None

    def toggle(self) -> bool:
        with self._lock:
            if self.running:
                self.stop()
                return False
            return self.start()

    def replace(self, trainer: Any, start: bool | None = None) -> None:
        """Swap in another trainer (stopping the old thread cleanly). ``start`` None keeps the running state."""
        with self._lock:
            was_running = self.running
            self.stop()
            self.trainer = trainer
            self._times.clear()
            self.error = None
            if start if start is not None else was_running:
                self.start()

    def reset(self, make_trainer: Callable[[], Any]) -> None:
        """Rebuild the trainer from scratch (fresh weights); keeps running if it was."""
        with self._lock:
            was_running = self.running
            self.stop()
            try:
                trainer = make_trainer()
            except Exception as exc:  # noqa: BLE001 - reported in the UI
                self.error = "reset failed: " + describe_error(exc, "app: building a trainer")
                return
            self.replace(trainer, start=was_running)

    def steps_per_second(self) -> float:
        t = list(self._times)
        if len(t) < 2 or not self.running:
            return 0.0
        return (len(t) - 1) / max(t[-1] - t[0], 1e-9)

    def _loop(self, trainer: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                trainer.step()
            except Exception as exc:  # noqa: BLE001 - a failing step must not kill the app
                self.error = "training stopped: " + describe_error(exc, "app: a training step")
                return
            self._times.append(time.perf_counter())
            if self.pause_s:
                time.sleep(self.pause_s)
