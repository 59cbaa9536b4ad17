"""Background jobs for the app: long work (screenshots, snapshots, meshes, videos, loads) runs on its own thread
with a progress fraction, a stage text, an ETA and a Cancel button; its result or error comes back on the UI
thread, so the code that handles it may touch the app's state freely.

No windowing toolkit here: the panel draws ``JobRunner.visible()`` and calls ``Job.cancel``; tests drive it alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from ..crash import plain_message

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
SHOW_FINISHED_S = 4.0  # a finished job stays listed this long (its bar full or its error shown), then goes


class JobCancelled(Exception):
    """Raised inside a job's work when its Cancel was pressed (by ``Job.report`` / ``Job.check``)."""


@dataclass
class Job:
    """One background task. The work calls ``report(fraction, stage)`` as it goes; the UI reads the fields.

    ``fraction`` is in [0, 1] or None while unknown (the panel then shows an indeterminate bar).
    """

    label: str
    id: int
    fraction: float | None = None
    stage: str = ""
    state: str = RUNNING
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _first: tuple[float, float] | None = field(default=None, repr=False)  # (time, fraction) of the first report

    # ------------------------------------------------------------------------------------------ worker side
    def report(self, fraction: float | None = None, stage: str | None = None) -> None:
        """Progress from the work (any thread); raises JobCancelled when Cancel was pressed."""
        self.update(fraction, stage)
        self.check()

    def update(self, fraction: float | None = None, stage: str | None = None) -> None:
        """Progress without the cancel check: for work that watches ``cancel_event`` itself (an import)."""
        if stage is not None:
            self.stage = stage
        if fraction is not None:
            f = min(1.0, max(0.0, float(fraction)))
            if self._first is None:
                self._first = (time.perf_counter(), f)
            self.fraction = f

    def progress_callback(
        self, lo: float = 0.0, hi: float = 1.0, stage: str | None = None
    ) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback (as render_image and export_video take) mapped to [lo, hi]."""

        def progress(done: int, total: int) -> None:
            self.report(lo + (hi - lo) * done / max(total, 1), stage)

        return progress

    def check(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(self.label)

    # ------------------------------------------------------------------------------------------ UI side
    def cancel(self) -> None:
        """Ask the work to stop at its next report (it ends as ``cancelled``; nothing half-written is kept)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """Set when Cancel is pressed: for work that takes a ``threading.Event`` to stop (``import_scene``)."""
        return self._cancel

    @property
    def active(self) -> bool:
        return self.state == RUNNING

    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def eta(self) -> float | None:
        """Seconds left, from the rate since the first progress report (None until there is a rate)."""
        if self.state != RUNNING or self.fraction is None or self._first is None:
            return None
        t0, f0 = self._first
        done = self.fraction - f0
        if done <= 1e-6:
            return None
        return (time.perf_counter() - t0) * (1.0 - self.fraction) / done

    def describe(self) -> str:
        """One line for the panel and HUD: label, stage, percentage, elapsed and ETA."""
        parts = [self.label + (f": {self.stage}" if self.stage else "")]
        if self.state == RUNNING:
            if self.fraction is not None:
                parts.append(f"{self.fraction * 100:.0f}%")
            parts.append(f"{format_seconds(self.elapsed())} elapsed")
            eta = self.eta()
            if eta is not None:
                parts.append(f"ETA {format_seconds(eta)}")
            if self.cancel_requested:
                parts.append("cancelling...")
        else:
            parts.append(self.state if self.state != FAILED else f"failed: {self.error}")
        return " | ".join(parts)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the work's thread (its result still reaches the UI thread through ``post``)."""
        if self._thread is not None:
            self._thread.join(timeout)


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class JobRunner:
    """Starts jobs on threads and hands their outcome to the UI thread through ``post`` (``Session.post``).

    ``submit(label, work, on_done, on_error, on_cancel)``: ``work(job)`` runs off the UI thread and returns the
    result; exactly one of the callbacks then runs on the UI thread: ``on_done(result)``, ``on_error(exc)`` or
    ``on_cancel()``.
    """

    def __init__(self, post: Callable[[Callable[[], None]], None]) -> None:
        self.post = post
        self.jobs: list[Job] = []
        self._lock = threading.Lock()
        self._next_id = 0

    def submit(
        self,
        label: str,
        work: Callable[[Job], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> Job:
        with self._lock:
            self._next_id += 1
            job = Job(label, self._next_id)
            self.jobs.append(job)

        def finish(state: str, result: Any = None, exc: BaseException | None = None) -> None:
            """Runs on the UI thread: record the outcome, then call the matching handler."""
            job.state, job.result, job.finished = state, result, time.perf_counter()
            if state == DONE:
                job.fraction = 1.0
                if on_done is not None:
                    on_done(result)
            elif state == CANCELLED:
                if on_cancel is not None:
                    on_cancel()
            else:
                job.error = plain_message(exc) if exc is not None else "unknown error"
                if on_error is not None:
                    on_error(exc if exc is not None else RuntimeError(job.error))

        def run() -> None:
            try:
                job.check()
                result = work(job)
            except JobCancelled:
                self.post(lambda: finish(CANCELLED))
            except Exception as exc:  # noqa: BLE001 - reported on the UI thread, never kills the app
                # one line (the panel shows it too); the traceback only at debug level (ngp -v)
                log.warning("job %s failed: %s", label, plain_message(exc))
                log.debug("job %s failed", label, exc_info=True)
                self.post(lambda e=exc: finish(FAILED, exc=e))
            else:
                self.post(lambda: finish(DONE, result))

        job._thread = threading.Thread(target=run, name=f"ngp-job-{label}", daemon=True)
        job._thread.start()
        return job

    def active(self) -> list[Job]:
        with self._lock:
            return [j for j in self.jobs if j.active]

    def visible(self, now: float | None = None) -> list[Job]:
        """Running jobs plus those finished in the last few seconds (older ones are forgotten)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self.jobs = [j for j in self.jobs if j.active or (j.finished or now) > now - SHOW_FINISHED_S]
            return list(self.jobs)

    def cancel_all(self) -> None:
        for j in self.active():
            j.cancel()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every job and wait (bounded) for their threads."""
        self.cancel_all()
        end = time.perf_counter() + timeout
        with self._lock:
            jobs = list(self.jobs)
        for j in jobs:
            j.join(max(0.0, end - time.perf_counter()))


class JobQueue:
    """Jobs of one kind (videos) that run one at a time, in the order they were queued: each waits for its turn
    in its own work (``turn``), showing how many are ahead, and can be cancelled while it waits. Each queued job
    names the ``output`` it writes, and two queued jobs never write the same one."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._cond = threading.Condition()
        self._queue: list[tuple[Job, str]] = []
        self._running: Job | None = None

    def output_taken(self, output: str) -> bool:
        """Whether a queued or running job writes ``output``."""
        with self._cond:
            self._prune()
            return any(out == output for _, out in self._queue)

    def add(self, job: Job, output: str) -> None:
        """Queue ``job`` (just submitted; its work calls ``turn``)."""
        with self._cond:
            self._queue.append((job, output))
            self._cond.notify_all()

    def waiting(self) -> int:
        """How many queued jobs are not running yet."""
        with self._cond:
            self._prune()
            return max(0, len(self._queue) - 1)

    def _prune(self) -> None:
        """Drop jobs that ended without taking their turn (cancelled before their work began)."""
        self._queue = [(j, out) for j, out in self._queue if j.active or j is self._running]

    @contextmanager
    def turn(self, job: Job) -> Iterator[None]:
        """Wait until ``job`` is first in the queue (raises JobCancelled if cancelled meanwhile), then hold the
        turn for the block."""
        with self._cond:
            while True:
                self._prune()
                place = next((k for k, (j, _) in enumerate(self._queue) if j is job), None)
                if place is None:  # its work began before ``add`` ran on the submitting thread
                    self._cond.wait(0.05)
                    continue
                if place == 0:
                    self._running = job
                    break
                if job.cancel_requested:
                    self._queue = [(j, out) for j, out in self._queue if j is not job]
                    self._cond.notify_all()
                    raise JobCancelled(job.label)
                job.update(None, f"queued: {place} {self.what}{'s' if place > 1 else ''} ahead")
                self._cond.wait(0.2)
        try:
            yield
        finally:
            with self._cond:
                self._running = None
                self._queue = [(j, out) for j, out in self._queue if j is not job]
                self._cond.notify_all()
