"""The pyglet viewport: shows the render worker's latest frame as a GL texture, handles mouse/keys/drops, HUD.

Only imported by ``ngp app`` (needs a display).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyglet
from pyglet.window import key, mouse

from .gl_overlay import GLOverlay
from .layout import Rect
from .overlays import MODE_LABELS, MODES, view_projection

HELP = (
    "drag: orbit | right/middle drag: pan | wheel: zoom | WASD Space C (+Shift): fly | [ ]: training cams | "
    "V: reset view | T: train | R: reset | G: ground truth | 1-7: modes | K: keyframe | Ctrl+Z: undo path edit | "
    "P: play path | Tab: HUD | "
    "F11: fullscreen"
)


INPUT_EVENTS = (
    "on_mouse_motion",
    "on_mouse_press",
    "on_mouse_release",
    "on_mouse_drag",
    "on_mouse_scroll",
    "on_mouse_enter",
    "on_key_press",
    "on_key_release",
    "on_text",
    "on_file_drop",
    "on_expose",
    "on_resize",
    "on_activate",
)


def pump_window_events(window: Any) -> None:
    """Dispatch ``window``'s pending events, drops included.

    ``Window.dispatch_events`` on X11 reads only the window's maskable events and ClientMessages; the data of an
    XDND drop arrives as a SelectionNotify, which only pyglet's platform event loop would dispatch, so without this
    ``on_file_drop`` never fires. Such events are taken here and handled by the window as that loop would."""
    window.dispatch_events()
    display, xid = getattr(window, "_x_display", None), getattr(window, "_window", None)
    if display is None or not xid:
        return  # not Xlib (Windows, macOS, Wayland-native): the platform's dispatch already covers drops
    from ctypes import byref

    from pyglet.libs.x11 import xlib

    event = xlib.XEvent()
    while xlib.XCheckTypedWindowEvent(display, xid, xlib.SelectionNotify, byref(event)):
        window.dispatch_platform_event(event)
    window.dispatch_pending_events()  # on_file_drop is queued while not inside dispatch_events: deliver it now


def accept_short_xdnd_enter(window: Any) -> None:
    """Make an Xlib ``window`` accept drags whose source lists its types in XdndEnter itself (at most three, flag bit
    0 clear): pyglet 2.1 fails on those with a TypeError. The long form (an XdndTypeList property) stays pyglet's."""
    original = getattr(window, "_event_drag_enter", None)
    atoms = getattr(window, "_xdnd_atoms", None)
    if original is None or atoms is None:
        return

    def drag_enter(ev: Any) -> None:
        words = ev.xclient.data.l
        if words[1] & 1:
            original(ev)
            return
        window._xdnd_source, window._xdnd_version = words[0], words[1] >> 24
        uri = atoms["text/uri-list"]
        window._xdnd_format = uri if uri in (words[2], words[3], words[4]) else None

    window._event_drag_enter = drag_enter  # looked up on the instance by the ClientMessage handler


def screen_size() -> tuple[int, int]:
    """The default screen's size in pixels (1920x1080 when it cannot be told)."""
    try:
        screen = pyglet.display.get_display().get_default_screen()
        return int(screen.width), int(screen.height)
    except Exception:  # noqa: BLE001 - an odd display server: assume a common screen
        return 1920, 1080


class Viewport:
    def __init__(self, app: Any, rect: Rect) -> None:
        self.app = app
        self.state = app.state
        self.worker = app.worker
        width, height = rect.width, rect.height
        self.window = pyglet.window.Window(
            width, height, caption="ngp-app viewport", resizable=True, file_drops=True, vsync=False
        )
        self.window.set_location(rect.x, rect.y)  # beside the panel (layout.py), or where it was last time
        accept_short_xdnd_enter(self.window)
        self.keys = key.KeyStateHandler()
        self.window.push_handlers(self.keys)
        self.inputs = 0  # input events seen (an idle app wakes on them)
        self.window.push_handlers(**{name: self._count_input for name in INPUT_EVENTS})
        self.window.push_handlers(self)
        self.texture: Any = None
        self.frame_seq = -1
        self.frame_generation = -1  # the scene generation of the frame in ``texture``
        self.frame_size = (0, 0)
        self.frames = 0
        self._frame_times: list[float] = []
        self.batch = pyglet.graphics.Batch()
        self.hud_bg = pyglet.shapes.Rectangle(0, 0, 10, 10, color=(0, 0, 0, 150), batch=self.batch)
        self.hud = pyglet.text.Label(
            "",
            font_size=11,
            x=12,
            y=height - 12,
            anchor_y="top",
            multiline=True,
            width=900,
            color=(255, 255, 255, 255),
            batch=self.batch,
        )
        self.status_bg = pyglet.shapes.Rectangle(0, 0, 10, 30, color=(0, 0, 0, 150), batch=self.batch)
        self.status = pyglet.text.Label("", font_size=11, x=12, y=10, color=(255, 255, 255, 255), batch=self.batch)
        self.overlay = GLOverlay()
        self.inset = CompareInset(self.batch)
        self.closed = False

    def rect(self) -> Rect:
        x, y = self.window.get_location()
        return Rect(int(x), int(y), int(self.window.width), int(self.window.height))

    # ------------------------------------------------------------------------------------------ events
    def on_close(self) -> bool:
        self.closed = True
        return True

    def on_mouse_drag(self, x: int, y: int, dx: int, dy: int, buttons: int, modifiers: int) -> None:
        if buttons & mouse.LEFT:
            self.state.camera.orbit(dx, dy)
        elif buttons & (mouse.RIGHT | mouse.MIDDLE):
            self.state.camera.pan(dx, dy)

    def on_mouse_scroll(self, x: int, y: int, scroll_x: float, scroll_y: float) -> None:
        self.state.camera.zoom(scroll_y)

    def on_file_drop(self, x: int, y: int, paths: list[str]) -> None:
        if paths:
            self.state.open_path_async(paths[0])

    def on_key_press(self, symbol: int, modifiers: int) -> bool | None:
        st = self.state
        if symbol == key.ESCAPE:  # leave fullscreen; never quit by accident
            if self.window.fullscreen:
                self.window.set_fullscreen(False)
            return True
        if symbol in (key.F11,) or (symbol == key.F and modifiers & key.MOD_CTRL):
            self.window.set_fullscreen(not self.window.fullscreen)
        elif symbol == key.Z and modifiers & key.MOD_CTRL:
            st.paths.undo_path_edit()
        elif symbol == key.T:
            st.toggle_training()
        elif symbol == key.R:
            st.reset_training()
        elif symbol == key.TAB:
            st.settings.show_hud = not st.settings.show_hud
        elif symbol in (key.V, key.HOME):
            st.camera.reset()
        elif symbol == key.BRACKETLEFT:
            st.snap_to_training_camera(-1)
        elif symbol == key.BRACKETRIGHT:
            st.snap_to_training_camera(+1)
        elif symbol == key.G:
            st.toggle_ground_truth()
        elif symbol == key.K:
            st.paths.add_keyframe()
        elif symbol == key.P:
            st.paths.toggle_preview()
        elif key._1 <= symbol <= key._1 + len(MODES) - 1:
            st.set_mode(MODES[symbol - key._1])
        return None  # let the key-state handler below see it too (WASD flying)

    def poll_input(self) -> bool:
        """Handle the window's waiting events now; returns whether any was input (mouse, keys, a drop, an expose or
        resize). Other X traffic (a swap's notifications) does not count: it would keep an idle app awake."""
        n = self.inputs
        pump_window_events(self.window)
        return self.inputs != n

    def _count_input(self, *_: Any) -> None:
        self.inputs += 1

    def flying(self) -> bool:
        """Whether a fly key (WASD, Space, C) is held: the view moves every frame."""
        return any(self.keys[k] for k in (key.W, key.A, key.S, key.D, key.SPACE, key.C))

    # ------------------------------------------------------------------------------------------ per frame
    def fly(self, dt: float) -> None:
        k = self.keys
        fwd = k[key.W] - k[key.S]
        right = k[key.D] - k[key.A]
        up = k[key.SPACE] - k[key.C]
        if fwd or right or up:
            speed = self.state.camera.distance * 0.8 * (4.0 if (k[key.LSHIFT] or k[key.RSHIFT]) else 1.0)
            self.state.camera.fly(fwd, right, up, speed * min(dt, 0.1))

    def upload(self) -> None:
        frame = self.worker.current()
        if frame is None:  # nothing rendered of this scene yet: no old picture stays up
            self.texture, self.frame_size, self.frame_seq = None, (0, 0), -1
            return
        if frame.seq == self.frame_seq:
            return
        img = frame.image
        h, w = img.shape[:2]
        data = pyglet.image.ImageData(w, h, "RGBA", img.tobytes(), pitch=-w * 4)  # opaque RGBA
        if self.texture is None or (w, h) != self.frame_size:
            self.texture = pyglet.image.Texture.create(w, h)
            self.frame_size = (w, h)
        self.texture.blit_into(data, 0, 0, 0)
        self.frame_seq, self.frame_generation = frame.seq, frame.generation

    def hud_text(self) -> str:
        st, frame = self.state, self.worker.current()
        t = st.trainer
        last = t.history[-1] if t is not None and t.history else None
        mode = "Ground truth" if st.settings.ground_truth else MODE_LABELS.get(st.settings.mode, st.settings.mode)
        if st.settings.ground_truth and st.current.scene is not None:  # a training image is shown, nothing is rendered
            i = st.settings.gt_index % st.current.scene.n_frames
            shown = f"training image {i} ({Path(st.current.scene.file_names[i]).name})"
        elif frame is not None:
            shown = (
                f"render {frame.image.shape[1]}x{frame.image.shape[0]} ({frame.scale * 100:.0f}%, {frame.ms:.0f} ms)"
            )
        elif st.current.generation > 0:
            shown = "render - (the first picture is on its way)"
        else:
            shown = "render -"
        lines = [
            f"{self.fps():.0f} fps UI | {self.worker.fps():.1f} renders/s | {shown}",
            f"step {st.step}  {'training' if st.runner.running else 'paused'}  "
            f"{st.runner.steps_per_second():.1f} steps/s",
            f"loss {last.loss:.5f}  PSNR {last.psnr:.2f} dB" if last else "loss -  PSNR -",
            f"{st.backend} on {st.device} | {st.config_name} | view: {mode}",
            HELP,
        ]
        jobs = st.jobs.active()
        if jobs:
            lines.insert(4, " | ".join(j.describe() for j in jobs))
        return "\n".join(lines)

    def fps(self) -> float:
        t = self._frame_times
        return (len(t) - 1) / max(t[-1] - t[0], 1e-9) if len(t) > 1 else 0.0

    def draw(self, save_to: str | Path | None = None) -> None:
        win = self.window
        win.switch_to()
        pump_window_events(win)
        if self.closed:
            return
        w, h = win.get_framebuffer_size()
        self.worker.size = (max(8, w), max(8, h))
        self.upload()
        win.clear()
        if self.texture is not None:
            self.texture.blit(0, 0, width=win.width, height=win.height)
        st = self.state
        # Overlays as GL geometry at window resolution, whatever the render's resolution (current camera).
        self.overlay.draw(st.view.overlay_layers(), view_projection(st.camera.camera(w, h)))
        self.inset.update(st.images.compare_image(), st.images.compare_caption(), win.width, win.height)
        if st.settings.show_hud:
            self.hud.text = self.hud_text()
            self.hud.y = win.height - 12
            self.hud_bg.x, self.hud_bg.width = 0, min(win.width, self.hud.content_width + 24)
            self.hud_bg.height = self.hud.content_height + 20
            self.hud_bg.y = win.height - self.hud_bg.height
        self.status.text = st.status
        alpha = st.status_line.alpha()  # errors fade out after a while
        self.status.color = (255, 110, 100, int(255 * alpha)) if st.status_is_error else (230, 230, 230, 255)
        self.status_bg.width = min(win.width, self.status.content_width + 24)
        self.status_bg.opacity = int(150 * alpha)
        self.status_bg.visible = bool(st.status)
        self.hud.visible = self.hud_bg.visible = st.settings.show_hud
        self.batch.draw()
        self.inset.draw()
        if save_to is not None:
            pyglet.image.get_buffer_manager().get_color_buffer().save(str(save_to))
        win.flip()
        self.frames += 1
        self._frame_times = self._frame_times[-60:] + [time.perf_counter()]

    def close(self) -> None:
        if self.window.context is not None:
            self.window.switch_to()
            self.overlay.delete()
            self.window.close()


class CompareInset:
    """A training image shown beside the render (bottom right, above the status line, at its own aspect ratio),
    captioned: the per-image table's row that the view flew to."""

    def __init__(self, batch: Any) -> None:
        self.texture: Any = None
        self._image_id = 0
        self.rect = (0, 0, 0, 0)  # x, y, width, height in window pixels (0 size: hidden)
        self.frame = pyglet.shapes.Rectangle(0, 0, 1, 1, color=(20, 20, 20, 220), batch=batch)
        self.caption = pyglet.text.Label(
            "", font_size=10, anchor_x="right", anchor_y="bottom", color=(255, 255, 255, 255), batch=batch
        )

    def update(self, image: Any, caption: str, win_w: int, win_h: int) -> None:
        """Show ``image`` ((h, w, 3) uint8, or None to hide) scaled into the window's bottom-right corner."""
        visible = image is not None
        self.frame.visible = self.caption.visible = visible
        if not visible:
            self.rect = (0, 0, 0, 0)
            return
        ih, iw = image.shape[:2]
        if id(image) != self._image_id or self.texture is None:
            data = pyglet.image.ImageData(iw, ih, "RGB", image.tobytes(), pitch=-iw * 3)
            self.texture = pyglet.image.Texture.create(iw, ih)
            self.texture.blit_into(data, 0, 0, 0)
            self._image_id = id(image)
        scale = min(0.4 * win_w / iw, 0.45 * win_h / ih)
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        x, y = win_w - w - 10, 40  # above the status line
        self.rect = (x, y, w, h)
        self.caption.text, self.caption.x, self.caption.y = caption, win_w - 12, y + h + 4
        left = min(x, win_w - 12 - int(self.caption.content_width)) - 3
        self.frame.x, self.frame.y, self.frame.width, self.frame.height = left, y - 3, win_w - 7 - left, h + 25

    def draw(self) -> None:
        """The image itself, over the frame (call after the batch)."""
        if self.texture is not None and self.rect[2] > 0:
            x, y, w, h = self.rect
            self.texture.blit(x, y, width=w, height=h)
