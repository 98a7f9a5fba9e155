"""Integer helpers shared by the integer golden model and the RTL generator.

Rounding (used by STDP and by quantization), saturation and the LFSR that drives stochastic
rounding are defined here once. All functions work on Python ints and inside numba (``njit``).

LFSR
    32-bit Galois LFSR, shifting right: ``lsb = s & 1; s >>= 1; if lsb: s ^= 0x80200003``.
    Its connection polynomial is ``1 + x + x^2 + x^22 + x^32`` (primitive, so the period is
    ``2**32 - 1`` and the state is never 0 from a non-zero seed): the bit sequence
    ``b[n] = s_n & 1`` satisfies ``b[n+32] = b[n+31] ^ b[n+30] ^ b[n+10] ^ b[n]``. One rounding
    consumes one step, and the rounding uses the state *after* the step.
Rounding of ``x >> n`` (``x >= 0`` in every use; the rule is floor-based, so it is also defined
for negative ``x``):
    ``truncate``: ``x >> n`` (floor).
    ``half_up``: ``(x + 2**(n-1)) >> n`` (ties go up), and ``x`` when ``n == 0``.
    ``stochastic``: ``(x + r) >> n`` with ``r`` the low ``k = min(n, 32)`` bits of the LFSR
    state shifted left by ``n - k``, i.e. a uniform fraction of an LSB.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "signed_width",
    "accumulator_range",
    "TRUNCATE",
    "HALF_UP",
    "STOCHASTIC",
    "ROUNDING_CODES",
    "LFSR_TAPS",
    "lfsr_step",
    "lfsr_sequence",
    "shr_round",
    "round_half_up",
    "quantize",
    "signed_range",
]

TRUNCATE, HALF_UP, STOCHASTIC = 0, 1, 2
ROUNDING_CODES = {"truncate": TRUNCATE, "half_up": HALF_UP, "stochastic": STOCHASTIC}

LFSR_TAPS = 0x80200003
"""Galois feedback mask (bits 31, 21, 1, 0) of the right-shifting register."""


@njit(cache=True)
def lfsr_step(state: int) -> int:
    lsb = state & 1
    state >>= 1
    if lsb:
        state ^= LFSR_TAPS
    return state


def lfsr_sequence(seed: int, n: int) -> np.ndarray:
    """The next ``n`` states after ``seed`` (uint32)."""
    out = np.empty(n, dtype=np.uint32)
    s = seed
    for i in range(n):
        s = lfsr_step(s)
        out[i] = s
    return out


@njit(cache=True)
def shr_round(x: int, n: int, mode: int, state: int) -> tuple[int, int]:
    """``x / 2**n`` rounded by ``mode``; returns ``(result, new_lfsr_state)``."""
    if n <= 0:
        return x << (-n), state
    if mode == TRUNCATE:
        return x >> n, state
    if mode == HALF_UP:
        return (x + (1 << (n - 1))) >> n, state
    state = lfsr_step(state)
    k = n if n < 32 else 32
    r = (state & ((1 << k) - 1)) << (n - k)
    return (x + r) >> n, state


def round_half_up(x: np.ndarray | float) -> np.ndarray | int:
    """``floor(x + 0.5)`` exactly, as int64 (float -> fixed-point conversions; never banker's
    rounding). Computed as ``floor(x)`` plus one when the fraction ``x - floor(x)`` (exact in
    floating point) is at least 0.5: adding 0.5 first would round for ``0.49999999999999994``
    and for odd integers above 2**52."""
    if np.isscalar(x):
        f = math.floor(float(x))
        return f + (float(x) - f >= 0.5)
    a = np.asarray(x, dtype=np.float64)
    f = np.floor(a)
    return (f + (a - f >= 0.5)).astype(np.int64)


def signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def quantize(x: np.ndarray, frac: int, bits: int, *, signed: bool = True,
             overflow: str = "saturate", what: str = "value") -> np.ndarray:
    """Float array -> int64 fixed point ``round_half_up(x * 2**frac)`` in ``bits`` bits.

    ``overflow="saturate"`` clamps to the format's range; ``"error"`` raises naming ``what``.
    """
    v = np.asarray(x, dtype=np.float64) * float(2 ** frac)
    lo, hi = signed_range(bits) if signed else (0, (1 << bits) - 1)
    if overflow == "error":
        bad = (v >= hi + 0.5) | (v < lo - 0.5)  # exactly: round_half_up(v) outside [lo, hi]
        if np.any(bad):
            raise OverflowError(
                f"{what}: {int(bad.sum())} values outside {bits}-bit range [{lo}, {hi}] "
                f"(largest magnitude {float(np.abs(x).max()):.6g} with {frac} fraction bits)")
        return round_half_up(v)
    if overflow != "saturate":
        raise ValueError(f"overflow policy must be 'saturate' or 'error', not {overflow!r}")
    # clamp before rounding (same result, lo and hi are integers): no int64 cast overflow
    return round_half_up(np.clip(v, lo, hi))


# ----- derived widths (one source for the integer model and the RTL) -------------------------

def signed_width(lo: int, hi: int) -> int:
    """Smallest two's-complement width ``n`` with ``-2**(n-1) <= lo`` and ``hi <= 2**(n-1)-1``."""
    return max(max(0, -lo - 1).bit_length(), max(0, hi).bit_length()) + 1


def accumulator_range(terms: int, weight_bits: int, bias_bits: int) -> tuple[int, int]:
    """Worst case ``(min, max)`` of ``bias + sum of terms weights``: every weight and the bias at
    the extreme of its signed format (all inputs active). An accumulator of
    :func:`signed_width` of this range can never overflow."""
    wlo, whi = signed_range(weight_bits)
    blo, bhi = signed_range(bias_bits)
    return terms * wlo + blo, terms * whi + bhi
