"""The ``zenbench`` command: a thin layer over functions a user can also call from Python.

Each command group lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func(args) -> int``. Errors a user can cause (bad architecture, unknown proxy, missing file)
print one line and exit 2; set ``ZENBENCH_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

from bench.store import software_versions

COMMAND_MODULES = [
    "bench.cli_gt",
    "bench.cli_bench",
    "bench.cli_score",
    "bench.cli_train",
    "bench.cli_search",
    "bench.cli_validate",
    "bench.cli_reproduce",
    "bench.cli_proxies",
]

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, LookupError, OSError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zenbench",
        description="Benchmark zero-shot NAS proxies: score architectures, rank them against a benchmark's "
        "ground truth (NAS-Bench-201, NAS-Bench-Macro, NAS-Bench-101, plug-ins), run the Zen-NAS search.",
    )
    parser.add_argument("--version", action="version", version=f"zenbench {software_versions()[0]}",
                        help="print the installed zenbench version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. SIGTERM (``kill``, a batch scheduler's pre-emption) stops it as Ctrl-C does: a scoring
    run records itself ``interrupted`` and keeps its rows, the exit status is 130."""
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("zenbench: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("ZENBENCH_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"zenbench: error: {message}", file=sys.stderr)
        return 2
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


if __name__ == "__main__":
    sys.exit(main())
