"""The panel's per-image loss table (DearPyGui): one row per training frame with its recent loss, sortable by a
click on a column header, refreshed about once a second while training runs. Clicking a row flies the viewport to
that frame's camera and shows its image beside the render; the checkbox leaves the frame out of training (or
brings it back) without restarting.
"""

from __future__ import annotations

import math
from typing import Any

import dearpygui.dearpygui as dpg

from .layout import PANEL_WIDTH
from .panel import on_ui

MAX_ROWS = 300  # rows drawn (the worst ones when sorted by loss); the table's state holds them all
COLUMNS = (("#", "index"), ("image", "name"), ("loss", "loss"), ("PSNR", "psnr"), ("train", None))


class ImagePanel:
    """Builds the table inside the panel's window and rebuilds its rows when ``state.image_table`` changes."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.state = panel.state
        self._shown: tuple | None = None

    def build(self) -> None:
        st = self.state
        dpg.add_text("", tag="images_info", wrap=PANEL_WIDTH - 30)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Hide ground truth", tag="images_hide", callback=on_ui(st, lambda *_: st.close_compare()))
            dpg.add_button(label="Refresh", callback=on_ui(st, lambda *_: st.refresh_image_table(force=True)))
        with dpg.table(tag="images_table", header_row=True, sortable=True, resizable=True, scrollY=True, height=260,
                       policy=dpg.mvTable_SizingStretchProp, borders_innerH=True,
                       callback=on_ui(st, lambda _s, a: self._sort(a))):
            for label, key in COLUMNS:
                dpg.add_table_column(label=label, tag=f"images_col_{label}", no_sort=key is None,
                                     width_stretch=True, init_width_or_weight=3.0 if key == "name" else 1.0,
                                     default_sort=key == "loss", prefer_sort_descending=key == "loss")

    def _sort(self, spec: Any) -> None:
        """DearPyGui's sort spec: [[column id, 1 ascending / -1 descending]]."""
        if not spec:
            return
        column, direction = spec[0]
        label = dpg.get_item_label(column)
        key = dict(COLUMNS).get(label)
        if key is None:
            return
        descending = direction < 0
        if key == "psnr":  # PSNR goes down as the loss goes up
            key, descending = "loss", not descending
        self.state.image_table.sort_by(key, descending)

    def refresh(self) -> None:
        st, table = self.state, self.state.image_table
        shown = (table.version, st.compare_index)
        if shown == self._shown:
            return
        self._shown = shown
        rows = table.rows
        n_out = sum(r.excluded for r in rows)
        if rows:
            worst = table.worst(1)
            info = f"{len(rows)} training frames, {n_out} left out" + (
                f"; worst: {worst[0].name} (loss {worst[0].mse:.5f})" if worst else "; no losses yet (train a little)")
            if len(rows) > MAX_ROWS:
                info += f"; first {MAX_ROWS} shown"
        else:
            info = "no training frames: open a scene and train"
        dpg.set_value("images_info", info)
        dpg.delete_item("images_table", children_only=True, slot=1)
        for r in rows[:MAX_ROWS]:
            with dpg.table_row(parent="images_table"):
                dpg.add_selectable(label=str(r.index), span_columns=True, default_value=r.index == st.compare_index,
                                   tag=f"images_row_{r.index}", callback=on_ui(st, lambda *_, i=r.index: self._fly(i)))
                dpg.add_text(r.name)
                dpg.add_text("-" if math.isnan(r.mse) else f"{r.mse:.5f}")
                dpg.add_text("-" if math.isnan(r.psnr) else f"{r.psnr:.1f}")
                dpg.add_checkbox(default_value=not r.excluded, tag=f"images_train_{r.index}",
                                 callback=on_ui(st, lambda *_, i=r.index: self._toggle(i)))

    def _fly(self, index: int) -> None:
        st = self.state
        if st.compare_index == index:  # a second click on the row hides the image again
            st.close_compare()
        else:
            st.fly_to_image(index)
        self._shown = None  # redraw the selection

    def _toggle(self, index: int) -> None:
        self.state.toggle_image_excluded(index)
        self._shown = None  # a refused change (the last frame in training) shows its checkbox as it was
