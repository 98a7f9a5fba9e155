"""Rounding, saturation and the LFSR of golden/fixed.py, against hand-computed values and the
LFSR's polynomial (an independent definition of the same sequence)."""

import numpy as np
import pytest
from spykehw.golden.fixed import (
    HALF_UP,
    STOCHASTIC,
    TRUNCATE,
    lfsr_sequence,
    lfsr_step,
    quantize,
    round_half_up,
    shr_round,
)

# Connection polynomial 1 + x + x^2 + x^22 + x^32, as an int (bit k = coefficient of x^k).
POLY = (1 << 32) | (1 << 22) | (1 << 2) | (1 << 1) | 1


def test_lfsr_bits_follow_the_connection_polynomial():
    states = lfsr_sequence(0xACE1, 2000)
    b = [int(s) & 1 for s in states]
    # 1 + x + x^2 + x^22 + x^32: b[n] = b[n-1] ^ b[n-2] ^ b[n-22] ^ b[n-32]
    for n in range(32, len(b)):
        assert b[n] == b[n - 1] ^ b[n - 2] ^ b[n - 22] ^ b[n - 32], n
    assert 0 not in set(int(s) for s in states)


def _polymulmod(a: int, b: int, m: int) -> int:
    """a * b mod m over GF(2), polynomials as ints."""
    deg = m.bit_length() - 1
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a >> deg & 1:
            a ^= m
    return r


def _polypowmod(e: int, m: int) -> int:
    """x^e mod m."""
    r, base = 1, 2
    while e:
        if e & 1:
            r = _polymulmod(r, base, m)
        base = _polymulmod(base, base, m)
        e >>= 1
    return r


def test_lfsr_polynomial_is_primitive_so_the_period_is_maximal():
    order = 2 ** 32 - 1  # = 3 * 5 * 17 * 257 * 65537
    assert 3 * 5 * 17 * 257 * 65537 == order
    assert _polypowmod(order, POLY) == 1
    for q in (3, 5, 17, 257, 65537):
        assert _polypowmod(order // q, POLY) != 1, q


def test_lfsr_step_by_hand():
    # 1 -> lsb 1: 0 ^ 0x80200003; 2 -> 1 (no feedback)
    assert lfsr_step(1) == 0x80200003
    assert lfsr_step(2) == 1
    assert lfsr_step(0x80200003) == (0x80200003 >> 1) ^ 0x80200003


@pytest.mark.parametrize("x,n,trunc,half", [
    (0, 3, 0, 0), (7, 3, 0, 1), (3, 3, 0, 0), (4, 3, 0, 1), (12, 3, 1, 2),
    (-1, 1, -1, 0), (-3, 1, -2, -1), (-4, 2, -1, -1), (-6, 2, -2, -1), (5, 0, 5, 5),
])
def test_shr_round_by_hand(x, n, trunc, half):
    assert shr_round(x, n, TRUNCATE, 1) == (trunc, 1)
    assert shr_round(x, n, HALF_UP, 1) == (half, 1)


def test_shr_round_negative_shift_is_a_left_shift():
    assert shr_round(3, -2, HALF_UP, 7) == (12, 7)


def test_stochastic_rounding_adds_the_lfsr_fraction():
    s1 = lfsr_step(0xACE1)
    for x, n in [(5, 3), (1000, 7), (2 ** 40 + 3, 36)]:
        got, state = shr_round(x, n, STOCHASTIC, 0xACE1)
        k = min(n, 32)
        r = (s1 & ((1 << k) - 1)) << (n - k)
        assert state == s1 and got == (x + r) >> n
        assert got in (x >> n, (x >> n) + 1)


def test_stochastic_rounding_is_unbiased_on_average():
    x, n, state, total = 3, 3, 0xACE1, 0  # 3/8
    for _ in range(40000):
        d, state = shr_round(x, n, STOCHASTIC, state)
        total += d
    assert abs(total / 40000 - 3 / 8) < 0.01


def test_round_half_up_is_not_bankers():
    assert [round_half_up(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5)] == [1, 2, 3, 0, -1]
    np.testing.assert_array_equal(round_half_up(np.array([0.5, 2.5, -2.5])), [1, 3, -2])


def test_quantize_saturates_or_raises():
    x = np.array([0.5, -0.5, 3.0, -3.0, 0.03125])
    np.testing.assert_array_equal(quantize(x, 4, 6), [8, -8, 31, -32, 1])
    np.testing.assert_array_equal(quantize(x, 4, 6, signed=False), [8, 0, 48, 0, 1])  # 0..63
    with pytest.raises(OverflowError, match="2 values outside 6-bit range"):
        quantize(x, 4, 6, overflow="error", what="w")
