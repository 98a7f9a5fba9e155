"""Validated argument types for every ``spykehw`` subcommand's parser.

Why one module: a numeric flag that argparse accepts as a bare ``int`` lets ``--train-limit 0``
mean "everything", ``--train-limit -5`` mean "all but five" and ``--seed -5`` crash numpy deep in
a loader. Every numeric and path flag therefore goes through one of these types, so a bad value
is refused while the command line is parsed, with one line naming the flag and the value
(``tests/test_cli_args.py`` checks that no parser uses a bare ``int`` or ``float``).

argparse turns the :class:`argparse.ArgumentTypeError` raised here into
``spykehw CMD: error: argument --flag: <message>`` (see :class:`OneLineParser`).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Callable, NoReturn

from .golden.names import SAFE_NAME, check_safe_name

__all__ = [
    "OneLineParser", "int_range", "float_range", "count", "count_list", "nonneg_int", "seed", "workers",
    "positive_float", "existing_file", "existing_dir", "output_dir", "output_file", "verilog_identifier",
    "SEED_MAX", "SAFE_NAME", "check_safe_name", "VERILOG_IDENTIFIER",
]

SEED_MAX = 2**32 - 1
"""numpy's ``default_rng``/``RandomState`` accept seeds 0 .. 2**32 - 1 (legacy) -- the range every
seeded command promises."""

VERILOG_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""A Verilog module name that is also a safe file name (no ``$``, no escaped identifiers)."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (the usage block is in ``--help``).

    Subparsers made by ``add_subparsers`` inherit the class, so every subcommand behaves alike;
    the exit status is 2, as argparse's.
    """

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]`` (either bound may be open)."""

    def parse(text: str) -> int:
        v = _int(text)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if hi is None:
                want = f"an integer >= {lo}"
            elif lo is None:
                want = f"an integer <= {hi}"
            else:
                want = f"an integer in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v

    parse.__name__ = f"int_range({lo}, {hi})"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def parse(text: str) -> float:
        v = _float(text)
        low_bad = lo is not None and (v <= lo if lo_open else v < lo)
        if low_bad or (hi is not None and v > hi):
            op = ">" if lo_open else ">="
            want = (f"a number {op} {lo}" if hi is None else f"a number {op} {lo} and <= {hi}")
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v

    parse.__name__ = f"float_range({lo}, {hi})"
    return parse


count = int_range(1)
"""Images, epochs, hidden units, lanes, chunk sizes, attempts: at least one."""
count.__name__ = "count"

def count_list(text: str) -> tuple[int, ...]:
    """A comma list of counts (``--hidden 128,256``): integers >= 1, duplicates dropped, in the
    given order; at least one."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    out = []
    for item in items:
        try:
            out.append(count(item))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers >= 1, got {item!r} in {text!r}") from None
    return tuple(dict.fromkeys(out))


nonneg_int = int_range(0)
nonneg_int.__name__ = "nonneg_int"

seed = int_range(0, SEED_MAX)
seed.__name__ = "seed"

workers = int_range(1, 1024)
workers.__name__ = "workers"

probability = float_range(0.0, 1.0)
"""A probability per cycle or per event: 0 .. 1."""
probability.__name__ = "probability"

positive_float = float_range(0.0, lo_open=True)
positive_float.__name__ = "positive_float"


def existing_file(text: str) -> Path:
    """A file that must exist and be a regular file (``--weights STATE``, ``--vectors FILE``)."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: expected a file, found a directory")
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return p


def existing_dir(text: str) -> Path:
    """A folder that must exist (``--export DIR``)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: expected a folder, found a file")
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return p


def output_dir(text: str) -> Path:
    """A folder to write into: absent (it is created) or a directory, never an existing file."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: expected a folder, found a file")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    return p


def output_file(text: str) -> Path:
    """A file to (over)write: never an existing directory, its parent not a file."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: expected a file name, found a directory")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    return p


def verilog_identifier(text: str) -> str:
    """``--name``: a Verilog module name that is also a safe file name."""
    if not VERILOG_IDENTIFIER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Verilog module name (a letter or _, then letters, digits or _)")
    return text
