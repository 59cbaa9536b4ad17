"""A file manager's side of an XDND drag under X11: drags PATHS onto window WINDOW_ID at (X, Y) and drops them.

    python tests/xdnd_source.py [--inline-types] WINDOW_ID X Y PATH [PATH ...]

Speaks XDND version 5 as a drag source does: XdndEnter with ``text/uri-list``, XdndPosition, waits for the target's
XdndStatus, XdndDrop, then answers the target's selection request with the URIs. Prints one line per stage; exits 0
when the target accepted the drag and fetched the data, 1 otherwise. (XdndFinished is reported when it comes; pyglet
2.1 sends it to the root window, where a source never sees it.) The offered types are announced as most file managers
do (the XdndTypeList property, flag bit 0 set), or with ``--inline-types`` in the XdndEnter message itself, as a
source offering at most three types may. Needs only a display (no window
manager), so GUI tests under Xvfb send the same events a person's drag sends.
"""

from __future__ import annotations

import sys
import time
from ctypes import POINTER, byref, c_ubyte, c_ulong, cast
from pathlib import Path
from urllib.parse import quote

from pyglet.libs.x11 import xlib

XDND_VERSION = 5
XA_ATOM = 4


def uri_list(paths: list[str]) -> bytes:
    """``text/uri-list`` for ``paths``: absolute ``file://`` URIs, percent-encoded, CRLF-terminated."""
    return "".join(f"file://{quote(str(Path(p).resolve()))}\r\n" for p in paths).encode()


class DragSource:
    """One drag of a fixed URI list from a hidden 1x1 window of our own."""

    def __init__(self, target: int, data: bytes, inline_types: bool = False) -> None:
        self.dpy = xlib.XOpenDisplay(None)
        if not self.dpy:
            raise SystemExit("xdnd_source: cannot open the display")
        self.target, self.data, self.inline_types = target, data, inline_types
        self.window = xlib.XCreateSimpleWindow(self.dpy, xlib.XDefaultRootWindow(self.dpy), 0, 0, 1, 1, 0, 0, 0)
        self.uri_type = self.atom("text/uri-list")
        types = (c_ulong * 1)(self.uri_type)
        xlib.XChangeProperty(
            self.dpy,
            self.window,
            self.atom("XdndTypeList"),
            XA_ATOM,
            32,
            xlib.PropModeReplace,
            cast(types, POINTER(c_ubyte)),
            1,
        )
        xlib.XSetSelectionOwner(self.dpy, self.atom("XdndSelection"), self.window, xlib.CurrentTime)

    def atom(self, name: str) -> int:
        return xlib.XInternAtom(self.dpy, name.encode(), False)

    def message(self, kind: str, *longs: int) -> None:
        """Send a ClientMessage ``kind`` whose first data word is our window."""
        ev = xlib.XEvent()
        ev.xclient.type = xlib.ClientMessage
        ev.xclient.display = self.dpy
        ev.xclient.window = self.target
        ev.xclient.message_type = self.atom(kind)
        ev.xclient.format = 32
        for i, value in enumerate((self.window, *longs)):
            ev.xclient.data.l[i] = value
        xlib.XSendEvent(self.dpy, self.target, False, xlib.NoEventMask, byref(ev))
        xlib.XFlush(self.dpy)

    def answer(self, request: xlib.XSelectionRequestEvent) -> None:
        """Put the URI list on the requestor's property and tell it so (SelectionNotify)."""
        buf = (c_ubyte * len(self.data)).from_buffer_copy(self.data)
        xlib.XChangeProperty(
            self.dpy, request.requestor, request.property, request.target, 8, xlib.PropModeReplace, buf, len(self.data)
        )
        ev = xlib.XEvent()
        ev.xselection.type = xlib.SelectionNotify
        ev.xselection.display = self.dpy
        ev.xselection.requestor = request.requestor
        ev.xselection.selection = request.selection
        ev.xselection.target = request.target
        ev.xselection.property = request.property
        ev.xselection.time = request.time
        xlib.XSendEvent(self.dpy, request.requestor, False, xlib.NoEventMask, byref(ev))
        xlib.XFlush(self.dpy)

    def wait(self, want: str, timeout: float) -> int | None:
        """Handle events until ``want`` arrives ('status': the accepted flag; 'request': 1 once the data was served;
        'finished': 1); None on timeout."""
        end = time.monotonic() + timeout
        ev = xlib.XEvent()
        while time.monotonic() < end:
            while xlib.XPending(self.dpy):
                xlib.XNextEvent(self.dpy, byref(ev))
                if ev.type == xlib.SelectionRequest:
                    self.answer(ev.xselectionrequest)
                    if want == "request":
                        return 1
                elif ev.type == xlib.ClientMessage:
                    kind = ev.xclient.message_type
                    if want == "status" and kind == self.atom("XdndStatus"):
                        return int(ev.xclient.data.l[1]) & 1
                    if want == "finished" and kind == self.atom("XdndFinished"):
                        return 1
            time.sleep(0.005)
        return None

    def drop(self, x: int, y: int, timeout: float) -> bool:
        """The whole drag: enter, move to (x, y) in root coordinates, drop; True when the target took it."""
        if self.inline_types:  # up to three types in data.l[2:5], flag bit 0 clear
            self.message("XdndEnter", XDND_VERSION << 24, self.uri_type, 0, 0)
        else:  # the types in our XdndTypeList property
            self.message("XdndEnter", (XDND_VERSION << 24) | 1, 0, 0, 0)
        self.message("XdndPosition", 0, (x << 16) | y, xlib.CurrentTime, self.atom("XdndActionCopy"))
        accepted = self.wait("status", timeout)
        print(f"xdnd: status accepted={accepted}", flush=True)
        if not accepted:
            self.message("XdndLeave", 0, 0, 0, 0)
            return False
        self.message("XdndDrop", 0, xlib.CurrentTime, 0, 0)
        served = self.wait("request", timeout)
        print(f"xdnd: data served={served}", flush=True)
        print(f"xdnd: finished={self.wait('finished', 0.5)}", flush=True)
        return bool(served)

    def close(self) -> None:
        xlib.XDestroyWindow(self.dpy, self.window)
        xlib.XCloseDisplay(self.dpy)


def main(argv: list[str]) -> int:
    inline = "--inline-types" in argv
    argv = [a for a in argv if a != "--inline-types"]
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    target, x, y = int(argv[0], 0), int(argv[1]), int(argv[2])
    source = DragSource(target, uri_list(argv[3:]), inline_types=inline)
    try:
        return 0 if source.drop(x, y, timeout=30.0) else 1
    finally:
        source.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
