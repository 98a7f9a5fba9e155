"""The base class of errors caused by user input (bad config, bad file, bad argument).

Defined in :mod:`spykehw.golden.errors` (the golden model stands on its own) and re-exported
here for everything above it. The command line prints these as one line naming the problem;
any other exception is a bug and keeps its traceback.
"""

from .golden.errors import SpykehwError

__all__ = ["SpykehwError"]
