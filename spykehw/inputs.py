"""Reading the text files a user hands to spykehw (sweep TOML, saved sweep JSON, benchmark JSON,
accuracy CSV): one place that turns every way such a file can be wrong -- missing, a folder,
not UTF-8, not valid TOML/JSON, not a table -- into one line naming the file, raised as the
caller's error class (so each command keeps its own error type and exit status).

(The number-format loader in ``golden/formats.py`` does the same for config files; golden
stands on its own, so it does not use this module.)
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .errors import SpykehwError

__all__ = ["read_text", "read_toml", "read_json"]


def read_text(path: str | Path, what: str, error: type[SpykehwError] = SpykehwError) -> str:
    """The UTF-8 text of ``path`` (a ``what``: "sweep file", "benchmark JSON", ...)."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: expected a {what}, found a folder")
    try:
        return p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except UnicodeDecodeError as e:
        raise error(f"{p}: not UTF-8 text (byte {e.start}); expected a {what}") from None
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({e.strerror})") from None


def read_toml(path: str | Path, what: str, error: type[SpykehwError] = SpykehwError) -> dict[str, Any]:
    text = read_text(path, what, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML ({e})") from None


def read_json(path: str | Path, what: str, error: type[SpykehwError] = SpykehwError, *,
              table: bool = True) -> Any:
    """The JSON in ``path``; with ``table`` it must be an object."""
    text = read_text(path, what, error)
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise error(f"{path}: not valid JSON ({e}); expected a {what}") from None
    if table and not isinstance(doc, dict):
        raise error(f"{path}: expected a JSON object ({what}), found {type(doc).__name__}")
    return doc
