"""User-facing errors: one line that says what went wrong and where."""

from __future__ import annotations


class NgpError(Exception):
    """An error caused by bad input (scene, snapshot, config, arguments), shown as one line, never a traceback."""


class SceneError(NgpError):
    """A scene folder or transforms file that cannot be loaded."""


class SnapshotError(NgpError):
    """A snapshot file that is missing, corrupt or of another format version."""


class ConfigError(NgpError):
    """A config that is missing keys or has values of the wrong type."""


class ImportFailed(NgpError):
    """An import (``ngp import``) that cannot proceed: no images, an unreadable video, a failed reconstruction."""


class ImportCancelled(NgpError):
    """An import stopped by its caller (the app's cancel button)."""


class RankFailed(Exception):
    """A failure every rank of a ``torchrun`` launch has agreed on (``distributed``): ``line`` is what rank 0 prints
    (``shown`` there only) and ``code`` the exit status every rank returns."""

    def __init__(self, line: str, code: int, shown: bool) -> None:
        super().__init__(line)
        self.line, self.code, self.shown = line, code, shown
