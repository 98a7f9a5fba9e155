"""Rank-and-bin of the latency encoder, shared by the float reference and the integer model.

Each candidate ``p`` has a key ``num[p] / den[p]`` (``den > 0``). Candidates are ranked by key
in descending order (the largest contrast spikes first). The comparison is exact for integers:
``a`` comes before ``b`` iff ``num[a] * den[b] > num[b] * den[a]``. The float model passes
``den = 1`` so the same comparison is a plain float comparison. Equal keys go to the lower
position, and callers list candidates in ascending flat index ``r * 27 + c``, so ties go to
the lower flat index (spec 2.7 leaves the reference's quicksort order unspecified; DESIGN.md
contract 4).

Rank ``k = 1..n`` (earliest first) goes to time bin ``(bins * k + n - 1) // n - 1``, i.e.
``ceil(k / (n / bins)) - 1`` exactly: ``bins`` equal-count bins; for ``n < bins`` the bins are
spread out (``n = 3`` gives 3, 6, 9 with 10 bins).

The functions are numba ``njit`` and type-generic: numba compiles one specialisation for
float64 keys and one for int64 keys. Integer products are compared exactly in 128 bits
(:func:`_compare_products`), so keys may use up to 62 bits each (``formats.py`` checks that).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

__all__ = ["bin_of_rank", "rank_order", "rank_bins"]


@njit(cache=True)
def bin_of_rank(k: int, n: int, bins: int) -> int:
    """Time bin of rank ``k`` (1-based) among ``n`` candidates: ``ceil(bins * k / n) - 1``."""
    return (bins * k + n - 1) // n - 1


def _compare_products(a, b, c, d):
    """Sign of ``a*b - c*d`` (-1, 0, 1); exact for non-negative int64, plain for floats."""
    raise NotImplementedError("called from numba-compiled code only")


@njit(cache=True)
def _mul128(a, b):
    # (hi, lo) of a*b for 0 <= a, b < 2**63, from 32-bit limbs.
    m = np.uint64(0xFFFFFFFF)
    a0, a1 = np.uint64(a) & m, np.uint64(a) >> np.uint64(32)
    b0, b1 = np.uint64(b) & m, np.uint64(b) >> np.uint64(32)
    p00 = a0 * b0
    mid = a1 * b0 + (p00 >> np.uint64(32))
    mid2 = a0 * b1 + (mid & m)
    hi = a1 * b1 + (mid >> np.uint64(32)) + (mid2 >> np.uint64(32))
    lo = (mid2 << np.uint64(32)) | (p00 & m)
    return hi, lo


def _compare_int(a, b, c, d):
    h1, l1 = _mul128(a, b)
    h2, l2 = _mul128(c, d)
    if h1 != h2:
        return 1 if h1 > h2 else -1
    if l1 != l2:
        return 1 if l1 > l2 else -1
    return 0


def _compare_float(a, b, c, d):
    x = a * b
    y = c * d
    return 1 if x > y else (-1 if x < y else 0)


@overload(_compare_products)
def _compare_products_overload(a, b, c, d):
    return _compare_int if isinstance(a, types.Integer) else _compare_float


@njit(cache=True)
def _precedes(num, den, a, b):
    # The exact order: key descending, then position ascending (a total order).
    s = _compare_products(num[a], den[b], num[b], den[a])
    return s > 0 or (s == 0 and a < b)


_DIGIT = 8  # radix digit width: two passes give 2**16 buckets over the span of the keys


@njit(cache=True)
def rank_order(num, den, n, order):
    """Write into ``order[:n]`` the positions ``0..n-1`` sorted by key descending, ties by
    ascending position.

    Speed, not semantics: positive float64 values order like their bit patterns, so a two-pass
    LSD radix sort on the top 16 bits of ``bits(max) - bits(num / den)`` puts all but very
    close keys in place without data-dependent branches; a final insertion sort with the exact
    comparison then fixes the few remaining inversions. The result is exactly the sorted order
    whatever the float approximation does: the insertion sort alone is a complete sort.
    """
    approx = np.empty(n, np.float64)
    for p in range(n):
        approx[p] = num[p] / den[p]
    bits = approx.view(np.uint64)
    src = order
    dst = np.empty(n, np.int64)
    for p in range(n):
        src[p] = p
    in_order = True  # the sorted positions are in ``order`` (not in the scratch array)
    if n > 16:
        top = bits.max()
        span = top - bits.min()
        width = 0
        while width < 64 and (span >> np.uint64(width)) != 0:
            width += 1
        shift = max(0, width - 2 * _DIGIT)
        count = np.empty(1 << _DIGIT, np.int64)
        mask = np.uint64((1 << _DIGIT) - 1)
        for d_shift in range(shift, shift + 2 * _DIGIT, _DIGIT):
            count[:] = 0
            for p in range(n):
                count[((top - bits[p]) >> np.uint64(d_shift)) & mask] += 1  # top - : descending
            total = 0
            for d in range(1 << _DIGIT):
                c = count[d]
                count[d] = total
                total += c
            for p in range(n):
                v = src[p]
                d = ((top - bits[v]) >> np.uint64(d_shift)) & mask
                dst[count[d]] = v
                count[d] += 1
            src, dst = dst, src
            in_order = not in_order
    for p in range(1, n):
        v = src[p]
        q = p
        while q > 0 and _precedes(num, den, v, src[q - 1]):
            src[q] = src[q - 1]
            q -= 1
        src[q] = v
    if not in_order:
        for p in range(n):
            dst[p] = src[p]


@njit(cache=True)
def rank_bins(num, den, n, bins, out_bins):
    """``out_bins[p]`` = time bin of candidate ``p`` (``p < n``), ranked by :func:`rank_order`."""
    order = np.empty(n, np.int64)
    rank_order(num, den, n, order)
    for k in range(n):
        out_bins[order[k]] = bin_of_rank(k + 1, n, bins)
