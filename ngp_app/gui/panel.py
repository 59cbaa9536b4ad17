"""The DearPyGui control panel, rendered frame by frame from the app's main loop (same process as the viewport).

On Linux DearPyGui draws through its own GLFW/OpenGL window while pyglet makes its context current, so before
every panel frame we make DearPyGui's GLFW context current again, via the GLFW functions its extension exports.
"""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from ..backends import BACKENDS
from ..data.importer.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .file_dialog import FileDialog
from .jobs import format_seconds
from .layout import PANEL_WIDTH, Rect
from .loading import frames_said
from .overlays import MODE_LABELS, MODE_OVERLAYS, MODES, OVERLAY_LABELS, OVERLAYS
from .panel_images import ImagePanel
from .panel_path import PathPanel
from .settings import CONFIGS
from .widgets import fixed_lines, int_inputs, on_ui

LABEL_TO_MODE = {v: k for k, v in MODE_LABELS.items()}
PLOT_POINTS = 2000
OPEN_LABEL = "Open scene, snapshot, photos or video..."
#: The panel's choice of training-image size (the loader's ``downscale``).
LOAD_SIZES = {"full size": 1, "1/2": 2, "1/4": 4, "1/8": 8}
NO_SCENE = "no scene: drop a scene, a photo folder or a video on the viewport, or use Open scene..."
SCENE_LINES = 6  # the scene line: source, frames, size and box, the sparse points, the import's verdict (two lines)
BOX_SIZES = [str(1 << i) for i in range(8)]  # the aabb_scale choices: powers of two 1..128
STATUS_LINES = 2  # the status line's height in lines (the whole text in its tooltip and, for errors, the dialog)
JOB_ROWS = 2  # job rows the strip shows without scrolling
STRIP_HEIGHT = 17 * STATUS_LINES + 44 * JOB_ROWS + 8
TRAIN_LINES = 4
PLOTS_HEIGHT = 2 * 130 + 12


def _glfw() -> Any:
    """DearPyGui's exported GLFW functions (None where it does not use GLFW, e.g. DirectX on Windows)."""
    if sys.platform == "win32":
        return None
    try:
        import dearpygui._dearpygui as core

        lib = ctypes.CDLL(core.__file__)
        lib.glfwGetCurrentContext.restype = ctypes.c_void_p
        lib.glfwMakeContextCurrent.argtypes = [ctypes.c_void_p]
        lib.glfwWaitEventsTimeout.argtypes = [ctypes.c_double]
        lib.glfwHideWindow.argtypes = [ctypes.c_void_p]
        return lib
    except (OSError, AttributeError):  # pragma: no cover - other builds
        return None


EXPORT_EXTENSIONS = {
    "snapshot": (".npz",),
    "screenshot": (".png",),
    "mesh": (".ply", ".obj"),
    "pointcloud": (".ply",),
    "cameras": (".json",),
    "video": (".mp4", ".gif"),
    "path": (".json",),
    "job": (".json",),
}
FOLDER_KINDS = ("bundle",)  # exports into a folder


def load_size_label(downscale: int) -> str:
    """The *images at* choice for a loader ``downscale`` (one the panel does not list is shown as 1/N)."""
    return next((label for label, n in LOAD_SIZES.items() if n == downscale), f"1/{downscale}")


def size_said(downscale: int) -> str:
    """How the scene line says the images' load size: nothing at full size, else `` (loaded at 1/N)``."""
    return "" if int(downscale) <= 1 else f" (loaded at 1/{int(downscale)})"


class Panel:
    def __init__(self, app: Any, rect: Rect | None = None) -> None:
        rect = rect or Rect(0, 0, PANEL_WIDTH, 1000)
        self.app = app
        self.state = app.state
        self._shown_status: tuple[str, bool] | None = None
        self._history_len = -1
        self._plots_shown: bool | None = None
        self._generation = -1
        self._job_rows: dict[int, str] = {}
        self._export_dir: Path | None = None
        self.closed = False
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)  # callbacks run in ``draw``, on the UI thread
        dpg.create_viewport(title="ngp-app controls", width=rect.width, height=rect.height, x_pos=rect.x, y_pos=rect.y)
        self._build()
        dpg.setup_dearpygui()
        dpg.show_viewport()
        self.glfw = _glfw()
        self.glfw_window = self.glfw.glfwGetCurrentContext() if self.glfw is not None else None
        dpg.set_primary_window("main", True)
        self.refresh(force=True)

    # ------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        st = self.state
        self.path_panel, self.image_panel = PathPanel(self), ImagePanel(self)
        self.files = FileDialog(lambda fn: on_ui(st, fn))
        with dpg.window(tag="main", label="ngp-app", no_scrollbar=True):
            # a strip of fixed height on top: the status line and the jobs stay in sight, and as they change
            # nothing under them moves (a click lands where the person aimed)
            with dpg.child_window(tag="panel_strip", height=STRIP_HEIGHT, border=False, no_scrollbar=True):
                dpg.add_text(fixed_lines("", STATUS_LINES), tag="status")
                with dpg.tooltip("status"):
                    dpg.add_text("", tag="status_full", wrap=PANEL_WIDTH - 30)
                # one row per background job (what, progress bar with ETA, Cancel); more than fit scroll here
                with dpg.child_window(tag="jobs", height=-1, border=False):
                    dpg.add_text("no background jobs", tag="jobs_none", color=(150, 150, 150, 255))
            dpg.add_separator()
            with dpg.child_window(tag="panel_body", border=False):  # the rest of the window; scrolls
                with dpg.collapsing_header(label="Scene", default_open=True):
                    dpg.add_text(fixed_lines("", SCENE_LINES), tag="scene_info")
                    dpg.add_button(
                        label=OPEN_LABEL,
                        callback=on_ui(st, lambda *_: self.open_dialog()),
                    )
                    with dpg.group(horizontal=True):
                        dpg.add_text("images at")
                        dpg.add_combo(
                            list(LOAD_SIZES),
                            default_value=load_size_label(st.loader.downscale),
                            width=90,
                            tag="load_size",
                            callback=on_ui(st, lambda _s, a: setattr(st.loader, "downscale", LOAD_SIZES[a])),
                        )
                        dpg.add_button(
                            label="Reload at this size",
                            tag="scene_reload",
                            callback=on_ui(st, lambda *_: st.reload_scene()),
                        )
                    with dpg.tooltip("load_size"):
                        dpg.add_text(
                            "the size training images are loaded at, for the next scene opened or dropped\n"
                            "(1/2: a quarter of the pixels; large phone images train and load faster)"
                        )
                    with dpg.tooltip("scene_reload"):
                        dpg.add_text("open the current scene again at this size (training starts again)")
                    with dpg.group(horizontal=True):
                        dpg.add_text("box (aabb_scale)")
                        dpg.add_combo(BOX_SIZES, default_value="1", width=60, tag="box_size")
                        dpg.add_button(
                            label="Reload in this box",
                            tag="scene_rebox",
                            callback=on_ui(st, lambda *_: st.reload_scene(int(dpg.get_value("box_size")))),
                        )
                    with dpg.tooltip("scene_rebox"):
                        dpg.add_text(
                            "train the scene in a box of this side (rays march to its edge; the sparse-points view\n"
                            "draws it, and the points outside it in magenta). A scene ngp import made keeps its\n"
                            "poses and SfM points and gets the box written into its transforms.json; another\n"
                            "scene keeps its file and gets the box for this session. Training starts again."
                        )
                with dpg.collapsing_header(label="Training", default_open=True):
                    with dpg.group(horizontal=True):
                        dpg.add_button(
                            label="Start",
                            tag="train_toggle",
                            width=90,
                            callback=on_ui(st, lambda *_: st.toggle_training()),
                        )
                        dpg.add_button(label="Reset", width=90, callback=on_ui(st, lambda *_: st.reset_training()))
                        dpg.add_combo(
                            list(CONFIGS),
                            default_value=st.config_name,
                            width=80,
                            tag="config",
                            callback=on_ui(st, lambda s, a: st.set_config(a)),
                        )
                        dpg.add_combo(
                            list(BACKENDS),
                            default_value=st.backend_request,
                            width=80,
                            tag="backend",
                            callback=on_ui(st, lambda s, a: st.set_backend(a)),
                        )
                    dpg.add_checkbox(
                        label="optimize camera poses (extrinsics)",
                        tag="extrinsics",
                        callback=on_ui(st, lambda _s, a: st.set_optimize_extrinsics(a)),
                    )
                    dpg.add_text(fixed_lines("", TRAIN_LINES), tag="train_info")
                    # the plots' room is kept before training too (a note in it), so nothing under it moves
                    with dpg.child_window(height=PLOTS_HEIGHT, border=False, no_scrollbar=True, tag="plots"):
                        dpg.add_text("loss and PSNR plots appear once training runs", tag="plots_note")
                        for name, label in (("loss", "loss"), ("psnr", "PSNR (dB)")):
                            # no_inputs: the mouse wheel scrolls the panel instead of zooming the plot
                            with dpg.plot(
                                label=label, height=130, width=-1, no_mouse_pos=True, no_inputs=True, tag=f"{name}_plot"
                            ):
                                dpg.add_plot_axis(dpg.mvXAxis, label="step", tag=f"{name}_x")
                                with dpg.plot_axis(dpg.mvYAxis, tag=f"{name}_y"):
                                    dpg.add_line_series([0.0], [0.0], tag=f"{name}_series")
                with dpg.collapsing_header(label="Rendering", default_open=True):
                    s = st.settings
                    dpg.add_combo(
                        [MODE_LABELS[m] for m in MODES],
                        default_value=MODE_LABELS[s.mode],
                        tag="mode",
                        label="mode",
                        callback=on_ui(st, lambda _s, a: self._set("mode", LABEL_TO_MODE[a])),
                    )
                    dpg.add_slider_float(
                        label="target fps",
                        min_value=1.0,
                        max_value=120.0,
                        default_value=float(s.target_fps),
                        tag="target_fps",
                        callback=on_ui(st, lambda _s, a: self._set("target_fps", a)),
                    )
                    dpg.add_slider_float(
                        label="resolution scale",
                        min_value=0.05,
                        max_value=1.0,
                        default_value=float(s.resolution_scale),
                        tag="resolution_scale",
                        callback=on_ui(st, lambda _s, a: self._set("resolution_scale", a)),
                    )
                    dpg.add_color_edit(
                        default_value=[255, 255, 255, 255],
                        no_alpha=True,
                        label="background",
                        tag="background",
                        callback=on_ui(st, lambda _s, a: self._set_background(a)),
                    )
                    dpg.add_slider_float(
                        label="fov (deg)",
                        min_value=10.0,
                        max_value=120.0,
                        default_value=float(st.camera.fov_deg),
                        tag="fov",
                        callback=on_ui(st, lambda _s, a: st.camera.set_fov(a)),
                    )
                    dpg.add_slider_floatx(
                        label="crop min",
                        size=3,
                        min_value=-8.0,
                        max_value=9.0,
                        tag="crop_min",
                        default_value=[float(v) for v in s.crop_min],
                        callback=on_ui(st, lambda *_: self._set_crop()),
                    )
                    dpg.add_slider_floatx(
                        label="crop max",
                        size=3,
                        min_value=-8.0,
                        max_value=9.0,
                        tag="crop_max",
                        default_value=[float(v) for v in s.crop_max],
                        callback=on_ui(st, lambda *_: self._set_crop()),
                    )
                    with dpg.group(horizontal=True):
                        dpg.add_checkbox(
                            label="HUD",
                            tag="hud",
                            default_value=s.show_hud,
                            callback=on_ui(st, lambda _s, a: self._set("show_hud", a)),
                        )
                        dpg.add_button(label="Reset view", callback=on_ui(st, lambda *_: st.camera.reset()))
                        dpg.add_button(label="Ground truth", callback=on_ui(st, lambda *_: st.toggle_ground_truth()))
                    with dpg.group(horizontal=True):
                        dpg.add_text("overlays:")
                        for name in OVERLAYS:
                            dpg.add_checkbox(
                                label=OVERLAY_LABELS[name],
                                tag=f"overlay_{name}",
                                callback=on_ui(st, lambda _s, a, n=name: self._toggle_overlay(n, bool(a))),
                            )
                    dpg.add_text(fixed_lines("", 2), tag="render_info")
                with dpg.collapsing_header(label="Export", default_open=True):
                    self._path_field(
                        "snapshot",
                        "snap_path",
                        "snapshot",
                        ("Save snapshot", st.exports.save_snapshot),
                        ("Load snapshot", st.open_path_async),
                    )
                    dpg.add_checkbox(
                        label="with optimizer state (exact resume, ~2x larger)",
                        tag="snap_optimizer",
                        callback=on_ui(st, lambda _s, a: setattr(st.exports, "save_optimizer_state", bool(a))),
                    )
                    self._path_field("screenshot", "shot_path", "screenshot")
                    with dpg.group(horizontal=True):
                        int_inputs(("w", "shot_w", 1920, 1), ("h", "shot_h", 1080, 1))
                        dpg.add_checkbox(label="alpha", tag="shot_alpha")
                        dpg.add_checkbox(label="overlays", tag="shot_overlays", default_value=False)
                    with dpg.tooltip("shot_overlays"):
                        dpg.add_text("draw the path, cameras, box and points shown in the viewport into the PNG")
                    dpg.add_button(
                        label="Save screenshot PNG", tag="shot_save", callback=on_ui(st, lambda *_: self._screenshot())
                    )
                with dpg.collapsing_header(label="Mesh", default_open=False, tag="mesh_header"):
                    self._path_field("mesh", "mesh_out", "mesh")
                    with dpg.group(horizontal=True):
                        int_inputs(("resolution", "mesh_res", 256, 8))
                        dpg.add_input_float(
                            label="threshold", default_value=2.5, width=90, tag="mesh_threshold", format="%.2f"
                        )
                    dpg.add_combo(["nerf", "ngp"], default_value="nerf", label="coordinates", tag="mesh_space")
                    dpg.add_button(
                        label="Export mesh (.ply / .obj) of the crop box", callback=on_ui(st, lambda *_: self._mesh())
                    )
                with dpg.collapsing_header(
                    label="Deliverables (GLB + fly-through)", default_open=False, tag="bundle_header"
                ):
                    self._path_field("folder", "bundle_out", "bundle")
                    with dpg.group(horizontal=True):
                        int_inputs(("faces", "bundle_faces", 200_000, 4), ("frames", "bundle_frames", 120, 1))
                    with dpg.group(horizontal=True):
                        int_inputs(("w", "bundle_w", 640, 2), ("h", "bundle_h", 360, 2))
                    dpg.add_button(
                        label="Export model.glb + flythrough.mp4",
                        tag="bundle_export",
                        callback=on_ui(st, lambda *_: self._bundle()),
                    )
                    with dpg.tooltip("bundle_export"):
                        dpg.add_text("the crop box's surface as a binary glTF: floaters removed, decimated to the face")
                        dpg.add_text("budget, vertex colours; then an orbit fly-through and its camera path (ngp video")
                        dpg.add_text("--path renders it again). Mesh resolution and threshold: the Mesh section's")
                with dpg.collapsing_header(label="Point cloud & cameras", default_open=False, tag="cloud_header"):
                    self._path_field("point cloud", "cloud_out", "pointcloud")
                    with dpg.group(horizontal=True):
                        int_inputs(("points", "cloud_points", 1_000_000, 1))
                        dpg.add_checkbox(label="keep outliers", tag="cloud_outliers")
                    dpg.add_combo(["nerf", "ngp"], default_value="nerf", label="coordinates", tag="cloud_space")
                    dpg.add_button(
                        label="Export point cloud (.ply) of the crop box",
                        tag="cloud_export",
                        callback=on_ui(st, lambda *_: self._pointcloud()),
                    )
                    with dpg.tooltip("cloud_export"):
                        dpg.add_text("rays from the training cameras; a point where a ray's opacity passes 0.5")
                    self._path_field(
                        "cameras",
                        "cameras_out",
                        "cameras",
                        ("Export cameras (transforms.json)", st.exports.export_cameras),
                    )
                with dpg.collapsing_header(label="Camera path & video", default_open=True):
                    self.path_panel.build()
                with dpg.collapsing_header(
                    label="Training images (per-image loss)", default_open=False, tag="images_header"
                ):
                    self.image_panel.build()
        with dpg.theme(tag="error_theme"):
            with dpg.theme_component(dpg.mvText):
                dpg.add_theme_color(dpg.mvThemeCol_Text, (255, 110, 100, 255))
        with dpg.window(label="Error", modal=True, show=False, tag="error_modal", width=420, no_resize=True):
            dpg.add_text("", tag="error_text", wrap=400)
            dpg.add_button(
                label="OK", width=80, tag="error_ok", callback=lambda *_: dpg.configure_item("error_modal", show=False)
            )

    def _path_field(self, label: str, tag: str, kind: str, *buttons: tuple[str, Callable[[Path], Any]]) -> None:
        """A path field (absolute; a relative path typed goes under the export folder), a "..." button that browses
        for it, and buttons under it that call their function with the path (tagged ``<tag>:<their label>``)."""
        st = self.state
        with dpg.group(horizontal=True):
            dpg.add_input_text(
                tag=tag, width=PANEL_WIDTH - 150, default_value=str(st.exports.default_export_path(kind))
            )
            dpg.add_button(label="...", callback=on_ui(st, lambda *_: self.browse(tag, kind)))
            dpg.add_text(label)
        if buttons:
            with dpg.group(horizontal=True):
                for text, fn in buttons:
                    dpg.add_button(
                        label=text, tag=f"{tag}:{text}", callback=on_ui(st, lambda *_, f=fn: f(self.path_value(tag)))
                    )

    def path_value(self, tag: str) -> Path:
        return self.state.exports.export_path(dpg.get_value(tag))

    def browse(self, tag: str, kind: str) -> None:
        """Choose a file (a folder for the bundle) for a path field (the field gets it; nothing is written yet)."""
        current = self.path_value(tag)
        if kind in FOLDER_KINDS:  # the dialog opens in the folder itself: Choose takes it
            folder = current if current.is_dir() else current.parent
            folder = folder if folder.is_dir() else self.state.exports.export_dir().parent
            name, what = "", "folder"
        else:
            folder = current.parent if current.parent.is_dir() else self.state.exports.export_dir().parent
            name, what = current.name, "file"
        self.files.show(
            f"Choose the {kind} {what}",
            folder,
            lambda p: dpg.set_value(tag, str(p)),
            EXPORT_EXTENSIONS.get(kind, ()),
            action="Choose",
            name=name,
        )

    def open_dialog(self) -> None:
        """The Open dialog: a scene folder (open it, or type its path), a transforms.json, or a snapshot."""
        meta_path = self.state.current.meta.get("path")
        start = Path(meta_path).absolute().parent if meta_path else Path.cwd()
        self.files.show(
            "Open a scene, snapshot, photo folder or video",
            start,
            self.state.open_path_async,
            (".json", ".npz", *VIDEO_SUFFIXES, *IMAGE_SUFFIXES),  # photos listed: a photo folder does not look empty
            hint="A scene folder (go into it, then Open), a transforms.json, a snapshot (.npz, or the folder "
            "holding snapshot.npz), or your own capture: a folder of photos (go into it, then Open) or a video, "
            "which is imported first (SfM estimates the cameras, in the background), then trained. "
            "Typing a path and Enter works too.",
        )

    def rect(self) -> Rect:
        x, y = dpg.get_viewport_pos()
        return Rect(int(x), int(y), int(dpg.get_viewport_width()), int(dpg.get_viewport_height()))

    # ------------------------------------------------------------------------------------------ callbacks
    def _set(self, name: str, value: Any) -> None:
        if name == "mode":
            self.state.set_mode(value)
        else:
            setattr(self.state.settings, name, value)

    def _toggle_overlay(self, name: str, on: bool) -> None:
        s = self.state.settings
        if not on and name in MODE_OVERLAYS.get(s.mode, ()):  # the mode draws this overlay: leave the mode too
            self._set("mode", MODES[0])
        s.toggle_overlay(name, on)

    def _set_background(self, value: list[float]) -> None:
        rgb = [float(v) for v in value[:3]]
        if max(rgb) > 1.0:  # DearPyGui versions differ: 0-255 or 0-1
            rgb = [v / 255.0 for v in rgb]
        self.state.settings.background = tuple(min(1.0, max(0.0, v)) for v in rgb)  # type: ignore[assignment]

    def _set_crop(self) -> None:
        lo = [float(v) for v in dpg.get_value("crop_min")[:3]]
        hi = [float(v) for v in dpg.get_value("crop_max")[:3]]
        self.state.settings.crop_min, self.state.settings.crop_max = tuple(lo), tuple(hi)

    def _mesh(self) -> None:
        self.state.exports.export_mesh(
            self.path_value("mesh_out"),
            int(dpg.get_value("mesh_res")),
            float(dpg.get_value("mesh_threshold")),
            dpg.get_value("mesh_space"),
        )

    def _bundle(self) -> None:
        self.state.exports.export_bundle(
            self.path_value("bundle_out"),
            int(dpg.get_value("bundle_faces")),
            int(dpg.get_value("bundle_frames")),
            int(dpg.get_value("bundle_w")),
            int(dpg.get_value("bundle_h")),
            int(dpg.get_value("mesh_res")),
            float(dpg.get_value("mesh_threshold")),
        )

    def _pointcloud(self) -> None:
        self.state.exports.export_pointcloud(
            self.path_value("cloud_out"),
            int(dpg.get_value("cloud_points")),
            bool(dpg.get_value("cloud_outliers")),
            dpg.get_value("cloud_space"),
        )

    def _screenshot(self) -> None:
        st = self.state
        path, w, h = self.path_value("shot_path"), int(dpg.get_value("shot_w")), int(dpg.get_value("shot_h"))
        alpha = bool(dpg.get_value("shot_alpha"))
        st.exports.screenshot(path, w, h, alpha, overlays=bool(dpg.get_value("shot_overlays")))

    # ------------------------------------------------------------------------------------------ per frame
    def refresh_jobs(self) -> None:
        """One row per running (or just finished) background job: its line, a progress bar, and Cancel."""
        jobs = self.state.jobs.visible()
        ids = {j.id for j in jobs}
        for jid in [k for k in self._job_rows if k not in ids]:
            dpg.delete_item(self._job_rows.pop(jid))
        dpg.configure_item("jobs_none", show=not jobs)
        for j in jobs:
            row = self._job_rows.get(j.id)
            if row is None:
                row = self._job_rows[j.id] = f"job_{j.id}"
                with dpg.group(parent="jobs", tag=row):
                    dpg.add_text("", tag=f"{row}_text")
                    with dpg.group(horizontal=True):
                        dpg.add_progress_bar(tag=f"{row}_bar", width=340)
                        dpg.add_button(label="Cancel", tag=f"{row}_cancel", callback=lambda *_, job=j: job.cancel())
            dpg.set_value(f"{row}_text", fixed_lines(j.describe(), 1))
            if j.fraction is None and j.active:  # unknown: a sweeping bar says it is alive
                value, overlay = (time.perf_counter() * 0.5) % 1.0, "working..."
            else:
                value = 1.0 if j.fraction is None else j.fraction
                eta = j.eta()
                overlay = f"{value * 100:.0f}%" + (f"  ETA {format_seconds(eta)}" if eta is not None else "")
                overlay = overlay if j.active else j.state
            dpg.set_value(f"{row}_bar", value)
            dpg.configure_item(f"{row}_bar", overlay=overlay)
            dpg.configure_item(f"{row}_cancel", show=j.active and not j.cancel_requested)

    def refresh(self, force: bool = False) -> None:
        st = self.state
        self.refresh_jobs()
        export_dir = st.exports.export_dir()
        if export_dir != self._export_dir:  # another scene: exports default to its ngp-exports folder
            self._export_dir = export_dir
            for tag, kind in (
                ("snap_path", "snapshot"),
                ("shot_path", "screenshot"),
                ("mesh_out", "mesh"),
                ("cloud_out", "pointcloud"),
                ("bundle_out", "bundle"),
                ("cameras_out", "cameras"),
                ("keys_path", "path"),
                ("video_out", "video"),
                ("job_out", "job"),
            ):
                dpg.set_value(tag, str(st.exports.default_export_path(kind)))
        meta = st.current.meta
        if meta:
            src = (
                "snapshot " + str(st.current.snapshot_path)
                if st.current.scene is None and st.current.snapshot_path
                else meta.get("path", "")
            )
            dpg.set_value(
                "scene_info",
                fixed_lines(
                    f"{src}\n{frames_said(meta)}\n{meta.get('width', 0)}x{meta.get('height', 0)} pixels"
                    f"{size_said(meta.get('downscale', 1))}, aabb_scale {meta.get('aabb_scale', 1):g}"
                    f"\n{st.current.points_said}\n{st.current.import_verdict}",
                    SCENE_LINES,
                ),
            )
        else:
            dpg.set_value(
                "scene_info",
                fixed_lines(NO_SCENE, SCENE_LINES),
            )
        dpg.configure_item("scene_reload", enabled=st.current.scene is not None)
        dpg.configure_item("scene_rebox", enabled=st.current.scene is not None and st.current.snapshot_path is None)
        t = st.trainer
        dpg.configure_item("train_toggle", label="Stop" if st.runner.running else "Start")
        last = t.history[-1] if t is not None and t.history else None
        if last is not None:
            dpg.set_value(
                "train_info",
                fixed_lines(
                    f"step {st.step}   {st.runner.steps_per_second():.2f} steps/s   {st.backend} on {st.device}\n"
                    f"loss {last.loss:.5f}   PSNR {last.psnr:.2f} dB   lr {last.lr:.2e}\n"
                    f"rays/batch {last.n_rays}   samples/ray {last.n_samples / max(last.n_rays, 1):.1f}\n"
                    f"samples/batch {last.n_samples} of {last.n_marched} marched",
                    TRAIN_LINES,
                ),
            )
        else:
            dpg.set_value("train_info", fixed_lines(f"step {st.step}   {st.backend} on {st.device}", TRAIN_LINES))
        has_history = t is not None and bool(t.history)
        if has_history != self._plots_shown or force:  # no empty axes before training (or for an opened snapshot)
            self._plots_shown = has_history
            for name in ("loss", "psnr"):
                dpg.configure_item(f"{name}_plot", show=has_history)
            dpg.configure_item("plots_note", show=not has_history)
        if t is not None and (len(t.history) != self._history_len or force):
            self._history_len = len(t.history)
            hist = t.history[-PLOT_POINTS:]
            xs = [float(h.step) for h in hist] or [0.0]
            for name, ys in (("loss", [h.loss for h in hist]), ("psnr", [h.psnr for h in hist])):
                dpg.set_value(f"{name}_series", [xs, ys or [0.0]])
                dpg.fit_axis_data(f"{name}_x")
                dpg.fit_axis_data(f"{name}_y")
        s = st.settings
        if self._generation != st.current.generation:  # a new scene: crop sliders span its box
            self._generation = st.current.generation
            dpg.set_value("box_size", str(int(float(st.current.meta.get("aabb_scale", 1)))))
            lo, hi = min(s.crop_min) - 0.01, max(s.crop_max) + 0.01
            for tag in ("crop_min", "crop_max"):
                dpg.configure_item(tag, min_value=float(lo), max_value=float(hi))
            force = True
        dpg.set_value("crop_min", [float(v) for v in s.crop_min]) if force or not dpg.is_item_active(
            "crop_min"
        ) else None
        dpg.set_value("crop_max", [float(v) for v in s.crop_max]) if force or not dpg.is_item_active(
            "crop_max"
        ) else None
        if not dpg.is_item_active("fov"):
            dpg.set_value("fov", float(st.camera.fov_deg))
        dpg.set_value("mode", "Ground truth" if s.ground_truth else MODE_LABELS.get(s.mode, s.mode))
        dpg.set_value("hud", s.show_hud)
        drawn = st.view.overlay_names(s)  # the mode's own overlays show as on
        for name in OVERLAYS:
            dpg.set_value(f"overlay_{name}", name in drawn)
        dpg.set_value("config", st.config_name)  # a failed switch falls back: show what is in use
        dpg.set_value("backend", st.backend_request)
        dpg.set_value("extrinsics", bool(t is not None and t.optimize_extrinsics))
        frame = self.app.worker.current()
        if s.ground_truth and st.current.scene is not None:  # a training image is shown: nothing is rendered
            dpg.set_value("render_info", fixed_lines("showing training image (G): nothing is rendered", 2))
        elif frame is None:
            dpg.set_value("render_info", fixed_lines("render - (the first picture is on its way)", 2))
        else:
            h, w = frame.image.shape[:2]
            dpg.set_value(
                "render_info",
                fixed_lines(
                    f"render {w}x{h} ({frame.scale * 100:.0f}% of the window), {frame.ms:.0f} ms"
                    f"\ndynamic scale {st.dynres.scale:.3f}",
                    2,
                ),
            )
        self.path_panel.refresh()
        self.image_panel.refresh()
        status = (st.status, st.status_is_error)
        if status != self._shown_status:
            self._shown_status = status
            dpg.set_value("status", fixed_lines(st.status, STATUS_LINES))
            dpg.set_value("status_full", st.status)
            dpg.bind_item_theme("status", "error_theme" if st.status_is_error else 0)
            if st.status_is_error:
                dpg.set_value("error_text", st.status)
                dpg.configure_item("error_modal", show=True)

    def draw(self, save_to: str | Path | None = None) -> None:
        if not dpg.is_dearpygui_running():
            self.closed = True
            return
        if self.glfw is not None and self.glfw_window:
            self.glfw.glfwMakeContextCurrent(self.glfw_window)
        self.refresh()
        if save_to is not None:
            dpg.output_frame_buffer(file=str(save_to))
        dpg.render_dearpygui_frame()
        dpg.run_callbacks(dpg.get_callback_queue())  # the callbacks of this frame's clicks, here on the UI thread

    def wait_events(self, timeout: float) -> bool:
        """Sleep until the panel's window gets an event (mouse, keys, expose) or ``timeout`` seconds pass; returns
        whether an event came. The events go to DearPyGui's queue and are handled in the next frame."""
        if self.glfw is None or not self.glfw_window:
            time.sleep(timeout)
            return False
        t0 = time.perf_counter()
        self.glfw.glfwWaitEventsTimeout(float(timeout))
        return time.perf_counter() - t0 < 0.9 * timeout

    def close(self) -> None:
        if self.glfw is not None and self.glfw_window:
            self.glfw.glfwMakeContextCurrent(self.glfw_window)
            self.glfw.glfwHideWindow(self.glfw_window)  # DearPyGui keeps its window until the process ends
        dpg.destroy_context()
