"""The ``ngp`` command line: import | train | eval | render | video | mesh | export | make-scene | bench (the GUI
lives behind ``ngp app``).

Every user error (bad scene, corrupt snapshot, wrong arguments) exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import signal
import sys
import time
import traceback
from collections.abc import Sequence

from . import cli_args as types
from .commands import register_commands
from .crash import report_internal_error
from .distributed import env_rank, launched
from .errors import NgpError, RankFailed
from .limits import is_out_of_memory
from .signals import Interrupted, signal_name, terminate_as_interrupt

log = logging.getLogger("ngp_app")
RANK_GRACE_S = 2.0  # how long a failing rank other than 0 waits before it exits
SHARDED_ONLY = "ngp %s runs as one process: under torchrun only ngp train, video and eval share their work over ranks"


def _setup_torch(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    p = types.NgpArgumentParser(
        prog="ngp",
        description="Instant-NGP NeRF: train, evaluate, render, export videos and meshes, and the desktop app.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--threads", type=types.threads, default=None, help="CPU threads for PyTorch")
    register_commands(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ngp`` console script: returns the exit status (0 ok, 1 internal error, 2 bad input or
    arguments, 128 + N after signal N)."""
    parser = build_parser()
    rank = env_rank() if launched() else 0  # under torchrun: rank 0 alone prints what every rank finds
    try:
        with contextlib.redirect_stderr(io.StringIO()) if rank else contextlib.nullcontext():
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed as one line (2)
        code = exc.code if isinstance(exc.code, int) else 2
    else:
        level = logging.DEBUG if args.verbose else logging.INFO if rank == 0 else logging.WARNING
        logging.basicConfig(level=level, format=f"[ngp{f' rank {rank}' if rank else ''}] %(message)s", force=True)
        code = dispatch(args, rank)
    if rank and code:  # rank 0 says why first: torchrun stops the other ranks as soon as one ends with an error
        time.sleep(RANK_GRACE_S)
    return code


def dispatch(args: argparse.Namespace, rank: int) -> int:
    """Run the parsed command; every error becomes one line on stderr (rank 0's alone for errors all ranks agree
    on, under ``torchrun``) and the exit status."""
    with terminate_as_interrupt():
        try:
            _setup_torch(args.threads)
            if launched() and not getattr(args, "sharded", False):
                if rank == 0:
                    print(f"ngp: error: {SHARDED_ONLY % args.command}", file=sys.stderr)
                return 2
            return int(args.func(args) or 0)
        except RankFailed as exc:  # agreed by every rank: rank 0 prints it
            if exc.shown:
                print(exc.line, file=sys.stderr)
            return exc.code
        except NgpError as exc:
            print(f"ngp: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:  # an output path that can't be written, a full disk, ...
            print(f"ngp: error: {exc.strerror or one_line(exc)}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Interrupted
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            print(f"ngp: interrupted ({signal_name(signum)})", file=sys.stderr)
            return 128 + signum
        except Exception as exc:
            if is_out_of_memory(exc):
                print("ngp: error: out of memory (try a smaller size, resolution or batch)", file=sys.stderr)
                return 2
            if args.verbose:
                traceback.print_exc()
            print(report_internal_error(exc), file=sys.stderr)
            return 1


def one_line(exc: BaseException) -> str:
    """An error message folded onto one line."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
