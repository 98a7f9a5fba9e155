"""Hand-computed edge cases of the integer golden model's arithmetic, each written against a
gap the mutation run found (tools/mutate.py; README "Test strength"). Expectations are computed
here by hand or with exact arithmetic (``decimal`` at 60 digits, ``fractions``, Python ints),
never by calling the code under test another way."""

from __future__ import annotations

import random
from decimal import ROUND_FLOOR, Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from spykehw.golden.classifier_int import IntClassifier, QuantizationError
from spykehw.golden.exp_lut import exp_lut
from spykehw.golden.fixed import (
    STOCHASTIC,
    accumulator_range,
    lfsr_step,
    shr_round,
    signed_width,
)
from spykehw.golden.formats import FormatError, NumberFormats, SoftmaxFormat, preset
from spykehw.golden.ranking import _mul128, rank_order
from spykehw.golden.softmax_int import softmax_int


def exact_lut(bits: int, entries: int) -> list[int]:
    """``floor((2**bits - 1) * e**-d + 1/2)`` with e from decimal at 60 digits."""
    ctx = getcontext().copy()
    ctx.prec = 60
    e = ctx.exp(Decimal(1))
    top = Decimal((1 << bits) - 1)
    return [int(ctx.add(ctx.divide(top, ctx.power(e, d)), Decimal("0.5"))
                .to_integral_value(rounding=ROUND_FLOOR)) for d in range(entries)]


# ----- exp LUT values -------------------------------------------------------------------------

def test_exp_lut_values_by_hand():
    # 1023 / e = 376.34, 1023 / e^2 = 138.45, 1023 / e^3 = 50.93, / e^4 = 18.74, / e^5 = 6.89,
    # / e^6 = 2.54, / e^7 = 0.93, / e^8 = 0.34: rounded half up.
    assert exp_lut(SoftmaxFormat(16, 10, 8)).tolist() == [1023, 376, 138, 51, 19, 7, 3, 1] + [0] * 8
    # 65535 / e = 24108.77, / e^2 = 8869.19, / e^3 = 3262.77, / e^4 = 1200.31, / e^5 = 441.57
    assert exp_lut(SoftmaxFormat(6, 16, 16)).tolist() == [65535, 24109, 8869, 3263, 1200, 442]
    # EXP_LUT[0] is the all-ones word: 2^W - 1
    assert exp_lut(SoftmaxFormat(2, 32, 30))[0] == 2 ** 32 - 1
    assert exp_lut(SoftmaxFormat(2, 2, 1)).tolist() == [3, 1]  # 3 / e = 1.10


@pytest.mark.parametrize("name", ["paper-float-equivalent", "fpga-16", "fpga-8", "edge-4"])
def test_exp_lut_of_every_preset_equals_the_exact_definition(name):
    s = preset(name).softmax
    lut = exp_lut(s)
    assert lut.dtype == np.int64 and len(lut) == s.exp_lut_entries
    assert lut.tolist() == exact_lut(s.exp_lut_bits, s.exp_lut_entries)
    with pytest.raises(ValueError):
        lut[0] = 0  # read-only: the cached table cannot be changed by a caller


# ----- softmax: the table's edge, 1-D logits --------------------------------------------------

def test_softmax_difference_at_the_last_entry_and_just_beyond():
    fmt = SoftmaxFormat(exp_lut_entries=4, exp_lut_bits=16, softmax_bits=16)
    # d = 3 is the last entry (3263), d = 4 is beyond the table (0).
    classes, words = softmax_int(np.array([[3, 0], [4, 0], [0, 4]]), fmt)
    s = 65535 + 3263
    assert words.tolist() == [[(65535 << 16) // s, (3263 << 16) // s],
                              [65535, 0],      # 65536 saturates to 2^16 - 1
                              [0, 65535]]
    assert words[0].tolist() == [62427, 3108]  # 4294901760 // 68798, 213843968 // 68798
    assert classes.tolist() == [0, 0, 1]


def test_softmax_of_1d_logits_is_one_image():
    # fpga-8 (10-bit LUT, 8-bit words): d = [0, 2, 0, 32] -> e = [1023, 138, 1023, 0], S = 2184
    cls, words = softmax_int(np.array([2, 0, 2, -30]), preset("fpga-8").softmax)
    assert np.ndim(cls) == 0 and int(cls) == 0
    assert words.shape == (4,) and words.tolist() == [119, 16, 119, 0]
    cls, words = softmax_int(np.array([-5, 7]), preset("fpga-8").softmax)
    assert int(cls) == 1 and words.tolist() == [0, 255]  # d = 12: e = 0


# ----- the 47-class argmax guarantee in formats.py --------------------------------------------

def test_softmax_bits_below_the_argmax_guarantee_are_refused():
    # 10-bit LUT: EXP_LUT[0] - EXP_LUT[1] = 1023 - 376 = 647; 47 * 1023 = 48081.
    # 647 << 6 = 41408 < 48081: refused; 647 << 7 = 82816 >= 48081: accepted.
    base = preset("fpga-8")
    with pytest.raises(FormatError, match=r"^softmax\.softmax_bits: 6 bits cannot keep the argmax of 47"):
        base.replace(**{"softmax.softmax_bits": 6})
    assert base.replace(**{"softmax.softmax_bits": 7}).softmax.softmax_bits == 7
    # 8-bit LUT: 255 - 94 = 161; 47 * 255 = 11985; 161 << 6 = 10304 < 11985 <= 161 << 7 = 20608
    edge = preset("edge-4")
    with pytest.raises(FormatError, match=r"^softmax\.softmax_bits"):
        edge.replace(**{"softmax.softmax_bits": 6})
    edge.replace(**{"softmax.softmax_bits": 7})
    # 2-bit LUT [3, 1]: gap 2; 47 * 3 = 141: 2 << 6 = 128 refused, 2 << 7 = 256 accepted
    with pytest.raises(FormatError, match=r"^softmax\.softmax_bits"):
        base.replace(**{"softmax.exp_lut_bits": 2, "softmax.softmax_bits": 6})
    base.replace(**{"softmax.exp_lut_bits": 2, "softmax.softmax_bits": 7})
    assert NumberFormats.MAX_CLASSES == 47


def test_the_argmax_guarantee_holds_at_its_tightest_for_47_classes():
    # One winner (d = 0) against 46 runners-up at d = 1: the words differ by at least one LSB.
    for lut_bits, p in [(10, 7), (8, 7), (2, 7), (16, 16)]:
        lut = exact_lut(lut_bits, 2)
        z = np.array([0] + [-1] * 46)
        cls, words = softmax_int(z, SoftmaxFormat(32, lut_bits, p))
        s = lut[0] + 46 * lut[1]
        assert words[0] == min((1 << p) - 1, (lut[0] << p) // s)
        assert words[1] == (lut[1] << p) // s < words[0]
        assert int(cls) == 0 == int(np.argmax(words))


# ----- ranking: exact 128-bit products -------------------------------------------------------

def test_mul128_is_the_exact_product_for_operands_of_2_to_the_32_and_more():
    rng = random.Random(5)
    cases = [(2 ** 32, 2 ** 32), (2 ** 62, 2 ** 62), (2 ** 63 - 1, 2 ** 63 - 1), (2 ** 32 - 1, 2 ** 32 + 1),
             (0xFFFFFFFF, 0xFFFFFFFF), (2 ** 62 + 12345, 3), (1, 2 ** 63 - 1), (0, 2 ** 62)]
    cases += [(rng.randrange(2 ** 63), rng.randrange(2 ** 63)) for _ in range(200)]
    cases += [(rng.randrange(2 ** 32, 2 ** 40), rng.randrange(2 ** 32)) for _ in range(100)]
    for a, b in cases:
        hi, lo = _mul128(a, b)
        assert (int(hi) << 64) | int(lo) == a * b, (a, b)


def test_ranking_of_62_bit_keys_is_exact():
    # Ratios that differ only beyond 2^-100: one float64 value, several exact orders.
    big = 2 ** 61
    num = np.array([big + 1, big, 3 * big, big + 2, big, 2 ** 62 - 1, 2 ** 62 - 2], np.int64)
    den = np.array([big, big - 1, 3 * big, big + 1, big, 2 ** 62 - 2, 2 ** 62 - 3], np.int64)
    keys = [Fraction(int(a), int(b)) for a, b in zip(num, den)]
    order = np.empty(len(num), np.int64)
    rank_order(num, den, len(num), order)
    assert order.tolist() == sorted(range(len(num)), key=lambda p: (-keys[p], p))
    # by hand, each key is 1 + 1/m: m = 2^61-1 (p1), 2^61 (p0), 2^61+1 (p3), 2^62-3 (p6),
    # 2^62-2 (p5); then the two keys equal to 1 (p2, p4) in position order
    assert order.tolist() == [1, 0, 3, 6, 5, 2, 4]


def test_ranking_random_62_bit_keys_with_near_ties_matches_fractions():
    rng = np.random.default_rng(3)
    n = 40  # more than 16: the radix pass runs before the exact insertion sort
    base_num = rng.integers(2 ** 40, 2 ** 61, n // 4)
    base_den = rng.integers(2 ** 40, 2 ** 61, n // 4)
    num = np.concatenate([base_num, base_num, base_num + 1, base_num * 2])
    den = np.concatenate([base_den, base_den + 1, base_den, base_den * 2])
    perm = rng.permutation(n)
    num, den = num[perm].astype(np.int64), den[perm].astype(np.int64)
    keys = [Fraction(int(a), int(b)) for a, b in zip(num, den)]
    order = np.empty(n, np.int64)
    rank_order(num, den, n, order)
    assert order.tolist() == sorted(range(n), key=lambda p: (-keys[p], p))


# ----- stochastic rounding with shifts above 32 -----------------------------------------------

def test_stochastic_rounding_with_a_shift_above_32_carries_at_the_lfsr_fraction():
    # From seed 1 the state after one step is 0x80200003 (1 >> 1 = 0, lsb 1: ^ taps). For n > 32
    # the 32 state bits are the top of the n-bit fraction: r = 0x80200003 << (n - 32).
    assert lfsr_step(1) == 0x80200003
    for n in (33, 36, 40, 62):
        r = 0x80200003 << (n - 32)
        one = 1 << n
        assert shr_round(one - r, n, STOCHASTIC, 1) == (1, 0x80200003)      # carries exactly
        assert shr_round(one - r - 1, n, STOCHASTIC, 1) == (0, 0x80200003)  # one short
        if n <= 40:
            assert shr_round(5 * one + one - r, n, STOCHASTIC, 1)[0] == 6
    # n = 32: the whole state is the fraction
    assert shr_round((1 << 32) - 0x80200003, 32, STOCHASTIC, 1)[0] == 1
    assert shr_round((1 << 32) - 0x80200004, 32, STOCHASTIC, 1)[0] == 0
    # n = 31: the low 31 bits of the state, 0x00200003
    assert shr_round((1 << 31) - 0x00200003, 31, STOCHASTIC, 1)[0] == 1
    assert shr_round((1 << 31) - 0x00200004, 31, STOCHASTIC, 1)[0] == 0


# ----- potential bound for several spikes per input ------------------------------------------

def test_potential_bound_by_hand():
    fpga16 = preset("fpga-16")  # 16-bit weights: largest 65535
    assert fpga16.potential_bound(1, 5) == 25 * 65535 == 1638375
    assert fpga16.potential_bits(1, 5) == 21           # 2^20 = 1048576 < 1638375 < 2^21
    # Conv2 input: Pool1 neurons spike up to 4 times
    assert fpga16.potential_bound(1, 5, 4) == 6553500
    assert fpga16.potential_bits(1, 5, 4) == 23        # 2^22 = 4194304 < 6553500 < 2^23
    paper = preset("paper-float-equivalent")  # 24-bit weights
    assert paper.potential_bound(30, 5, 4) == 30 * 25 * 4 * (2 ** 24 - 1) == 50331645000
    assert paper.potential_bits(30, 5, 4) == 36        # 2^35 = 34359738368 < 5.03e10 < 2^36
    edge = preset("edge-4")  # 4-bit weights: 15
    assert edge.potential_bound(2, 3, 2) == 2 * 9 * 2 * 15 == 540
    assert edge.potential_bits(2, 3, 2) == 10
    assert edge.potential_bits(1, 1) == 4 and edge.weight_max() == 15
    assert fpga16.threshold_int(15.0) == 15 * 65536
    assert edge.threshold_int(0.53125) == 9  # 0.53125 * 16 = 8.5: half up


# ----- the 63-bit accumulator limit at its boundary -------------------------------------------

def _wide_formats():
    return preset("fpga-16").replace(**{"classifier.hidden_weight_bits": 32,
                                        "classifier.hidden_bias_bits": 2})


def test_hidden_accumulator_of_63_bits_is_accepted_and_64_refused():
    # 32-bit weights (-2^31 .. 2^31-1), 2-bit bias (-2 .. 1). F features (zero hidden units,
    # so the arrays are empty): acc2 >= -F * 2^31 - 2.
    fmt = _wide_formats()
    F = 2 ** 31 - 1  # min = -2^62 + 2^31 - 2 >= -2^62, max = (2^31-1)^2 + 1 < 2^62: 63 bits
    q = IntClassifier(np.zeros((F, 0), np.int64), np.zeros(0, np.int64),
                      np.zeros((0, 2), np.int64), np.zeros(2, np.int64), fmt)
    assert q.hidden_acc_range == (-(2 ** 62) + 2 ** 31 - 2, (2 ** 31 - 1) ** 2 + 1)
    assert q.hidden_acc_bits == 63
    F = 2 ** 31  # min = -2^62 - 2 < -2^62: 64 bits
    with pytest.raises(QuantizationError, match="wider than 63 bits"):
        IntClassifier(np.zeros((F, 0), np.int64), np.zeros(0, np.int64),
                      np.zeros((0, 2), np.int64), np.zeros(2, np.int64), fmt)


def test_accumulator_range_and_width_by_hand():
    assert accumulator_range(3, 4, 6) == (3 * -8 - 32, 3 * 7 + 31) == (-56, 52)
    assert signed_width(-56, 52) == 7                       # -64 .. 63
    assert signed_width(-65, 52) == 8 and signed_width(-64, 64) == 8 and signed_width(-64, 63) == 7
    assert signed_width(0, 0) == 1 and signed_width(-1, 0) == 1 and signed_width(0, 1) == 2
    assert signed_width(-(2 ** 62), 2 ** 62 - 1) == 63 and signed_width(-(2 ** 62) - 1, 0) == 64


# ----- the presets are the configs of the committed vectors ----------------------------------

def test_presets_equal_the_formats_recorded_in_the_committed_vectors():
    import json
    from pathlib import Path

    import spykehw.vectors

    seen = set()
    for path in sorted(Path(spykehw.vectors.__file__).parent.rglob("*.npz")):
        with np.load(path) as z:
            header = json.loads(bytes(z["_header"]).decode())
        recorded = header["formats"]
        if recorded["name"] in ("paper-float-equivalent", "fpga-16", "fpga-8", "edge-4"):
            assert NumberFormats.from_dict(recorded).digest() == preset(recorded["name"]).digest(), path
            seen.add(recorded["name"])
    assert seen == {"paper-float-equivalent", "fpga-16", "fpga-8", "edge-4"}


# ----- the integer classifier: shapes, the hidden bit at zero, no images, error at the edge ---

def test_inconsistent_shapes_are_refused():
    from spykehw.golden.classifier_params import ClassifierError
    fmt, z = preset("fpga-16"), np.zeros
    good = dict(W2q=z((3, 2), np.int64), b2q=z(2, np.int64), W3q=z((2, 4), np.int64), b3q=z(4, np.int64))
    IntClassifier(**good, formats=fmt)
    for name, bad in [("b2q", z(3, np.int64)), ("W3q", z(2, np.int64)), ("W3q", z((3, 4), np.int64)),
                      ("b3q", z(3, np.int64)), ("W2q", z((3, 2), np.float64))]:
        with pytest.raises(ClassifierError):
            IntClassifier(**dict(good, **{name: bad}), formats=fmt)


def test_hidden_bit_is_set_at_an_accumulator_of_exactly_zero():
    from spykehw.golden.classifier_int import forward_int
    fmt = preset("fpga-16")  # output_weight_frac = 10
    W2 = np.array([[5, -5]], np.int64)
    q = IntClassifier(W2, np.array([-5, 5], np.int64), np.array([[3 << 10], [7 << 10]], np.int64),
                      np.zeros(1, np.int64), fmt)
    out = forward_int(q, np.array([[1], [0]], np.uint8))
    # image 0: acc2 = [0, 0] -> both bits set -> logit 10; image 1: acc2 = [-5, 5] -> 7
    assert out.acc2.tolist() == [[0, 0], [-5, 5]]
    assert out.hidden.tolist() == [[1, 1], [0, 1]]
    assert out.logits.tolist() == [[10], [7]]


def test_no_images_give_empty_outputs():
    from spykehw.golden.classifier_int import forward_int
    fmt, z = preset("fpga-8"), np.zeros
    q = IntClassifier(z((3, 2), np.int64), z(2, np.int64), z((2, 5), np.int64), z(5, np.int64), fmt)
    out = forward_int(q, np.zeros((0, 3), np.uint8))
    assert out.classes.shape == (0,) and out.words.shape == (0, 5) and out.logits.shape == (0, 5)
    assert q.classes == 5 and q.features == 3 and q.hidden == 2


def test_quantize_error_policy_at_half_an_lsb_beyond_the_range():
    from spykehw.golden.fixed import quantize
    # 4-bit signed: -8 .. 7. 7.5 rounds half up to 8 (outside); -8.5 rounds up to -8 (inside);
    # -8.5 - 2^-40 rounds to -9 (outside).
    assert quantize(np.array([7.4999, -8.5]), 0, 4, overflow="error").tolist() == [7, -8]
    with pytest.raises(OverflowError, match="1 values outside 4-bit range"):
        quantize(np.array([7.5, -8.5]), 0, 4, overflow="error")
    with pytest.raises(OverflowError, match="1 values outside 4-bit range"):
        quantize(np.array([-8.5 - 2 ** -40]), 0, 4, overflow="error")
    # saturation of values far beyond int64 goes to the right end
    assert quantize(np.array([1e300, -1e300, 2.0 ** 70]), 10, 8).tolist() == [127, -128, 127]
    assert quantize(np.array([1e300, -1e300]), 10, 8, signed=False).tolist() == [255, 0]


def test_ranking_of_keys_closer_than_the_radix_window():
    # Float keys whose bit patterns lie within 2^20 of each other: the radix pre-sort then works
    # on the lowest bits (shift < 8), where a bucket computed differently in the counting and
    # the scattering pass would lose or duplicate candidates.
    rng = np.random.default_rng(9)
    base = np.float64(1.0).view(np.uint64)
    for n in (17, 40, 200):
        bits = base + rng.integers(0, 2 ** 20, n).astype(np.uint64)
        bits[: n // 4] = bits[n // 2]  # some exact ties
        num = bits.view(np.float64).copy()
        den = np.ones(n)
        order = np.empty(n, np.int64)
        rank_order(num, den, n, order)
        want = sorted(range(n), key=lambda p: (-int(bits[p]), p))  # same sign: bits order = value order
        assert order.tolist() == want
