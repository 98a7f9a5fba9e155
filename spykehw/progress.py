"""Progress lines (re-exported from :mod:`spykehw.golden.progress`: the golden model reports its
own progress and imports nothing of ours outside ``golden/``)."""

from .golden.progress import Progress, format_duration

__all__ = ["Progress", "format_duration"]
