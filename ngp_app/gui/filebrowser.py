"""The panel's file dialog, without the toolkit: a folder listing and a typed path that is taken as typed.

DearPyGui's own file dialog appends the selected filter's extension to a typed name (``transforms.json`` became
``transforms.npz``) and hides its filter selector in a narrow panel; this model keeps the dialog's logic testable
and the panel only draws it (``panel.FileDialog``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_ENTRIES = 2000  # a folder of 100k frames must not freeze the panel


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    is_dir: bool

    @property
    def label(self) -> str:
        return self.name + os.sep if self.is_dir else self.name


class FileBrowser:
    """Browse folders from ``folder``; files shown are those ending in one of ``extensions`` (all when empty)."""

    def __init__(self, folder: str | Path | None = None, extensions: tuple[str, ...] = ()) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        self.folder = Path.home()
        self.go(folder if folder is not None else Path.cwd())

    def go(self, folder: str | Path) -> bool:
        """Show ``folder`` (typed paths as in ``resolve``); False (and no change) when it is not a folder."""
        p = self.resolve(str(folder))
        if not p.is_dir():
            return False
        self.folder = p
        return True

    def up(self) -> None:
        self.folder = self.folder.parent

    def resolve(self, typed: str) -> Path:
        """A typed path, taken as typed: ``~`` expanded, relative to the shown folder, never an extension added."""
        text = typed.strip().strip('"')
        if not text:
            return self.folder
        p = Path(os.path.expanduser(text))
        return Path(os.path.normpath(p if p.is_absolute() else self.folder / p))

    def entries(self) -> list[Entry]:
        """Folders first, then matching files, each sorted by name; hidden ones left out; at most MAX_ENTRIES."""
        try:
            items = [e for e in os.scandir(self.folder) if not e.name.startswith(".")]
        except OSError:
            return []
        dirs, files = [], []
        for e in items:
            try:
                is_dir = e.is_dir()
            except OSError:
                continue
            if is_dir:
                dirs.append(Entry(e.name, Path(e.path), True))
            elif not self.extensions or e.name.lower().endswith(self.extensions):
                files.append(Entry(e.name, Path(e.path), False))
        return (sorted(dirs, key=_name_key) + sorted(files, key=_name_key))[:MAX_ENTRIES]


def _name_key(entry: Entry) -> str:
    return entry.name.lower()
