"""Interrupting a video render part-way, as Ctrl-C does: for the tests of resumed renders."""

from __future__ import annotations

from typing import Any

import pytest


def interrupt_frames(monkeypatch: pytest.MonkeyPatch, at_call: int) -> list[int]:
    """Make the ``at_call``-th frame render raise KeyboardInterrupt (the ones before render normally); returns the
    list of the frame indices asked for, filled as they are."""
    from ngp_app.export import video

    real, calls = video.FrameRenderer.__call__, []

    def interrupted(self: Any, i: int, chunk: Any = None) -> Any:
        calls.append(i)
        if len(calls) == at_call:
            raise KeyboardInterrupt
        return real(self, i, chunk)

    monkeypatch.setattr(video.FrameRenderer, "__call__", interrupted)
    return calls
