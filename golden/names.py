"""Names that may become parts of file names (config names, vector-set names).

Why here: a number-format config's ``name`` comes from a user's TOML file and ends up in file
names (``conv-<source>-<config name>.npz``). A name with a separator or ``..`` would write outside
the output folder, so names are checked where they enter (the config loader, ``--name``) against
one safe character set. golden/ owns it so the model stands on its own; the CLI re-exports it.
"""

from __future__ import annotations

import re

from .errors import SpykehwError

__all__ = ["SAFE_NAME", "UnsafeName", "check_safe_name"]

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
"""Letters, digits and ``. _ + -``, starting with a letter or digit, at most 64 characters
(and no ``..``, checked separately)."""


class UnsafeName(SpykehwError, ValueError):
    """A name that could not safely be part of a file name."""


def check_safe_name(name: object, what: str) -> str:
    """``name`` if it is a safe name; else :class:`UnsafeName` naming ``what`` and the value."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise UnsafeName(f"{what}: {name!r} is not a safe name (letters, digits and . _ + -, "
                         f"starting with a letter or digit, no '..', at most 64 characters)")
    return name
