"""Flags every ``spykehw`` subcommand has: ``--quiet``, ``--json``, ``--debug``.

A subcommand that defines one of them itself keeps its own meaning (``spykehw run --quiet``: no
progress lines; ``spykehw predict --json``: the predictions as JSON). Where a subcommand does not,
:func:`add_common_flags` adds it with one meaning for all:

``--quiet``
    nothing on stdout (the files are still written; errors still go to stderr);
``--json``
    instead of the text report, one JSON document on stdout: ``{"command", "status", "output"
    (the text report's lines), "manifest" (the ``manifest.json`` the command wrote under
    ``--out``, if any), "results" (that manifest's results)}``;
``--debug``
    tracebacks for input errors instead of one line.

:func:`run_command` calls the subcommand with these applied.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["COMMON_FLAGS", "leaf_parsers", "add_common_flags", "run_command"]

COMMON_FLAGS = {
    "--quiet": "print nothing on stdout (files are still written, errors still reported)",
    "--json": "print one JSON document on stdout (the command, its exit status, the report's lines, "
              "and the results of the manifest.json it wrote) instead of the text report",
    "--debug": "show tracebacks for input errors",
}


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser without subcommands under ``parser``, with its command path."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaf_parsers(sub, path + (name,))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Give every leaf subcommand the :data:`COMMON_FLAGS` it lacks (see the module docstring)."""
    for path, leaf in leaf_parsers(parser):
        added = []
        for flag, text in COMMON_FLAGS.items():
            if flag not in _options(leaf):
                leaf.add_argument(flag, action="store_true", help=text)
                added.append(flag)
        leaf.set_defaults(_common_flags=tuple(added), _command_path=" ".join(path))


def _manifest(args: argparse.Namespace, since: float) -> Path | None:
    """The manifest.json the command wrote: under ``--out`` itself or in a new run folder there."""
    out = getattr(args, "out", None)
    if out is None or not Path(out).is_dir():
        return None
    candidates = [Path(out) / "manifest.json", *Path(out).glob("*/manifest.json")]
    fresh = [p for p in candidates if p.is_file() and p.stat().st_mtime >= since - 1]
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def run_command(args: argparse.Namespace) -> int:
    """Call ``args.func(args)`` with the generic ``--quiet``/``--json`` applied."""
    generic = getattr(args, "_common_flags", ())
    as_json = "--json" in generic and args.json
    quiet = "--quiet" in generic and args.quiet
    if not (as_json or quiet):
        return int(args.func(args) or 0)
    since = time.time()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = int(args.func(args) or 0)
    if as_json:
        manifest = _manifest(args, since)
        doc: dict[str, Any] = {"command": args._command_path, "status": status,
                               "output": buf.getvalue().splitlines(),
                               "manifest": None if manifest is None else str(manifest), "results": None}
        if manifest is not None:
            doc["results"] = json.loads(manifest.read_text()).get("results")
        print(json.dumps(doc, indent=1, default=str))
    return status
