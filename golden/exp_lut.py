"""The exp lookup table of the integer softmax: one source for the golden model and the RTL.

``EXP_LUT[d] = round_half_up((2**exp_lut_bits - 1) * exp(-d))`` for ``d = 0 .. exp_lut_entries-1``,
where ``d = max(logits) - logit`` is a non-negative integer; beyond the table ``e = 0``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .fixed import round_half_up

__all__ = ["exp_lut"]


@lru_cache(maxsize=None)
def _exp_lut(entries: int, bits: int) -> tuple[int, ...]:
    top = (1 << bits) - 1
    return tuple(int(round_half_up(top * math.exp(-d))) for d in range(entries))


def exp_lut(softmax_format) -> np.ndarray:
    """Int64 table for a :class:`~spykehw.golden.formats.SoftmaxFormat` (read-only copy)."""
    t = np.array(_exp_lut(softmax_format.exp_lut_entries, softmax_format.exp_lut_bits), dtype=np.int64)
    t.setflags(write=False)
    return t
