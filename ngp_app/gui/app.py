"""The desktop app's main loop: one thread pumps the pyglet viewport and the DearPyGui panel; training and
rendering run on their own threads (see ``state``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import NgpError
from .render_worker import Phase, RenderWorker
from .session import Session

ACTIVE_SECONDS = 1.0  # after an input or a change, the windows redraw at full rate at least this long
IDLE_REDRAW_SECONDS = 2.0  # an idle app redraws this rarely (nothing changes; input wakes it at once)
WAIT_SLICE_SECONDS = 0.04  # an idle app looks for input this often (the viewport's events; the panel's wake it)
NO_DISPLAY = (
    "no display for the app (DISPLAY is not set); run it under a virtual one with "
    "`xvfb-run -a ngp app ...`, or use the CLI (`ngp train`, `ngp render`) on servers"
)


def display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class App:
    """Both windows plus the state and render worker. ``tick()`` runs one iteration of the main loop."""

    def __init__(
        self,
        path: str | Path | None = None,
        config: str = "small",
        device: str | None = None,
        backend: str = "auto",
        downscale: int = 1,
        max_size: int | None = None,
        size: tuple[int, int] | None = None,
        train: bool = True,
        remember_windows: bool = True,
    ) -> None:
        """``size``: the viewport's size (None: the remembered one, else 1920x1080), shrunk to fit beside the panel.
        ``remember_windows``: place the windows where they were last time and remember them on close."""
        from .layout import choose_layout, load_positions
        from .panel import Panel
        from .viewport import Viewport, screen_size

        self.state = Session(config=config, device=device, backend=backend, downscale=downscale, max_size=max_size)
        if path is not None:
            self.state.open_path_async(path, start=train)  # the windows open while it loads
        self.remember_windows = remember_windows
        panel_rect, view_rect = choose_layout(*screen_size(), size, load_positions() if remember_windows else None)
        self.worker = RenderWorker(self.state)
        self.worker.size = (view_rect.width, view_rect.height)
        self.viewport = Viewport(self, view_rect)
        self.panel = Panel(self, panel_rect)
        self.worker.start()
        self.started = time.perf_counter()
        self.frames = 0
        self._last = time.perf_counter()
        self._last_error: tuple[type, str] | None = None
        self._rects: dict[str, Any] = {}  # the windows' last known places, kept while they are open
        self._rects_at = 0.0

    @property
    def running(self) -> bool:
        return not (self.viewport.closed or self.panel.closed)

    def tick(self, save_viewport: str | Path | None = None, save_panel: str | Path | None = None) -> None:
        """One iteration of the main loop. An unexpected exception (a key handler's, a frame's) is shown as one
        line (``crash.report_internal_error``: the traceback goes to a log file) and the app keeps running."""
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        try:
            self.viewport.fly(dt)
            self.state.apply_pending()
            self.state.paths.tick_preview(dt)  # a playing camera-path preview moves the view
            self.state.images.refresh_image_table()  # per-image losses, about once a second
            self.state.poll_errors()
            self.state.status_line.expire()
            self.viewport.draw(save_viewport)
            self.panel.draw(save_panel)
            if self.remember_windows and now - self._rects_at > 1.0:
                self._rects_at = now
                self._rects.update(self.window_rects())
        except Exception as exc:  # noqa: BLE001 - the app survives its own bugs
            signature = (type(exc), str(exc))
            if signature != self._last_error:  # the same failure every frame is logged once
                self._last_error = signature
                self.state.status_line.report_error(exc, "app: main loop")
        self.frames += 1
        # Leave the CPU to the training/render threads when the UI runs far above its needs.
        spare = 1.0 / 120.0 - (time.perf_counter() - now)
        if spare > 0:
            time.sleep(spare)

    def busy(self) -> bool:
        """Whether something changes on screen without input: training, a load or job (or a row still listed), work
        posted to the UI thread, a playing path, a render in progress or not yet shown, a fading error, flying."""
        st, w = self.state, self.worker
        shown = w.current()  # a frame of an earlier scene is never shown: it is not waiting to be
        return (
            st.runner.running
            or st.loader.loading is not None
            or bool(st.jobs.visible())
            or st.has_pending()
            or st.paths.path_editor.playing
            or w.phase is not Phase.IDLE
            or (shown is not None and shown.seq != self.viewport.frame_seq)
            or st.status_is_error
            or self.viewport.flying()
        )

    def wait_for_input(self, timeout: float) -> bool:
        """Idle: sleep until input reaches either window, something gets busy, or ``timeout`` passes (then one redraw
        keeps the windows fresh). Returns whether input or work came."""
        end = time.perf_counter() + timeout
        while self.running and time.perf_counter() < end:
            if self.viewport.poll_input() or self.busy():
                return True
            if self.panel.wait_events(min(WAIT_SLICE_SECONDS, max(0.0, end - time.perf_counter()))):
                return True
        return False

    def run(self, seconds: float | None = None) -> None:
        """The main loop until a window closes (or ``seconds`` pass): full rate while there is input or change, and
        while idle no redraw but every ``IDLE_REDRAW_SECONDS``, so the CPU goes to training and other programs."""
        end = None if seconds is None else time.perf_counter() + seconds
        active_until = 0.0
        while self.running and (end is None or time.perf_counter() < end):
            self.tick()
            now = time.perf_counter()
            if self.busy():
                active_until = now + ACTIVE_SECONDS
            elif now >= active_until:
                wait = IDLE_REDRAW_SECONDS if end is None else min(IDLE_REDRAW_SECONDS, max(0.0, end - now))
                if self.wait_for_input(wait):
                    active_until = time.perf_counter() + ACTIVE_SECONDS

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Run the loop for up to ``seconds`` (or until ``until()``); returns whether ``until`` became true."""
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and self.running:
            self.tick()
            if until is not None and until():
                return True
        return until() if until is not None else True

    def save_screenshots(self, directory: str | Path) -> list[Path]:
        """PNG captures of both windows as they are on screen (plus ``screen.png``, the whole screen, where
        ImageMagick's ``import`` is installed: docs/images/app.png is one)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        vp, panel = d / "viewport.png", d / "panel.png"
        self.tick(save_viewport=vp, save_panel=panel)
        for _ in range(3):  # DearPyGui writes its frame buffer during the next frames
            self.tick()
            if panel.exists():
                break
        out = []
        for p, title in ((vp, "ngp-app viewport"), (panel, "ngp-app controls")):
            if not p.exists():
                grab_window(title, p)
            if p.exists():
                out.append(p)
        if grab_window("root", d / "screen.png"):
            out.append(d / "screen.png")
        return out

    def summary(self) -> dict[str, Any]:
        st = self.state
        wall = time.perf_counter() - self.started
        last = st.trainer.history[-1] if st.trainer is not None and st.trainer.history else None
        frame = self.worker.latest
        return {
            "steps": st.step,
            "frames": self.frames,
            "fps": round(self.frames / max(wall, 1e-9), 2),
            "renders": self.worker.frames,
            "render_fps": round(self.worker.frames / max(wall, 1e-9), 2),
            "render_size": list(frame.image.shape[1::-1]) if frame is not None else None,
            "seconds": round(wall, 2),
            "loss": last.loss if last else None,
            "psnr": last.psnr if last else None,
            "backend": st.backend,
            "device": str(st.device),
            "scene": st.current.meta.get("path"),
            "status": st.status,
        }

    def window_rects(self) -> dict[str, Any]:
        """Where the windows that are still open are now (a closed one is left out)."""
        rects = {}
        if not self.panel.closed:
            rects["panel"] = self.panel.rect()
        if not self.viewport.closed:
            rects["viewport"] = self.viewport.rect()
        return rects

    def close(self) -> None:
        """Remember where the windows were (a window the user closed: where it was last seen), close both windows
        at once, then stop the render thread (it may finish a render pass first), training and the jobs."""
        if self.remember_windows:
            from .layout import save_positions

            rects = {**self._rects, **self.window_rects()}
            if rects:
                save_positions(rects)
        self.panel.close()  # the windows go first: nothing looks frozen while the threads wind down
        self.viewport.close()
        self.worker.stop()
        self.state.close()


def grab_window(title: str, path: Path) -> bool:
    """Capture of one X window by title (``root``: the whole screen) with ImageMagick's ``import``."""
    if not shutil.which("import") or not shutil.which("xwininfo"):
        return False
    try:
        args = ["-root"] if title == "root" else ["-name", title]
        info = subprocess.run(["xwininfo", *args], capture_output=True, text=True, timeout=10).stdout
        wid = next(line.split()[3] for line in info.splitlines() if "Window id:" in line)
        subprocess.run(["import", "-window", wid, str(path)], capture_output=True, timeout=30, check=True)
    except (StopIteration, subprocess.SubprocessError, OSError, IndexError):
        return False
    return path.exists()


def run_app(
    path: str | Path | None = None,
    exit_after: float | None = None,
    screenshot_dir: str | Path | None = None,
    config: str = "small",
    device: str | None = None,
    backend: str = "auto",
    downscale: int = 1,
    max_size: int | None = None,
    size: tuple[int, int] | None = None,
) -> int:
    """Run the app until a window closes (or ``exit_after`` seconds). Returns an exit status; no display or no
    toolkit raises NgpError (``ngp`` prints it as its one ``ngp: error:`` line, exit 2)."""
    if not display_available():
        raise NgpError(NO_DISPLAY)
    try:
        import dearpygui  # noqa: F401
        import pyglet  # noqa: F401
    except ImportError as exc:
        raise NgpError(
            f"the app needs {exc.name}, which is not installed: pip install 'ngp-app[app]' (pyglet, dearpygui)"
        ) from None
    app = App(path, config=config, device=device, backend=backend, downscale=downscale, max_size=max_size, size=size)
    try:
        app.run(exit_after)
        shots = app.save_screenshots(screenshot_dir) if screenshot_dir else []
        summary = app.summary()
        summary["screenshots"] = [str(p) for p in shots]
    finally:
        app.close()
    print(json.dumps(summary))
    return 0
