"""The base class of errors caused by user input, defined here so that ``golden/`` needs nothing
of ours outside ``golden/`` (DESIGN.md: errors it raises are its own); ``spykehw.errors``
re-exports it for the rest of the project.

The command line prints these as one line naming the problem; any other exception is a bug and
keeps its traceback.
"""

__all__ = ["SpykehwError"]


class SpykehwError(Exception):
    """Bad input: the message names the key, file or argument, what was expected and found."""
