"""Property-based tests of the integer golden model's arithmetic against exact arithmetic
(``fractions.Fraction``, Python ints, ``decimal`` at 60 digits) and against an independent
statement of the rules (the README's "Number formats" section): rounding modes and saturation,
``NumberFormats`` validation, ranking ties, softmax words and argmax preservation, derived
accumulator widths."""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal, getcontext
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from spykehw.golden.classifier_int import IntClassifier, forward_int
from spykehw.golden.fixed import (
    HALF_UP,
    STOCHASTIC,
    TRUNCATE,
    accumulator_range,
    quantize,
    round_half_up,
    shr_round,
    signed_width,
)
from spykehw.golden.formats import FormatError, NumberFormats, SoftmaxFormat, preset
from spykehw.golden.ranking import rank_bins
from spykehw.golden.softmax_int import softmax_int

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def galois_step(s: int) -> int:
    """The LFSR of the README: 32-bit Galois, right shift, taps 0x80200003."""
    return (s >> 1) ^ (0x80200003 if s & 1 else 0)


def floor_div_pow2(x: Fraction | int, n: int) -> int:
    return math.floor(Fraction(x) / (1 << n))


# ----- rounding and saturation ----------------------------------------------------------------

@FAST
@given(x=st.integers(-(2 ** 62), 2 ** 62), n=st.integers(0, 62))
def test_shr_round_truncate_and_half_up_equal_exact_fractions(x, n):
    assert shr_round(x, n, TRUNCATE, 5) == (floor_div_pow2(x, n), 5)
    half = math.floor(Fraction(x, 1 << n) + Fraction(1, 2))
    assert shr_round(x, n, HALF_UP, 5) == (half, 5)


@FAST
@given(x=st.integers(-(2 ** 40), 2 ** 40), n=st.integers(-20, 0))
def test_shr_round_by_a_non_positive_shift_multiplies(x, n):
    for mode in (TRUNCATE, HALF_UP, STOCHASTIC):
        assert shr_round(x, n, mode, 9) == (x * 2 ** -n, 9)


@FAST
@given(x=st.integers(0, 2 ** 61), n=st.integers(1, 61), seed=st.integers(1, 2 ** 32 - 1))
def test_stochastic_rounding_adds_a_uniform_fraction_of_the_next_state(x, n, seed):
    s = galois_step(seed)
    k = min(n, 32)
    r = (s & ((1 << k) - 1)) << (n - k)  # the state's low k bits as the top of an n-bit fraction
    got, state = shr_round(x, n, STOCHASTIC, seed)
    assert state == s
    assert got == floor_div_pow2(x + r, n)
    assert got - floor_div_pow2(x, n) in (0, 1)
    # exactly representable values are never rounded away
    exact, _ = shr_round(x << n if x < 2 ** (61 - n) else 0, n, STOCHASTIC, seed)
    assert exact == (x if x < 2 ** (61 - n) else 0)


finite = st.floats(min_value=-(2.0 ** 60), max_value=2.0 ** 60, allow_nan=False)
edges = st.sampled_from([0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994,
                         2.0 ** 52 + 1, 2.0 ** 52 - 0.5, -(2.0 ** 52) - 1, 4503599627370495.5,
                         1e-300, -1e-300, 0.0, -0.0])


@FAST
@given(x=st.one_of(finite, edges))
def test_round_half_up_is_floor_of_x_plus_a_half_exactly(x):
    want = math.floor(Fraction(x) + Fraction(1, 2))
    assert round_half_up(x) == want
    assert round_half_up(np.array([x, x]))[0] == want


@FAST
@given(data=st.data(), frac=st.integers(0, 40), bits=st.integers(2, 40), signed=st.booleans())
def test_quantize_is_round_half_up_then_saturation(data, frac, bits, signed):
    x = np.array(data.draw(st.lists(st.one_of(st.floats(-1e4, 1e4, allow_nan=False), edges),
                                    min_size=1, max_size=8)))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    exact = [math.floor(Fraction(float(v)) * 2 ** frac + Fraction(1, 2)) for v in x]
    q = quantize(x, frac, bits, signed=signed)
    assert q.dtype == np.int64
    assert q.tolist() == [min(hi, max(lo, e)) for e in exact]
    outside = sum(not lo <= e <= hi for e in exact)
    if outside:
        with pytest.raises(OverflowError, match=f"{outside} values outside {bits}-bit range"):
            quantize(x, frac, bits, signed=signed, overflow="error")
    else:
        assert quantize(x, frac, bits, signed=signed, overflow="error").tolist() == exact
    with pytest.raises(ValueError, match="overflow policy"):
        quantize(x, frac, bits, overflow="wrap")


# ----- derived widths -------------------------------------------------------------------------

def brute_width(lo: int, hi: int) -> int:
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@FAST
@given(a=st.integers(-(2 ** 70), 2 ** 70), b=st.integers(-(2 ** 70), 2 ** 70))
def test_signed_width_is_the_smallest_that_holds_the_range(a, b):
    lo, hi = min(a, b), max(a, b)
    assert signed_width(lo, hi) == brute_width(lo, hi)


@FAST
@given(terms=st.integers(0, 5000), wb=st.integers(2, 32), bb=st.integers(2, 40))
def test_accumulator_range_is_the_all_extreme_sum(terms, wb, bb):
    lo, hi = accumulator_range(terms, wb, bb)
    assert lo == sum([-(2 ** (wb - 1))] * terms) - 2 ** (bb - 1)
    assert hi == sum([2 ** (wb - 1) - 1] * terms) + 2 ** (bb - 1) - 1


classifier_bits = st.fixed_dictionaries({
    "hidden_weight_bits": st.integers(2, 32), "hidden_bias_bits": st.integers(2, 40),
    "output_weight_bits": st.integers(2, 32), "output_bias_bits": st.integers(2, 40),
    "output_weight_frac": st.integers(0, 40)})


@FAST
@given(bits=classifier_bits, F=st.integers(1, 40), H=st.integers(1, 12), C=st.integers(2, 6),
       seed=st.integers(0, 2 ** 32 - 1))
def test_random_extreme_weights_never_overflow_the_derived_accumulators(bits, F, H, C, seed):
    fmt = preset("fpga-16").replace(**{f"classifier.{k}": v for k, v in bits.items()})
    rng = np.random.default_rng(seed)

    def extremes(b, shape):  # every value at one end of its signed format
        return np.where(rng.random(shape) < 0.5, -(1 << (b - 1)), (1 << (b - 1)) - 1).astype(np.int64)

    q = IntClassifier(extremes(bits["hidden_weight_bits"], (F, H)), extremes(bits["hidden_bias_bits"], H),
                      extremes(bits["output_weight_bits"], (H, C)), extremes(bits["output_bias_bits"], C), fmt)
    x = (rng.random((3, F)) < 0.8).astype(np.uint8)
    x[0] = 1
    out = forward_int(q, x)
    for r in range(3):  # exact Python-int sums
        acc2 = [int(q.b2q[h]) + sum(int(q.W2q[i, h]) for i in range(F) if x[r, i]) for h in range(H)]
        assert out.acc2[r].tolist() == acc2
        hid = [a >= 0 for a in acc2]
        acc3 = [int(q.b3q[c]) + sum(int(q.W3q[h, c]) for h in range(H) if hid[h]) for c in range(C)]
        assert out.acc3[r].tolist() == acc3
        lo2, hi2 = q.hidden_acc_range
        lo3, hi3 = q.output_acc_range
        assert all(lo2 <= a <= hi2 for a in acc2) and all(lo3 <= a <= hi3 for a in acc3)
        assert all(-(1 << (q.hidden_acc_bits - 1)) <= a < 1 << (q.hidden_acc_bits - 1) for a in acc2)
        assert all(-(1 << (q.output_acc_bits - 1)) <= a < 1 << (q.output_acc_bits - 1) for a in acc3)
        f = bits["output_weight_frac"]
        assert out.logits[r].tolist() == [math.floor(Fraction(a, 2 ** f)) for a in acc3]
        assert all(-(1 << (q.logit_bits - 1)) <= v < 1 << (q.logit_bits - 1) for v in out.logits[r])
    assert q.hidden_acc_bits == brute_width(*q.hidden_acc_range)
    assert q.output_acc_bits == brute_width(*q.output_acc_range)
    assert q.logit_range == (q.output_acc_range[0] >> bits["output_weight_frac"],
                             q.output_acc_range[1] >> bits["output_weight_frac"])


# ----- NumberFormats validation ---------------------------------------------------------------

RANGES = {  # README / formats docstring: every integer key and its range
    "encoder.dog_frac_bits": (0, 24), "conv.weight_bits": (2, 24),
    "stdp.stdp_shift": (1, 30), "stdp.stdp_shift_min": (1, 30), "stdp.lfsr_seed": (1, 2 ** 32 - 1),
    "stdp.homeostasis_mult": (0, 255), "stdp.homeostasis_shift": (0, 30),
    "classifier.hidden_weight_bits": (2, 32), "classifier.hidden_weight_frac": (0, 40),
    "classifier.hidden_bias_bits": (2, 40), "classifier.output_weight_bits": (2, 32),
    "classifier.output_weight_frac": (0, 40), "classifier.output_bias_bits": (2, 40),
    "softmax.exp_lut_entries": (2, 4096), "softmax.exp_lut_bits": (2, 32),
    "softmax.softmax_bits": (1, 32),
}
CHOICES = {"stdp.rounding": ("truncate", "half_up", "stochastic"),
           "classifier.quantize_overflow": ("saturate", "error")}


@lru_cache(maxsize=None)
def exact_lut01(bits: int) -> tuple[int, int]:
    ctx = getcontext().copy()
    ctx.prec = 60
    top = Decimal((1 << bits) - 1)
    one = ctx.add(ctx.divide(top, ctx.exp(Decimal(1))), Decimal("0.5")).to_integral_value(ROUND_FLOOR)
    return (1 << bits) - 1, int(one)


def violations(cfg: dict) -> set[str]:
    """The keys an independent reading of the rules says are wrong (empty: valid). Each part
    checks its fields, then its own cross-field rule; the whole config's rules run last."""
    bad = set()
    for key, (lo, hi) in RANGES.items():
        v = cfg[key]
        if not (type(v) is int and lo <= v <= hi):
            bad.add(key)
    for key, options in CHOICES.items():
        if cfg[key] not in options:
            bad.add(key)
    ok = lambda *keys: not bad.intersection(keys)  # noqa: E731
    if ok("stdp.stdp_shift", "stdp.stdp_shift_min") \
            and cfg["stdp.stdp_shift_min"] > cfg["stdp.stdp_shift"]:
        bad.add("stdp.stdp_shift_min")
    if ok("softmax.exp_lut_bits", "softmax.softmax_bits") \
            and cfg["softmax.exp_lut_bits"] + cfg["softmax.softmax_bits"] > 62:
        bad.add("softmax.softmax_bits")
    if bad:
        return bad
    if cfg["classifier.hidden_weight_frac"] > cfg["classifier.hidden_weight_bits"] + 16:
        bad.add("classifier.hidden_weight_frac")
    e0, e1 = exact_lut01(cfg["softmax.exp_lut_bits"])
    if (e0 - e1) << cfg["softmax.softmax_bits"] < 47 * e0:
        bad.add("softmax.softmax_bits")
    return bad


def valid_value(key: str):
    if key in CHOICES:
        return st.sampled_from(CHOICES[key])
    lo, hi = RANGES[key]
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))


def invalid_value(key: str):
    if key in CHOICES:
        return st.sampled_from(["", "HALF_UP", "wrap", 3, None])
    lo, hi = RANGES[key]
    return st.sampled_from([lo - 1, hi + 1, -5, 2 ** 40, True, float(lo), str(lo), None])


KEYS = [*RANGES, *CHOICES]


@st.composite
def configs(draw):
    cfg = draw(st.fixed_dictionaries({k: valid_value(k) for k in KEYS}))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True)):
        cfg[key] = draw(invalid_value(key))
    return cfg


@settings(max_examples=300, deadline=None)
@given(cfg=configs())
def test_random_configs_build_when_valid_and_fail_naming_the_key(cfg):
    bad = violations(cfg)
    nested: dict = {}
    for key, v in cfg.items():
        part, leaf = key.split(".")
        nested.setdefault(part, {})[leaf] = v
    if not bad:
        fmt = NumberFormats.from_dict(nested)
        for key, v in cfg.items():
            part, leaf = key.split(".")
            assert getattr(getattr(fmt, part), leaf) == v
        assert NumberFormats.from_dict(fmt.to_dict()).digest() == fmt.digest()
    else:
        with pytest.raises(FormatError) as e:
            NumberFormats.from_dict(nested)
        named = str(e.value).split(":", 1)[0]
        assert named in bad, (str(e.value), bad)


def test_unknown_keys_are_named():
    with pytest.raises(FormatError, match=r"^conv\.wieght_bits: unknown key"):
        NumberFormats.from_dict({"conv": {"wieght_bits": 8}})
    with pytest.raises(FormatError, match=r"^convv: unknown key"):
        NumberFormats.from_dict({"convv": {}})
    with pytest.raises(FormatError, match=r"^conv: expected a table"):
        NumberFormats.from_dict({"conv": 8})
    with pytest.raises(FormatError, match=r"^weight_bits: expected a dotted key"):
        preset("fpga-16").replace(weight_bits=8)


# ----- ranking ties ---------------------------------------------------------------------------

@FAST
@given(keys=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4)), min_size=0, max_size=60),
       bins=st.integers(1, 12), as_float=st.booleans())
def test_rank_bins_ties_go_to_the_lower_position(keys, bins, as_float):
    n = len(keys)
    if as_float:
        num = np.array([float(Fraction(a, b)) for a, b in keys] or [0.0])[:n]
        den = np.ones(n)
        exact = [Fraction(float(v)) for v in num]
    else:
        num = np.array([a for a, _ in keys], np.int64)
        den = np.array([b for _, b in keys], np.int64)
        exact = [Fraction(a, b) for a, b in keys]
    order = sorted(range(n), key=lambda p: (-exact[p], p))
    want = [0] * n
    for k, p in enumerate(order, 1):
        want[p] = math.ceil(Fraction(k * bins, n)) - 1
    out = np.full(n, -1, np.int64)
    rank_bins(num, den, n, bins, out)
    assert out.tolist() == want


# ----- softmax words and argmax preservation --------------------------------------------------

@lru_cache(maxsize=None)
def exact_lut(bits: int, entries: int) -> tuple[int, ...]:
    ctx = getcontext().copy()
    ctx.prec = 60
    e = ctx.exp(Decimal(1))
    top = Decimal((1 << bits) - 1)
    return tuple(int(ctx.add(ctx.divide(top, ctx.power(e, d)), Decimal("0.5"))
                     .to_integral_value(ROUND_FLOOR)) for d in range(entries))


softmax_formats = st.builds(
    lambda entries, bits, p: (entries, bits, min(p, 62 - bits)),
    st.integers(2, 40), st.integers(2, 32), st.integers(1, 32))


@FAST
@given(f=softmax_formats, data=st.data())
def test_softmax_words_equal_the_exact_definition(f, data):
    entries, bits, p = f
    fmt = SoftmaxFormat(entries, bits, p)
    C = data.draw(st.integers(1, 12))
    N = data.draw(st.integers(1, 4))
    span = data.draw(st.sampled_from([1, entries - 1, entries, entries + 1, 3 * entries]))
    z = np.array(data.draw(st.lists(st.lists(st.integers(-span, span), min_size=C, max_size=C),
                                    min_size=N, max_size=N)), np.int64)
    lut = exact_lut(bits, entries)
    classes, words = softmax_int(z, fmt)
    for r in range(N):
        top = max(z[r].tolist())
        e = [lut[top - v] if top - v < entries else 0 for v in z[r].tolist()]
        s = sum(e)
        assert words[r].tolist() == [min((1 << p) - 1, (v << p) // s) for v in e]
        assert classes[r] == z[r].tolist().index(top)


@FAST
@given(f=softmax_formats, data=st.data())
def test_validated_formats_keep_the_argmax_for_up_to_47_classes(f, data):
    entries, bits, p = f
    try:
        fmt = preset("fpga-16").replace(**{"softmax.exp_lut_entries": entries,
                                           "softmax.exp_lut_bits": bits, "softmax.softmax_bits": p})
    except FormatError:
        assume(False)
    C = data.draw(st.integers(2, 47))
    winner = data.draw(st.integers(0, C - 1))
    # the hardest case: everyone else one step below, some tied with the winner further right
    z = [-1] * C
    z[winner] = 0
    for j in data.draw(st.lists(st.integers(winner, C - 1), max_size=3)):
        z[j] = 0
    classes, words = softmax_int(np.array(z), fmt.softmax)
    assert int(classes) == winner == int(np.argmax(words))


# ----- every range at its edges (deterministic: each limit of the README checked) ------------

def _default_cfg() -> dict:
    fmt = preset("fpga-16").to_dict()
    return {k: fmt[k.split(".")[0]][k.split(".")[1]] for k in KEYS}


def _nested(cfg: dict) -> dict:
    nested: dict = {}
    for key, v in cfg.items():
        part, leaf = key.split(".")
        nested.setdefault(part, {})[leaf] = v
    return nested


@pytest.mark.parametrize("key", list(RANGES))
def test_each_range_limit_is_inclusive_and_the_next_value_refused(key):
    lo, hi = RANGES[key]
    for v in (lo, hi, lo - 1, hi + 1):
        cfg = _default_cfg()
        cfg[key] = v
        if key == "stdp.stdp_shift_min":
            cfg["stdp.stdp_shift"] = 30  # so that the cap rule does not decide
        if key == "stdp.stdp_shift":
            cfg["stdp.stdp_shift_min"] = 1
        if key == "softmax.exp_lut_bits":
            cfg["softmax.softmax_bits"] = 16
        if key == "classifier.hidden_weight_frac":
            cfg["classifier.hidden_weight_bits"] = 32  # frac <= bits + 16 does not decide
        bad = violations(cfg)
        if v in (lo - 1, hi + 1):
            assert key in bad
            with pytest.raises(FormatError, match=rf"^{key}: must be in {lo}\.\.{hi}, not {v}$"):
                NumberFormats.from_dict(_nested(cfg))
        if not bad:
            NumberFormats.from_dict(_nested(cfg))
        else:
            with pytest.raises(FormatError) as e:
                NumberFormats.from_dict(_nested(cfg))
            assert str(e.value).split(":", 1)[0] in bad


def test_cross_field_rules_at_their_boundaries():
    base = preset("fpga-16")
    # the STDP cap: stdp_shift_min <= stdp_shift
    base.replace(**{"stdp.stdp_shift": 5, "stdp.stdp_shift_min": 5})
    with pytest.raises(FormatError, match=r"^stdp\.stdp_shift_min"):
        base.replace(**{"stdp.stdp_shift": 5, "stdp.stdp_shift_min": 6})
    # the dividend e << softmax_bits: exp_lut_bits + softmax_bits <= 62
    base.replace(**{"softmax.exp_lut_bits": 30, "softmax.softmax_bits": 32})
    with pytest.raises(FormatError, match=r"^softmax\.softmax_bits: exp_lut_bits \+ softmax_bits"):
        base.replace(**{"softmax.exp_lut_bits": 31, "softmax.softmax_bits": 32})
    # hidden_weight_frac <= hidden_weight_bits + 16
    base.replace(**{"classifier.hidden_weight_bits": 2, "classifier.hidden_weight_frac": 18})
    with pytest.raises(FormatError, match=r"^classifier\.hidden_weight_frac"):
        base.replace(**{"classifier.hidden_weight_bits": 2, "classifier.hidden_weight_frac": 19})
    # the widest STDP product the ranges allow still fits (2*24 + 2 + 8 = 58 <= 62)
    base.replace(**{"conv.weight_bits": 24, "stdp.homeostasis_mult": 255})


def test_a_missing_config_file_is_named():
    from spykehw.golden.formats import load_formats
    with pytest.raises(FormatError, match=r"no such config file"):
        load_formats("/nonexistent/formats.toml")


def test_a_config_may_carry_its_own_name_or_its_preset_s_name_on_equal_content(tmp_path):
    from spykehw.golden.formats import load_formats
    own = tmp_path / "own.toml"
    own.write_text('preset = "fpga-8"\nname = "my-config"\n[conv]\nweight_bits = 6\n')
    fmt = load_formats(own)
    assert fmt.name == "my-config" and fmt.conv.weight_bits == 6
    same = tmp_path / "same.toml"
    same.write_text('preset = "fpga-8"\nname = "fpga-8"\n')
    assert load_formats(same).digest() == preset("fpga-8").digest()
    assert load_formats(same).name == "fpga-8"
