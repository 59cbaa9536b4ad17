"""``ngp make-scene OUT``: the procedural demo scene in the NeRF-synthetic layout."""

from __future__ import annotations

import argparse
from typing import Any

from .. import cli_args as types


def register(sub: Any, options: Any) -> None:
    """Add the command's parser to ``sub`` (``options``: the shared option groups, ``commands.options``)."""
    m = sub.add_parser("make-scene", help="generate the procedural demo scene (NeRF-synthetic layout)")
    m.add_argument("out")
    m.add_argument("--width", type=types.image_side, default=200)
    m.add_argument("--height", type=types.image_side, default=200)
    m.add_argument("--n-train", type=types.positive_int, default=80)
    m.add_argument("--n-val", type=types.int_in(0), default=10)
    m.add_argument("--n-test", type=types.int_in(0), default=20)
    m.add_argument("--seed", type=types.seed, default=0)
    m.add_argument(
        "--supersample", type=types.int_in(1, 16), default=3, help="rays per pixel along each axis (anti-aliasing)"
    )
    m.add_argument(
        "--backdrop",
        action="store_true",
        help="an opaque noise-textured ground and dome around the object (features everywhere, for SfM)",
    )
    m.add_argument(
        "--backdrop-radius",
        type=types.float_in(5.0, 180.0),  # data.synthetic.FAR_BACKDROP_RADII (not imported: the CLI starts lean)
        default=None,
        metavar="R",
        help="a far backdrop: only a dome of radius R (world units; the cameras are 4 from the object), and an "
        "aabb_scale whose box holds it (implies --backdrop)",
    )
    m.add_argument(
        "--path",
        choices=["random", "orbit"],
        default="random",
        help="training views: random on the sphere, or one smooth turn around the object (like a video)",
    )
    m.add_argument(
        "--exposure-stops",
        type=types.float_in(0.0, 4.0),
        default=0.0,
        metavar="S",
        help="expose every image by its own change, uniform in -S..S stops (seeded; linear colour times 2^u), "
        "as auto-exposure does; the changes go to exposure_stops.json (default 0: none)",
    )
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import make_scene
    from ..outputs import check_output_dir

    check_output_dir(
        args.out,
        args.width * args.height * 4 * (args.n_train + args.n_val + args.n_test),
        "OUT",
        "the images and transforms_*.json",
    )
    out = make_scene(
        args.out,
        width=args.width,
        height=args.height,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        seed=args.seed,
        progress=not args.quiet,
        with_backdrop=args.backdrop,
        backdrop_radius=args.backdrop_radius,
        path=args.path,
        supersample=args.supersample,
        exposure_stops=args.exposure_stops,
    )
    print(str(out))
    return 0
