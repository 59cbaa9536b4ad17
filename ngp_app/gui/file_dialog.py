"""A roomy DearPyGui file dialog over ``filebrowser.FileBrowser``: a path field that takes typing (Enter on a folder
goes there, on a file chooses it), a listing to click through, and Open/Save + Cancel.

One instance serves every "Open..." and "..." button of the panel; ``show`` says what it is for. The panel's
window is narrow, so it widens while the dialog is open and goes back to its size after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from .filebrowser import FileBrowser


class FileDialog:
    """``show(title, folder, on_choose, extensions, action)``; ``on_choose(path)`` runs on the UI thread."""

    def __init__(
        self, on_ui: Callable[[Callable[[Any, Any], Any]], Callable[..., None]], width: int = 900, height: int = 620
    ) -> None:
        self.browser = FileBrowser()
        self.size = (width, height)
        self._restore: tuple[int, int] | None = None  # the panel window's size before the dialog widened it
        self._on_choose: Callable[[Path], Any] | None = None
        with dpg.window(
            label="Open",
            tag="file_dialog",
            modal=True,
            show=False,
            width=width,
            height=height,
            no_collapse=True,
            on_close=lambda *_: self.hide(),
        ):
            dpg.add_text("", tag="fd_hint", wrap=width - 30)
            dpg.add_input_text(
                tag="fd_path",
                width=-1,
                on_enter=True,
                hint="type a path, Enter",
                callback=on_ui(lambda _s, a: self.enter(a)),
            )
            with dpg.group(horizontal=True):
                dpg.add_button(label="Up", width=60, callback=on_ui(lambda *_: self._go_up()))
                dpg.add_button(label="Home", width=60, callback=on_ui(lambda *_: self.navigate(Path.home())))
                dpg.add_text("", tag="fd_folder")
            with dpg.child_window(tag="fd_list", height=-40, border=True):
                pass
            with dpg.group(horizontal=True):
                dpg.add_button(label="Open", tag="fd_accept", width=100, callback=on_ui(lambda *_: self.accept()))
                dpg.add_button(label="Cancel", width=100, callback=on_ui(lambda *_: self.hide()))
        self._on_ui = on_ui

    def show(
        self,
        title: str,
        folder: str | Path,
        on_choose: Callable[[Path], Any],
        extensions: tuple[str, ...] = (),
        action: str = "Open",
        name: str = "",
        hint: str = "",
    ) -> None:
        """Open the dialog at ``folder`` (``name`` pre-filled in the path field, for saving)."""
        self.browser.extensions = tuple(e.lower() for e in extensions)
        self._on_choose = on_choose
        if not self.browser.go(folder):
            self.browser.go(Path.home())
        if self._restore is None:
            w, h = dpg.get_viewport_width(), dpg.get_viewport_height()
            self._restore = (w, h)
            dpg.set_viewport_width(max(w, self.size[0] + 20))
            dpg.set_viewport_height(max(h, self.size[1] + 20))
        dpg.configure_item("file_dialog", label=title, show=True, pos=(10, 10))
        dpg.configure_item("fd_accept", label=action)
        dpg.set_value("fd_hint", hint)
        self.navigate(self.browser.folder, keep_name=name)
        dpg.focus_item("fd_path")

    def hide(self) -> None:
        dpg.configure_item("file_dialog", show=False)
        if self._restore is not None:
            dpg.set_viewport_width(self._restore[0])
            dpg.set_viewport_height(self._restore[1])
            self._restore = None

    @property
    def shown(self) -> bool:
        return bool(dpg.is_item_shown("file_dialog"))

    def navigate(self, folder: str | Path, keep_name: str = "") -> None:
        """Show ``folder``'s listing; the path field shows the folder (plus ``keep_name``)."""
        self.browser.go(folder)
        dpg.set_value("fd_folder", str(self.browser.folder))
        dpg.set_value("fd_path", str(self.browser.folder / keep_name) if keep_name else str(self.browser.folder))
        dpg.delete_item("fd_list", children_only=True)
        for entry in self.browser.entries():
            dpg.add_selectable(
                label=entry.label,
                parent="fd_list",
                callback=self._on_ui(lambda *_, e=entry: self.click(e.path, e.is_dir)),
            )

    def _go_up(self) -> None:
        self.browser.up()
        self.navigate(self.browser.folder)

    def click(self, path: Path, is_dir: bool) -> None:
        """A folder in the listing opens it; a file goes into the path field."""
        if is_dir:
            self.navigate(path)
        else:
            dpg.set_value("fd_path", str(path))

    def enter(self, typed: str) -> None:
        """Enter in the path field: a folder is shown, anything else is chosen (taken exactly as typed)."""
        p = self.browser.resolve(typed)
        if p.is_dir() and p != self.browser.folder:
            self.navigate(p)
        else:
            self.choose(p)

    def accept(self) -> None:
        self.choose(self.browser.resolve(dpg.get_value("fd_path")))

    def choose(self, path: Path) -> None:
        self.hide()
        if self._on_choose is not None:
            self._on_choose(path)
