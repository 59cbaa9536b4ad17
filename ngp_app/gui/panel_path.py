"""The panel's camera-path editor and video section (DearPyGui): the keyframe list and its edits, per-key time and
field of view, duration / fps / loop, preview play-pause-scrub, path files, the video render (path, size, quality,
samples, camera, pause training) whose progress, ETA and Cancel show in the panel's job rows, and render jobs.

Every widget calls the session's ``paths`` actions on the UI thread (``widgets.on_ui``); ``refresh`` pushes the
editor's state back into the widgets when it changed (``PathEditor.version``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from ..cli_args import MAX_SPP
from .path_editor import QUALITIES
from .widgets import VIDEO_CAMERAS, VIDEO_PATHS, fixed_lines, int_inputs, on_ui

PATH_LABELS = {v: k for k, v in VIDEO_PATHS.items()}


def key_label(index: int, time: float, fov: float) -> str:
    """One line of the keyframe list (its number first: a click is parsed back from it)."""
    return f"{index + 1:>3}   {time:7.2f} s   fov {fov:5.1f}"


class PathPanel:
    """Builds the section inside the panel's window and keeps it in step with ``state.paths.path_editor``."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.state = panel.state
        self._version = -1

    def build(self) -> None:
        st, ed = self.state, self.state.paths.path_editor

        def ui(fn: Any) -> Any:
            return on_ui(st, fn)

        dpg.add_text(fixed_lines("", 1), tag="path_info")
        dpg.add_listbox([], tag="path_keys", num_items=6, width=-1, callback=ui(lambda _s, a: self._select(a)))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Add view (K)", tag="path_add", callback=ui(lambda *_: st.paths.add_keyframe()))
            dpg.add_button(
                label="Insert after", tag="path_insert", callback=ui(lambda *_: st.paths.edit_path("insert_view"))
            )
            dpg.add_button(
                label="Split", tag="path_split", callback=ui(lambda *_: st.paths.edit_path("split_selected"))
            )
            dpg.add_button(
                label="Replace", tag="path_replace", callback=ui(lambda *_: st.paths.edit_path("replace_selected"))
            )
            dpg.add_button(
                label="Delete", tag="path_delete", callback=ui(lambda *_: st.paths.edit_path("delete_selected"))
            )
        with dpg.group(horizontal=True):
            dpg.add_button(label="Up", tag="path_up", callback=ui(lambda *_: st.paths.edit_path("move_selected", -1)))
            dpg.add_button(
                label="Down", tag="path_down", callback=ui(lambda *_: st.paths.edit_path("move_selected", 1))
            )
            dpg.add_button(label="Go to key", tag="path_jump", callback=ui(lambda *_: st.paths.edit_path("jump")))
            dpg.add_button(label="Clear", tag="path_clear", callback=ui(lambda *_: st.paths.clear_keyframes()))
            dpg.add_button(label="Undo", tag="path_undo", callback=ui(lambda *_: st.paths.undo_path_edit()))
        with dpg.group(horizontal=True):
            dpg.add_input_float(
                label="time (s)",
                tag="path_key_time",
                width=90,
                step=0,
                format="%.2f",
                on_enter=True,
                callback=ui(lambda _s, a: self._selected_do("set_time", a)),
            )
            dpg.add_input_float(
                label="fov (deg)",
                tag="path_key_fov",
                width=90,
                step=0,
                format="%.1f",
                on_enter=True,
                callback=ui(lambda _s, a: self._selected_do("set_fov", a)),
            )
        with dpg.group(horizontal=True):
            dpg.add_input_float(
                label="duration (s)",
                tag="path_duration",
                width=90,
                step=0,
                format="%.2f",
                on_enter=True,
                callback=ui(lambda _s, a: st.paths.edit_path("set_duration", a)),
            )
            dpg.add_input_float(
                label="fps",
                tag="path_fps",
                width=70,
                step=0,
                format="%.1f",
                on_enter=True,
                default_value=ed.path.fps,
                callback=ui(lambda _s, a: st.paths.edit_path("set_fps", a)),
            )
            dpg.add_checkbox(
                label="loop", tag="path_loop", callback=ui(lambda _s, a: st.paths.edit_path("set_loop", a))
            )
        with dpg.group(horizontal=True):
            dpg.add_button(
                label="Even times", tag="path_even_times", callback=ui(lambda *_: st.paths.edit_path("retime", False))
            )
            dpg.add_button(
                label="Even speed", tag="path_even_speed", callback=ui(lambda *_: st.paths.edit_path("retime", True))
            )
            dpg.add_checkbox(
                label="show path",
                tag="path_show",
                default_value=ed.show,
                callback=ui(lambda _s, a: setattr(ed, "show", bool(a))),
            )
        with dpg.group(horizontal=True):
            dpg.add_button(label="Play", tag="path_play", width=60, callback=ui(lambda *_: st.paths.toggle_preview()))
            dpg.add_slider_float(
                tag="path_scrub",
                min_value=0.0,
                max_value=1.0,
                width=-1,
                format="%.2f s",
                callback=ui(lambda _s, a: st.paths.edit_path("scrub", a)),
            )
        self.panel._path_field(
            "path file",
            "keys_path",
            "path",
            ("Save path", st.paths.save_keyframes),
            ("Load / import path", st.paths.load_keyframes),
        )
        dpg.add_separator()
        v = ed.video
        with dpg.group(horizontal=True):
            dpg.add_combo(
                list(VIDEO_PATHS),
                default_value=PATH_LABELS[v.path],
                label="video of",
                width=150,
                tag="video_path",
                callback=ui(lambda _s, a: setattr(v, "path", VIDEO_PATHS[a])),
            )
            int_inputs(("frames", "video_frames", v.frames, 1))
        dpg.set_item_callback("video_frames", ui(lambda _s, a: setattr(v, "frames", max(1, int(a)))))
        self.panel._path_field("video", "video_out", "video")
        with dpg.group(horizontal=True):
            int_inputs(("w", "video_w", v.width, 2), ("h", "video_h", v.height, 2))
            dpg.add_combo(
                list(QUALITIES),
                default_value=v.quality,
                label="quality",
                width=70,
                tag="video_quality",
                callback=ui(lambda _s, a: setattr(v, "quality", a)),
            )
        dpg.set_item_callback("video_w", ui(lambda _s, a: self._size(w=a)))
        dpg.set_item_callback("video_h", ui(lambda _s, a: self._size(h=a)))
        int_inputs(("samples per pixel", "video_spp", v.spp, 1))
        dpg.set_item_callback("video_spp", ui(lambda _s, a: setattr(v, "spp", min(max(1, int(a)), MAX_SPP))))
        with dpg.tooltip("video_spp"):
            dpg.add_text("jittered rays per pixel, averaged: sharper edges and texture, slower (1 for previews)")
        dpg.add_combo(
            list(VIDEO_CAMERAS),
            default_value=next(k for k, m in VIDEO_CAMERAS.items() if m == v.camera_model),
            label="camera",
            width=200,
            tag="video_camera",
            callback=ui(lambda _s, a: self._camera(VIDEO_CAMERAS[a])),
        )
        with dpg.tooltip("video_camera"):
            dpg.add_text("360 degrees: an equirectangular panorama around each path camera (2:1 frames; players see a")
            dpg.add_text("spherical video)")
        dpg.add_checkbox(
            label="pause training while rendering",
            tag="video_pause",
            callback=ui(lambda _s, a: setattr(v, "pause_training", bool(a))),
        )
        dpg.add_button(label="Render video", tag="video_render", callback=ui(lambda *_: self.render()))
        dpg.add_text(fixed_lines("", 2), tag="video_last")
        self.panel._path_field(
            "render job",
            "job_out",
            "job",
            ("Save render job (ngp video --job)", lambda p: self.state.paths.save_render_job(p, self.video_out())),
        )
        with dpg.tooltip("job_out:Save render job (ngp video --job)"):
            dpg.add_text("this video's settings and the model in a file, to render elsewhere or on several GPUs:")
            dpg.add_text("ngp video --job render_job.json (torchrun ... -m ngp_app video --job ...)")

    # ------------------------------------------------------------------------------------------ callbacks
    def _select(self, label: str) -> None:
        try:
            index = int(str(label).split()[0]) - 1
        except (ValueError, IndexError):
            return
        self.state.paths.edit_path("jump", index)  # selecting a key shows it

    def _selected_do(self, operation: str, value: float) -> None:
        i = self.state.paths.path_editor.selected
        if i is None:
            self.state.status_line.set("select a keyframe first", error=True)
            return
        self.state.paths.edit_path(operation, i, float(value))

    def _size(self, w: int | None = None, h: int | None = None) -> None:
        v = self.state.paths.path_editor.video
        v.width = max(2, int(w)) if w is not None else v.width
        v.height = max(2, int(h)) if h is not None else v.height
        if w is not None and v.camera_model == "equirectangular":  # a 360-degree video stays 2:1
            v.height = max(2, v.width // 2)
            dpg.set_value("video_h", v.height)

    def _camera(self, model: str) -> None:
        """Choose the video's camera; a 360-degree one makes the size 2:1 (the height follows the width)."""
        v = self.state.paths.path_editor.video
        v.camera_model = model
        if model == "equirectangular" and v.width != 2 * v.height:
            v.height = max(2, v.width // 2)
            dpg.set_value("video_h", v.height)

    def video_out(self) -> Path:
        """The video file the section names."""
        return self.panel.path_value("video_out")

    def render(self) -> Any:
        """Render the video with the section's settings (the job row above shows progress, ETA and Cancel)."""
        return self.state.paths.render_video(self.video_out())

    # ------------------------------------------------------------------------------------------ per frame
    def refresh(self) -> None:
        ed = self.state.paths.path_editor
        p = ed.path
        if ed.version != self._version:
            self._version = ed.version
            items = [key_label(i, k.time, k.fov_y_deg) for i, k in enumerate(p.keys)]
            dpg.configure_item("path_keys", items=items)
            chosen = ed.selected is not None and ed.selected < len(items)
            if chosen:
                dpg.set_value("path_keys", items[ed.selected])
                key = p.keys[ed.selected]
                dpg.set_value("path_key_time", float(key.time))
                dpg.set_value("path_key_fov", float(key.fov_y_deg))
            else:  # no key selected (none left after Clear): the key's fields are empty and greyed out
                dpg.set_value("path_key_time", 0.0)
                dpg.set_value("path_key_fov", 0.0)
            for tag in ("path_key_time", "path_key_fov"):
                dpg.configure_item(tag, enabled=chosen)
            dpg.configure_item("path_undo", enabled=bool(ed.history))
            dpg.set_value("path_duration", float(p.end_time))
            dpg.set_value("path_fps", float(p.fps))
            dpg.set_value("path_loop", bool(p.loop))
            dpg.configure_item("path_scrub", max_value=max(float(p.end_time), 1e-3))
            dpg.set_value("video_w", int(ed.video.width))
            dpg.set_value("video_h", int(ed.video.height))
            if len(p.keys) >= 2:
                info = f"{len(p.keys)} keyframes, {p.end_time:.2f} s at {p.fps:g} fps = {p.n_frames()} frames" + (
                    " (loop)" if p.loop else ""
                )
            elif p.keys:
                info = "1 keyframe: add another view (K) to make a path"
            else:
                info = "no keyframes: move the view, then Add view (or K in the viewport)"
            dpg.set_value("path_info", fixed_lines(info, 1))
        dpg.configure_item("path_play", label="Pause" if ed.playing else "Play")
        # a keyframed path has its own frame count: the field stays in place, greyed out
        dpg.configure_item("video_frames", enabled=ed.video.path != "keyframes")
        if not dpg.is_item_active("path_scrub"):
            dpg.set_value("path_scrub", float(ed.play_time))
        last = ed.video.last_output
        dpg.set_value("video_last", fixed_lines(f"last video: {last}" if last is not None else "", 2))
