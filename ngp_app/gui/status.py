"""The app's one-line status: a message, whether it is an error, and when it was set (errors fade, then clear)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)
ERROR_SECONDS = 15.0  # an error message fades over its last FADE_SECONDS, then the status line clears
FADE_SECONDS = 3.0


class StatusLine:
    """The status line shown in the viewport and the panel; any thread may set it (the fields change together)."""

    def __init__(self, message: str = "") -> None:
        self._status: tuple[str, bool, float] = (message, False, time.monotonic())

    @property
    def text(self) -> str:
        return self._status[0]

    @property
    def is_error(self) -> bool:
        return self._status[1]

    @property
    def time(self) -> float:
        """``time.monotonic()`` when the current message was set."""
        return self._status[2]

    def set(self, message: str, error: bool = False) -> None:
        """Show a one-line message (any thread: the three fields change together)."""
        self._status = (message, error, time.monotonic())
        (log.warning if error else log.info)("%s", message)

    def report_error(self, exc: BaseException, context: str, prefix: str = "") -> str:
        """Show an exception as one red line and carry on: bad input says what and where; anything unexpected is an
        internal error whose traceback goes to a log file named in the line (``crash.describe_error``)."""
        from ..crash import describe_error

        line = prefix + describe_error(exc, context)
        self.set(line, error=True)
        return line

    def alpha(self, now: float | None = None) -> float:
        """How visible the message is (1 = fully): errors fade out at the end of ``ERROR_SECONDS``."""
        if not self.is_error:
            return 1.0
        left = ERROR_SECONDS - ((time.monotonic() if now is None else now) - self.time)
        return float(min(1.0, max(0.0, left / FADE_SECONDS)))

    def expire(self, now: float | None = None) -> bool:
        """Clear an error that has been shown for ``ERROR_SECONDS`` (UI thread, every frame). Returns whether it did."""
        status = self._status
        if status[1] and self.alpha(now) <= 0.0 and self._status is status:
            self._status = ("", False, time.monotonic() if now is None else now)
            return True
        return False
