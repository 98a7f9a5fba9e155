"""Progress bars for long work (tqdm, on stderr), and durations written for people.

Work is reported in chunks (numba kernels process a chunk of images at a time), so a
:class:`Progress` is advanced by counts; tqdm draws the bar (rate, ETA; rewritten in place on
a terminal) at most once per ``interval`` seconds. ``enabled=False`` (``--quiet``, ``--json``)
draws nothing but still counts, so ``rate`` can be reported.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

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
    """``with Progress("features", total=N, unit="img") as p: ... p.advance(k)``.

    A tqdm bar labelled ``label`` (bytes, ``unit="B"``, are shown scaled: kB, MB).
    ``total`` may grow while the work runs (e.g. frames that come back too).
    """

    def __init__(self, label: str, total: int, *, unit: str = "img", interval: float = 2.0,
                 stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.done = 0
        self._t0 = time.perf_counter()
        self._bar = tqdm(total=int(total) or None, desc=label, unit=unit, unit_scale=unit == "B",
                         unit_divisor=1024 if unit == "B" else 1000, mininterval=interval,
                         file=stream if stream is not None else sys.stderr, disable=not enabled,
                         dynamic_ncols=True)

    @property
    def total(self) -> int:
        return int(self._bar.total or 0)

    @total.setter
    def total(self, value: int) -> None:
        self._bar.total = int(value) or None
        self._bar.refresh()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def advance(self, n: int = 1) -> None:
        self.done += int(n)
        self._bar.update(int(n))

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
