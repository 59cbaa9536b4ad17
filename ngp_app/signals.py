"""SIGINT and SIGTERM as exceptions or as stop requests.

By default (``ngp`` installs :func:`terminate_as_interrupt` for every command) SIGTERM raises :class:`Interrupted`
like Ctrl-C raises KeyboardInterrupt, so ``finally`` blocks run: atomic writes remove their temp files, locks are
released. Training uses :class:`StopRequests` instead: a signal asks it to stop after the current step and save.
Exit statuses follow the shell's convention, 128 + signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM turned into an exception (a KeyboardInterrupt, so code that cleans up on Ctrl-C also
    cleans up on SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal_name(signum))
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    """Install ``handler`` for SIGINT and SIGTERM within the block (main thread only), then restore the old ones."""
    if not _main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted`."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    with _handlers(handler):
        yield


class StopRequests:
    """A context in which SIGINT/SIGTERM only record a request (``received``) that a loop polls, so work in progress
    finishes and is saved. Inside :meth:`raising` they raise :class:`Interrupted` instead (for work that can be
    abandoned, like a final evaluation). A third signal raises anyway, so a stuck save can still be interrupted."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.count = 0
        self._raise = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> StopRequests:
        self._stack.enter_context(_handlers(self._handle))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def __call__(self) -> bool:
        """Whether a stop was asked for (pass as a loop's ``should_stop``)."""
        return self.received is not None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received or 0)

    @property
    def name(self) -> str:
        return signal_name(self.received) if self.received is not None else ""

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Within this block a signal raises :class:`Interrupted` (a request already received raises at once)."""
        if self.received is not None:
            raise Interrupted(self.received)
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.received is None:
            self.received = signum
        if self._raise or self.count >= 3:
            raise Interrupted(signum)
        if self.count == 1:
            log.warning(
                "%s received: finishing the current step and saving (a third signal aborts)", signal_name(signum)
            )
