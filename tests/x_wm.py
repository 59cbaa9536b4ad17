"""What a window manager sends when a person clicks a window's close button: WM_PROTOCOLS / WM_DELETE_WINDOW.

    python tests/x_wm.py close WINDOW_ID

Under Xvfb there is no window manager; GUI tests use this to close the app's windows as a person would.
"""

from __future__ import annotations

import sys
from ctypes import byref

from pyglet.libs.x11 import xlib


def close(window: int) -> None:
    """Ask ``window``'s client to close it (ICCCM WM_DELETE_WINDOW), as a window manager's close button does."""
    dpy = xlib.XOpenDisplay(None)
    if not dpy:
        raise SystemExit("x_wm: cannot open the display")
    try:
        ev = xlib.XEvent()
        ev.xclient.type = xlib.ClientMessage
        ev.xclient.display = dpy
        ev.xclient.window = window
        ev.xclient.message_type = xlib.XInternAtom(dpy, b"WM_PROTOCOLS", False)
        ev.xclient.format = 32
        ev.xclient.data.l[0] = xlib.XInternAtom(dpy, b"WM_DELETE_WINDOW", False)
        ev.xclient.data.l[1] = xlib.CurrentTime
        xlib.XSendEvent(dpy, window, False, xlib.NoEventMask, byref(ev))
        xlib.XFlush(dpy)
    finally:
        xlib.XCloseDisplay(dpy)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "close":
        raise SystemExit(__doc__)
    close(int(sys.argv[2], 0))
