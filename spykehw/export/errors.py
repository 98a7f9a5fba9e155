"""The export's one error type, so the command line prints it as one line naming the file."""

from __future__ import annotations

from ..golden.errors import SpykehwError

__all__ = ["ExportError"]


class ExportError(SpykehwError):
    """An export that cannot be written or read: names the file, key or value and what is wrong."""
