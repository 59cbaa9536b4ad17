"""The last-resort handler: an unexpected exception becomes one line for the user and a traceback in a log file.

``ngp`` (and the app, which keeps running) calls :func:`report_internal_error`; the line reads
``ngp: internal error: <type>: <message> (details: <log file>)``. Logs go to ``$NGP_LOG_DIR`` or
``~/.cache/ngp_app/logs`` and only the newest :data:`KEEP_LOGS` are kept.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import traceback
from pathlib import Path

KEEP_LOGS = 50
MAX_MESSAGE = 300


def log_dir() -> Path:
    """Where internal-error logs are written: ``$NGP_LOG_DIR``, else ``~/.cache/ngp_app/logs``."""
    env = os.environ.get("NGP_LOG_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ngp_app" / "logs"


def short_message(exc: BaseException) -> str:
    """The exception's first line, shortened, so the user-facing line stays one line."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def write_log(exc: BaseException, context: str = "") -> Path:
    """Write the traceback of ``exc`` (with the command line and versions) to a new file in :func:`log_dir`."""
    directory = log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = directory / f"error-{stamp}-{os.getpid()}.log"
    header = [
        f"time: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"context: {context or ' '.join(sys.argv)}",
        f"python: {sys.version.split()[0]} on {platform.platform()}",
    ]
    try:
        import torch

        header.append(f"torch: {torch.__version__}")
    except Exception:  # noqa: BLE001 - the log must be written whatever state torch is in
        pass
    body = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    path.write_text("\n".join(header) + "\n\n" + body, encoding="utf-8")
    _prune(directory)
    return path


def _prune(directory: Path) -> None:
    logs = sorted(directory.glob("error-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-KEEP_LOGS]:
        try:
            old.unlink()
        except OSError:
            pass


def report_internal_error(exc: BaseException, context: str = "") -> str:
    """Log ``exc``'s traceback and return the one line to show (CLI: on stderr; app: in its status line)."""
    try:
        details = str(write_log(exc, context))
    except OSError as log_exc:
        details = f"no log written: {log_exc.strerror or log_exc}"
    message = short_message(exc)
    return f"ngp: internal error: {type(exc).__name__}{': ' + message if message else ''} (details: {details})"


def describe_error(exc: BaseException, context: str = "") -> str:
    """One line for an exception the app shows and survives: bad input (NgpError) and file system errors say what
    and where; out of memory says so; anything else is an internal error, logged by :func:`report_internal_error`."""
    from .errors import NgpError
    from .limits import is_out_of_memory

    if isinstance(exc, (NgpError, OSError)) or is_out_of_memory(exc):
        return plain_message(exc)
    return report_internal_error(exc, context)


def plain_message(exc: BaseException) -> str:
    """One line saying what went wrong, without the exception's class name (nothing is logged): bad input and file
    system errors say what and where; anything else gives its first line (its class name when it has none)."""
    from .errors import NgpError
    from .limits import is_out_of_memory

    if isinstance(exc, NgpError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError):
        return f"{exc.strerror or short_message(exc)}: {exc.filename or ''}".rstrip(": ")
    if is_out_of_memory(exc):
        return "out of memory (try a smaller size, resolution or batch)"
    return short_message(exc) or type(exc).__name__


def failure_line(exc: BaseException) -> tuple[str, int]:
    """The line ``ngp`` prints for ``exc`` and its exit status: 2 for bad input, file system errors and out of
    memory, 1 for an internal error (logged by :func:`report_internal_error`)."""
    line = describe_error(exc)
    return (line, 1) if line.startswith("ngp: internal error") else (f"ngp: error: {line}", 2)
