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
