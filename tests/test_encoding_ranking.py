"""Rank-and-bin (golden/ranking.py): bin formula, exact comparison, tie-breaks."""

import math
from fractions import Fraction

import numpy as np
import pytest
from spykehw.golden.ranking import bin_of_rank, rank_bins, rank_order


def bins_of(num, den, bins=10):
    num, den = np.asarray(num), np.asarray(den)
    out = np.full(len(num), -1, np.int64)
    rank_bins(num, den, len(num), bins, out)
    return out.tolist()


def test_bin_formula_equals_reference_ceil_for_every_n():
    # The reference: ceil(k / (n / 10.)) - 1, here evaluated exactly with fractions.
    for n in range(1, 730):
        width = Fraction(n, 10)
        for k in range(1, n + 1):
            assert bin_of_rank(k, n, 10) == math.ceil(Fraction(k) / width) - 1, (n, k)


def test_bins_small_n_are_spread_out():
    assert [bin_of_rank(k, 3, 10) for k in (1, 2, 3)] == [3, 6, 9]
    assert [bin_of_rank(k, 1, 10) for k in (1,)] == [9]
    assert [bin_of_rank(k, 10, 10) for k in range(1, 11)] == list(range(10))
    assert [bin_of_rank(k, 20, 10) for k in range(1, 21)] == [b for b in range(10) for _ in (0, 1)]
    assert [bin_of_rank(k, 4, 5) for k in range(1, 5)] == [1, 2, 3, 4]  # ceil(5k/4) - 1


def test_order_is_key_descending_ties_to_lower_position():
    assert bins_of([5.0, 3.0, 5.0, 3.0], [1.0] * 4) == [2, 7, 4, 9]  # ranks 1, 3, 2, 4 of n=4
    assert bins_of([5, 3, 5, 3], [1, 1, 1, 1]) == [2, 7, 4, 9]


def test_integer_ratios_compare_exactly():
    # 2/4 == 1/2 == 4/8: one exact tie, broken by position.
    assert bins_of([2, 1, 4], [4, 2, 8]) == [3, 6, 9]
    # Three keys 1 + 2**-30 + O(2**-60): one float64 value, three exact ratios.
    big = 2 ** 30
    num = np.array([big + 1, big, big + 2, big + 1])
    den = np.array([big, big - 1, big + 1, big])
    assert len({float(a) / float(b) for a, b in zip(num, den)}) == 1
    order = np.empty(4, np.int64)
    rank_order(num, den, 4, order)
    assert order.tolist() == [1, 0, 3, 2]  # 2^30/(2^30-1) > (2^30+1)/2^30 (twice) > ...


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_random_keys_match_sorted(dtype):
    rng = np.random.default_rng(7)
    for n in [1, 2, 7, 100, 529, 729]:
        num = rng.integers(1, 40, n).astype(dtype)  # many exact ties
        den = rng.integers(1, 5, n).astype(dtype) if dtype == np.int64 else np.ones(n)
        order = np.empty(n, np.int64)
        rank_order(num, den, n, order)
        keys = [Fraction(int(a), int(b)) for a, b in zip(num, den)]
        assert order.tolist() == sorted(range(n), key=lambda p: (-keys[p], p))


def test_empty_and_single():
    assert bins_of([], []) == []
    assert bins_of([7], [1]) == [9]


def test_float_indistinguishable_keys_in_a_large_set():
    # More than 16 candidates (the radix path): spread keys plus a cluster of ratios that all
    # round to the same float64, in scrambled positions.
    rng = np.random.default_rng(11)
    big = 2 ** 30
    num = [int(v) for v in rng.integers(1, 2 ** 20, 30)] + [big + 1, big, big + 2, big + 1] * 5
    den = [int(v) for v in rng.integers(1, 2 ** 20, 30)] + [big, big - 1, big + 1, big] * 5
    perm = rng.permutation(len(num))
    num, den = np.array(num)[perm], np.array(den)[perm]
    keys = [Fraction(int(a), int(b)) for a, b in zip(num, den)]
    order = np.empty(len(num), np.int64)
    rank_order(num, den, len(num), order)
    assert order.tolist() == sorted(range(len(num)), key=lambda p: (-keys[p], p))
