"""The base class of errors caused by user input (bad config, bad file, bad argument).

The command line prints these as one line naming the problem; any other exception is a bug and
keeps its traceback.
"""

__all__ = ["SpykehwError"]


class SpykehwError(Exception):
    """Bad input: the message names the key, file or argument, what was expected and found."""
