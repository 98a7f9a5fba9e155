"""The ``spykehw`` command line: wiring and reporting only (DESIGN.md).

Each subcommand lives in :mod:`spykehw.commands` as a module with ``register(subparsers)``
that adds its parser and sets ``func`` (called with the parsed arguments, returning an exit
status). :func:`main` imports only the module of the command it runs (``spykehw --help`` none):
a command module imports what its command needs (the golden model, Dask, Amaranth) at its top.

Every way a command ends is decided here, once: input errors (:class:`SpykehwError`, and the
operating system's refusals such as a missing or unreadable file) are one line and exit status
2 (``--debug`` shows the traceback); SIGINT and SIGTERM end with status 130 / 143; and every run
folder still open is marked ``finished``, ``failed`` (with the line printed) or ``interrupted``
in its manifest.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator

from . import __version__
from .argtypes import OneLineParser
from .cli_flags import add_common_flags, run_command
from .commands import HELP
from .golden.errors import SpykehwError
from .output import close_open_folders

__all__ = ["main", "build_parser"]

# Subcommand modules in the order --help lists them.
COMMANDS = tuple(HELP)


def build_parser(commands: Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser, with ``commands`` in full (their modules imported) and the others as their
    line in the listing only."""
    parser = OneLineParser(
        prog="spykehw",
        description="SpykeFlow in hardware: float reference, integer golden model, RTL and co-simulation.")
    parser.add_argument("--version", action="version", version=f"spykehw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    full = set(commands)
    for name in COMMANDS:
        if name in full:
            importlib.import_module(f"spykehw.commands.{name}").register(sub)
        else:
            sub.add_parser(name, help=HELP[name])
    add_common_flags(parser)        # --quiet, --json, --debug on every subcommand
    return parser


def _command(argv: list[str]) -> list[str]:
    """The command ``argv`` runs, as a list (empty for ``--help``, ``--version`` or a typo):
    the first word that is not an option (the top level's options take no value)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return [word] if word in COMMANDS else []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (a job killed by a scheduler
    or by ``timeout`` is marked interrupted, its cluster closed)."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _error_line(e: BaseException) -> str:
    """One line: ``FILE: reason`` for the operating system's errors, else the first line."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        with _sigterm_interrupts():
            status = run_command(args)
    except KeyboardInterrupt as e:
        how = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        close_open_folders("interrupted", how)
        print(f"spykehw {args.command}: interrupted ({how})", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        close_open_folders("finished")
        sys.stderr.close()
        return 0
    except (SpykehwError, OSError) as e:
        # Input errors (bad config, bad file, a path that is not what it should be) end with one
        # clear line, not a traceback.
        line = _error_line(e)
        close_open_folders("failed", line)
        if getattr(args, "debug", False):
            raise
        print(f"spykehw {args.command}: error: {line}", file=sys.stderr)
        return 2
    except BaseException as e:
        close_open_folders("failed", f"{type(e).__name__}: {_error_line(e)}")
        raise
    close_open_folders("finished" if status == 0 else "failed",
                       None if status == 0 else f"exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
