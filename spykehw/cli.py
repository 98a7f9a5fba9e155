"""The ``spykehw`` command line: wiring and reporting only (DESIGN.md).

Each subcommand lives in :mod:`spykehw.commands` as a module with ``register(subparsers)``
that adds its parser and sets ``func`` (called with the parsed arguments, returning an exit
status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .cli_flags import add_common_flags, run_command
from .golden.errors import SpykehwError

__all__ = ["main", "build_parser"]

# Subcommand modules in the order --help lists them.
COMMANDS = ("run", "predict", "verify", "data", "bench", "quant", "vectors", "verilog", "cosim", "fpga", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spykehw",
        description="SpykeFlow in hardware: float reference, integer golden model, RTL and co-simulation.")
    parser.add_argument("--version", action="version", version=f"spykehw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"spykehw.commands.{name}").register(sub)
    add_common_flags(parser)        # --quiet, --json, --debug on every subcommand
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except (SpykehwError, FileNotFoundError, PermissionError) as e:
        # Input errors (bad config, bad file) end with one clear line, not a traceback.
        if getattr(args, "debug", False):
            raise
        print(f"spykehw {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
