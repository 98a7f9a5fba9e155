"""Progress lines for long work: done/total, items per second and ETA, on stderr.

Work is reported in chunks (numba kernels process a chunk of images at a time), so a
:class:`Progress` is advanced by counts. Output is throttled to one line per ``interval``
seconds; on a terminal the line is rewritten in place, elsewhere (CI, logs) each line is kept.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds + 0.5), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Progress:
    """``with Progress("features", total=N, unit="img") as p: ... p.advance(k)``."""

    def __init__(self, label: str, total: int, *, unit: str = "img", interval: float = 2.0,
                 stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.total = int(total)
        self.unit = unit
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self._t0 = time.perf_counter()
        self._last = -1e9
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def advance(self, n: int = 1) -> None:
        self.done += int(n)
        now = time.perf_counter()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self._write(final=False)

    def line(self) -> str:
        rate = self.rate
        if self.total > 0 and rate > 0 and self.done < self.total:
            eta = f", ETA {format_duration((self.total - self.done) / rate)}"
        else:
            eta = ""
        pct = f" ({100.0 * self.done / self.total:5.1f}%)" if self.total > 0 else ""
        return (f"{self.label}: {self.done}/{self.total} {self.unit}{pct}, "
                f"{rate:,.0f} {self.unit}/s, {format_duration(self.elapsed)}{eta}")

    def _write(self, final: bool) -> None:
        if not self.enabled:
            return
        if self._tty:
            self.stream.write("\r\x1b[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self._tty and self.enabled:
            self._write(final=True)
