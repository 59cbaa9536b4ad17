"""Take docs/images/app.png: the app on a trained snapshot with training paused, a four-key camera path drawn in
the viewport and listed in the panel, and the view refined to full resolution. Run under a 1920x1080 display:

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/app_screenshot.py runs/demo/snapshot.npz shots/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ngp_app.gui.app import App


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot", help="a trained snapshot (e.g. from `make demo`)")
    ap.add_argument("out", help="folder for viewport.png, panel.png and screen.png")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--docs", action="store_true", help="copy screen.png to docs/images/app.png")
    args = ap.parse_args()
    app = App(args.snapshot, backend=args.backend, remember_windows=False, train=False)
    st = app.state
    try:
        if not app.pump(120, until=lambda: st.source() is not None):
            raise SystemExit(f"the snapshot did not open: {st.status}")
        app.pump(1.0)
        if st.runner.running:
            st.toggle_training()
        st.camera.zoom(1)
        for dx in (0, 157, 157, 157):  # a quarter turn (0.01 rad per pixel) between keys
            st.camera.orbit(dx, 0)
            st.paths.add_keyframe()
        st.camera.orbit(-60, 25)
        st.camera.zoom(-4)  # back off so the path and its frusta are in view
        w = app.worker
        if not app.pump(
            600, until=lambda: w.latest is not None and w.latest.scale >= 0.999 and w._last_key == w.view_key()
        ):
            raise SystemExit("the view did not refine to full resolution within 10 minutes")
        app.pump(2.0)
        shots = app.save_screenshots(args.out)
        print("\n".join(str(p) for p in shots))
        screen = Path(args.out) / "screen.png"
        if args.docs and screen.exists():
            shutil.copyfile(screen, Path(__file__).resolve().parent.parent / "docs" / "images" / "app.png")
    finally:
        app.close()


if __name__ == "__main__":
    main()
