"""The panel's per-image loss table (DearPyGui): one row per training frame with its recent loss, sortable by a
click on a column header, refreshed about once a second while training runs. Clicking a row flies the viewport to
that frame's camera and shows its image beside the render; the checkbox leaves the frame out of training (or
brings it back) without restarting.
"""

from __future__ import annotations

import math
from typing import Any

import dearpygui.dearpygui as dpg

from .widgets import fixed_lines, on_ui

MAX_ROWS = 300  # rows drawn (the worst ones when sorted by loss); the table's state holds them all
COLUMNS = (("#", "index"), ("image", "name"), ("loss", "loss"), ("PSNR", "psnr"), ("train", None))


class ImagePanel:
    """Builds the table inside the panel's window and rebuilds its rows when ``state.images.image_table`` changes."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.state = panel.state
        self._shown: tuple | None = None
        self._order: list[int] = []  # frame indices of the rows on screen, top to bottom
        self._sort_shown: tuple[str, bool] | None = None

    def build(self) -> None:
        st = self.state
        dpg.add_text(fixed_lines("", 2), tag="images_info")
        with dpg.group(horizontal=True):
            dpg.add_button(
                label="Hide ground truth", tag="images_hide", callback=on_ui(st, lambda *_: st.images.close_compare())
            )
            dpg.add_button(label="Refresh", callback=on_ui(st, lambda *_: st.images.refresh_image_table(force=True)))
        with dpg.group(horizontal=True):  # per-image appearance: the selected row's look, or the default one
            dpg.add_button(
                label="Use this frame's look", tag="images_look", callback=on_ui(st, lambda *_: self._look())
            )
            dpg.add_button(
                label="Default look", tag="images_look_default", callback=on_ui(st, lambda *_: st.images.use_look(None))
            )
            dpg.add_text("", tag="images_look_info")
        with dpg.group(tag="images_box"):  # the table's area on screen (a table reports no rectangle)
            with dpg.table(
                tag="images_table",
                header_row=True,
                sortable=True,
                resizable=True,
                scrollY=True,
                height=260,
                policy=dpg.mvTable_SizingStretchProp,
                borders_innerH=True,
                callback=on_ui(st, lambda _s, a: self._sort(a)),
            ):
                for label, key in COLUMNS:
                    dpg.add_table_column(
                        label=label,
                        tag=f"images_col_{label}",
                        no_sort=key is None,
                        width_stretch=True,
                        init_width_or_weight=3.0 if key == "name" else 1.0,
                        default_sort=key == "loss",
                        prefer_sort_descending=key == "loss",
                    )

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
        self.state.images.image_table.sort_by(key, descending)

    def refresh(self) -> None:
        """Show the table's rows. Values change in place; the rows are rebuilt only when their order changes, and
        a re-sort from new losses waits while the pointer is over the table (a click must land on the row it aimed
        at). A click on a column header re-sorts at once."""
        st, table = self.state, self.state.images.image_table
        shown = (table.version, st.images.compare_index, st.settings.look)
        if shown == self._shown:
            return
        dpg.set_value("images_look_info", st.images.look_caption())
        rows = table.rows
        order = [r.index for r in rows[:MAX_ROWS]]
        sort = (table.sort_key, table.descending)
        if (
            order != self._order
            and self._order
            and sort == self._sort_shown
            and set(order) == set(self._order)
            and self._pointer_over_table()
        ):
            self._update_values({r.index: r for r in rows}, st.images.compare_index)  # same rows, old order, for now
            return  # ``_shown`` stays behind: re-sorted once the pointer leaves
        self._shown = shown
        n_out = sum(r.excluded for r in rows)
        if rows:
            worst = table.worst(1)
            info = f"{len(rows)} training frames, {n_out} left out" + (
                f"; worst: {worst[0].name} (loss {worst[0].mse:.5f})" if worst else "; no losses yet (train a little)"
            )
            if len(rows) > MAX_ROWS:
                info += f"; first {MAX_ROWS} shown"
        else:
            info = "no training frames: open a scene and train"
        dpg.set_value("images_info", fixed_lines(info, 2))
        if order == self._order:
            self._update_values({r.index: r for r in rows}, st.images.compare_index)
            return
        self._order, self._sort_shown = order, sort
        dpg.delete_item("images_table", children_only=True, slot=1)
        for r in rows[:MAX_ROWS]:
            fly = on_ui(st, lambda *_, i=r.index: self._fly(i))
            with dpg.table_row(parent="images_table"):
                # the row's index and name fly to the frame; the checkbox column stays free for its own clicks
                dpg.add_selectable(label=str(r.index), tag=f"images_row_{r.index}", callback=fly)
                dpg.add_selectable(label=r.name, tag=f"images_name_{r.index}", callback=fly)
                dpg.add_text("", tag=f"images_loss_{r.index}")
                dpg.add_text("", tag=f"images_psnr_{r.index}")
                dpg.add_checkbox(
                    tag=f"images_train_{r.index}", callback=on_ui(st, lambda *_, i=r.index: self._toggle(i))
                )
        self._update_values({r.index: r for r in rows}, st.images.compare_index)

    def _update_values(self, rows: dict[int, Any], selected: int | None) -> None:
        """Loss, PSNR, the train checkbox and the selection of the rows on screen, in place."""
        for i in self._order:
            r = rows.get(i)
            if r is None:
                continue
            dpg.set_value(f"images_loss_{i}", "-" if math.isnan(r.mse) else f"{r.mse:.5f}")
            dpg.set_value(f"images_psnr_{i}", "-" if math.isnan(r.psnr) else f"{r.psnr:.1f}")
            dpg.set_value(f"images_train_{i}", not r.excluded)
            dpg.set_value(f"images_row_{i}", i == selected)
            dpg.set_value(f"images_name_{i}", i == selected)

    def _pointer_over_table(self) -> bool:
        """Whether the mouse is over the table's rows now."""
        if not dpg.does_item_exist("images_box") or not dpg.is_item_visible("images_box"):
            return False
        (x0, y0), (x1, y1) = dpg.get_item_rect_min("images_box"), dpg.get_item_rect_max("images_box")
        mx, my = dpg.get_mouse_pos(local=False)
        return x0 <= mx < x1 and y0 <= my < y1

    def _fly(self, index: int) -> None:
        st = self.state
        if st.images.compare_index == index:  # a second click on the row hides the image again
            st.images.close_compare()
        else:
            st.images.fly_to_image(index)
        self._shown = None  # redraw the selection

    def _look(self) -> None:
        """The selected row's look (a status line asks for a row when none is selected)."""
        st = self.state
        if st.images.compare_index is None:
            st.status_line.set("click a frame's row first, then use its look", error=True)
            return
        st.images.use_look(st.images.compare_index)

    def _toggle(self, index: int) -> None:
        self.state.images.toggle_image_excluded(index)
        self._shown = None  # a refused change (the last frame in training) shows its checkbox as it was
