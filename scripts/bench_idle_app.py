"""The idle app's CPU use: the real app with no scene (or a trained snapshot, not training) left alone for a while,
measured as the process's CPU time (all threads) over wall time. Run under a display: ``xvfb-run -a python3
scripts/bench_idle_app.py [--seconds 10] [--scene PATH] [--loop tick]``; prints one JSON line."""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--scene", default=None, help="a scene or snapshot to open (not trained)")
    ap.add_argument("--loop", choices=("run", "tick"), default="run", help="tick: redraw every iteration (before)")
    args = ap.parse_args()
    from ngp_app.gui.app import App

    app = App(
        args.scene, config="small", device="cpu", backend="auto", size=(960, 540), train=False, remember_windows=False
    )
    try:
        app.pump(60.0, until=lambda: app.state.loader.loading is None)
        app.pump(0.5)
        # the view renders and sharpens first (busy, as it should be); idle starts when it is sharp
        settled = app.pump(600.0, until=lambda: not app.busy())
        c0, t0, f0 = time.process_time(), time.perf_counter(), app.frames
        if args.loop == "run":
            app.run(args.seconds)
        else:
            while time.perf_counter() - t0 < args.seconds:
                app.tick()
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "loop": args.loop,
                    "seconds": round(wall, 2),
                    "cpu_seconds": round(cpu, 3),
                    "cpu_percent_of_a_core": round(100 * cpu / wall, 2),
                    "frames": app.frames - f0,
                    "settled": settled,
                    "scene": args.scene,
                }
            )
        )
    finally:
        app.close()


if __name__ == "__main__":
    main()
