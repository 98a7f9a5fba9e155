"""Integer classifier: add-only forward vs an independent int64 matmul, accumulator bounds,
ties, softmax words, quantization rounding, QAT."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spykehw.golden.classifier import TrainState
from spykehw.golden.classifier_params import ClassifierParams, dropout_masks
from spykehw.golden.classifier_reference import gradients
from spykehw.golden.classifier_int import (
    IntClassifier,
    QuantizationError,
    dequantize,
    forward_int,
    quantize_classifier,
)
from spykehw.golden.errors import SpykehwError
from spykehw.golden.fixed import signed_width
from spykehw.golden.formats import preset
from spykehw.golden.options import ClassifierOptions
from spykehw.golden.qat import evaluate_int, qat_finetune, qat_table
from spykehw.golden.softmax_int import softmax_int

PRESETS = ["paper-float-equivalent", "fpga-16", "fpga-8", "edge-4"]
F32 = np.float32


def _rand_int(rng, bits, shape):
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape, dtype=np.int64)


def _random_int_classifier(rng, fmt, F, H, C):
    c = fmt.classifier
    return IntClassifier(_rand_int(rng, c.hidden_weight_bits, (F, H)), _rand_int(rng, c.hidden_bias_bits, H),
                         _rand_int(rng, c.output_weight_bits, (H, C)), _rand_int(rng, c.output_bias_bits, C),
                         fmt)


def _oracle(q: IntClassifier, x):
    """Dense int64 matmuls, floor division, first maximum: independent of the add-only kernel."""
    acc2 = x.astype(np.int64) @ q.W2q + q.b2q
    hidden = (acc2 >= 0).astype(np.int64)
    acc3 = hidden @ q.W3q + q.b3q
    logits = np.floor_divide(acc3, 2 ** q.formats.classifier.output_weight_frac)
    classes = np.array([next(j for j in range(len(r)) if r[j] == r.max()) for r in logits])
    return acc2, hidden, acc3, logits, classes


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(PRESETS), F=st.integers(1, 24), H=st.integers(1, 12), C=st.integers(2, 6),
       N=st.integers(1, 8), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_forward_int_equals_integer_matmul(name, F, H, C, N, density, seed):
    fmt = preset(name)
    rng = np.random.default_rng(seed)
    q = _random_int_classifier(rng, fmt, F, H, C)
    x = (rng.random((N, F)) < density).astype(np.uint8)
    out = forward_int(q, x)
    acc2, hidden, acc3, logits, classes = _oracle(q, x)
    np.testing.assert_array_equal(out.acc2, acc2)
    np.testing.assert_array_equal(out.hidden, hidden)
    np.testing.assert_array_equal(out.acc3, acc3)
    np.testing.assert_array_equal(out.logits, logits)
    np.testing.assert_array_equal(out.classes, classes)
    assert out.hidden.dtype == np.uint8 and out.acc2.dtype == np.int64
    lean = forward_int(q, x, keep_hidden=False)
    assert lean.acc2 is None and lean.hidden is None
    np.testing.assert_array_equal(lean.logits, logits)
    np.testing.assert_array_equal(lean.words, out.words)


def _fits(v, bits):
    return -(1 << (bits - 1)) <= v <= (1 << (bits - 1)) - 1


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("extreme", ["max", "min"])
def test_worst_case_fits_the_derived_accumulators(name, extreme):
    fmt = preset(name)
    c = fmt.classifier
    F, H, C = 3630, 1500, 47
    wb, bb, ob, obb = c.hidden_weight_bits, c.hidden_bias_bits, c.output_weight_bits, c.output_bias_bits
    top = lambda b: (1 << (b - 1)) - 1  # noqa: E731
    bot = lambda b: -(1 << (b - 1))  # noqa: E731
    pick = top if extreme == "max" else bot
    # hidden units all fire (needs acc2 >= 0: max hidden weights); the output extreme is `pick`
    q = IntClassifier(np.full((F, H), top(wb), np.int64), np.full(H, top(bb), np.int64),
                      np.full((H, C), pick(ob), np.int64), np.full(C, pick(obb), np.int64), fmt)
    out = forward_int(q, np.ones((1, F), np.uint8))
    acc2_max = F * top(wb) + top(bb)  # Python ints: no overflow possible here
    acc3 = H * pick(ob) + pick(obb)
    assert int(out.acc2.max()) == acc2_max == q.hidden_acc_range[1]
    assert int(out.acc3[0, 0]) == acc3 == q.output_acc_range[0 if extreme == "min" else 1]
    assert _fits(acc2_max, q.hidden_acc_bits) and _fits(acc3, q.output_acc_bits)
    assert int(out.logits[0, 0]) == acc3 >> c.output_weight_frac
    assert _fits(int(out.logits[0, 0]), q.logit_bits)
    # the most negative hidden accumulator
    qn = IntClassifier(np.full((F, H), bot(wb), np.int64), np.full(H, bot(bb), np.int64),
                       q.W3q, q.b3q, fmt)
    outn = forward_int(qn, np.ones((1, F), np.uint8))
    acc2_min = F * bot(wb) + bot(bb)
    assert int(outn.acc2.min()) == acc2_min == q.hidden_acc_range[0]
    assert _fits(acc2_min, q.hidden_acc_bits)
    # derived widths are the smallest that hold the range
    lo, hi = q.hidden_acc_range
    assert not (_fits(lo, q.hidden_acc_bits - 1) and _fits(hi, q.hidden_acc_bits - 1))


def test_accumulator_widths_fpga16_by_hand():
    # hidden: 3631 * 2^15 = 118,980,608 <= 2^27 -> 28 bits; output (H=1000): 1001 * 2^15 =
    # 32,800,768 <= 2^25 -> 26 bits; logits: 26 - 10 fraction bits -> 16 bits
    z = np.zeros
    q = IntClassifier(z((3630, 1000), np.int64), z(1000, np.int64), z((1000, 10), np.int64),
                      z(10, np.int64), preset("fpga-16"))
    assert q.hidden_acc_range == (-118_980_608, 118_976_977)
    assert (q.hidden_acc_bits, q.output_acc_bits, q.logit_bits) == (28, 26, 16)
    assert signed_width(-128, 127) == 8 and signed_width(-129, 0) == 9 and signed_width(0, 128) == 9


def test_argmax_ties_go_to_the_lowest_index():
    fmt = preset("fpga-16")
    f = fmt.classifier.output_weight_frac
    b3 = np.array([0, 5, 5, 2], np.int64) << f
    q = IntClassifier(np.zeros((3, 2), np.int64), np.zeros(2, np.int64), np.zeros((2, 4), np.int64), b3, fmt)
    out = forward_int(q, np.zeros((2, 3), np.uint8))
    np.testing.assert_array_equal(out.logits, [[0, 5, 5, 2]] * 2)
    np.testing.assert_array_equal(out.classes, [1, 1])
    assert np.argmax(out.words[0]) == 1 and out.words[0, 1] == out.words[0, 2]


def test_floor_is_an_arithmetic_shift():
    fmt = preset("fpga-8")  # output_weight_frac = 5
    b3 = np.array([-33, -32, -1, 0, 31, 32], np.int64)
    q = IntClassifier(np.zeros((1, 1), np.int64), np.zeros(1, np.int64), np.zeros((1, 6), np.int64), b3, fmt)
    out = forward_int(q, np.zeros((1, 1), np.uint8))
    np.testing.assert_array_equal(out.logits[0], [-2, -1, -1, 0, 0, 1])


@pytest.mark.parametrize("name", PRESETS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_softmax_argmax_equals_logit_argmax(name, data):
    fmt = preset(name)
    C = data.draw(st.integers(2, 47))
    span = data.draw(st.sampled_from([2, 40, 1 << 20]))
    z = np.array(data.draw(st.lists(st.integers(-span, span), min_size=C, max_size=C)), np.int64)
    classes, words = softmax_int(z[None, :], fmt.softmax)
    assert classes[0] == np.argmax(z) == np.argmax(words[0])


def test_softmax_words_by_hand():
    # fpga-8: 16 entries, 10-bit LUT, 8-bit words. Logits [2, 0, 2, -30]: d = [0, 2, 0, 32];
    # EXP_LUT[0] = 1023, EXP_LUT[2] = floor(1023 e^-2 + 0.5) = floor(138.448 + 0.5) = 138,
    # d = 32 is beyond the table -> 0. S = 2184; words = (e << 8) // S = [119, 16, 119, 0].
    classes, words = softmax_int(np.array([[2, 0, 2, -30], [0, -100, -50, -20]]), preset("fpga-8").softmax)
    np.testing.assert_array_equal(words, [[119, 16, 119, 0], [255, 0, 0, 0]])  # 256 saturates
    np.testing.assert_array_equal(classes, [0, 0])
    assert math.floor(1023 * math.exp(-2) + 0.5) == 138


# --- quantization --------------------------------------------------------------------------

def _params_with(W2=None, b2=None, W3=None, b3=None):
    return ClassifierParams(np.zeros((1, 6)) if W2 is None else W2, np.zeros(6) if b2 is None else b2,
                            np.zeros((6, 2)) if W3 is None else W3, np.zeros(2) if b3 is None else b3)


def test_quantization_rounds_half_up():
    fmt = preset("fpga-16")  # hidden Q2.14 in 16 bits, output Q6.10
    lsb2, lsb3 = 2.0 ** -14, 2.0 ** -10
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    q = quantize_classifier(_params_with(W2=(v * lsb2)[None, :], b2=v * lsb2,
                                         W3=np.array([[0.5, 0.49999], [-0.5, -0.50001]] * 3) * lsb3,
                                         b3=np.array([2.5, -2.5]) * lsb3), fmt)
    np.testing.assert_array_equal(q.W2q[0], [1, 2, 3, 0, -1, -2])
    np.testing.assert_array_equal(q.b2q, [1, 2, 3, 0, -1, -2])
    np.testing.assert_array_equal(q.W3q[:2], [[1, 0], [0, -1]])
    np.testing.assert_array_equal(q.b3q, [3, -2])


def test_quantization_saturates_or_errors():
    fmt = preset("fpga-16")
    W2 = np.array([[2.0, -2.0, -2.1, 1.99993896484375, 100.0, 0.0]])  # Q2.14: [-2, 2 - 2^-14]
    q = quantize_classifier(_params_with(W2=W2), fmt)
    np.testing.assert_array_equal(q.W2q[0], [32767, -32768, -32768, 32767, 32767, 0])
    strict = fmt.replace(**{"classifier.quantize_overflow": "error"})
    ok = quantize_classifier(_params_with(W2=np.array([[-2.0, 1.99993896484375, 0, 0, 0, 0]])), strict)
    assert ok.W2q[0, :2].tolist() == [-32768, 32767]
    with pytest.raises(QuantizationError, match="W2") as e:
        quantize_classifier(_params_with(W2=W2), strict)
    assert isinstance(e.value, SpykehwError)
    with pytest.raises(QuantizationError, match="b3"):
        quantize_classifier(_params_with(b3=np.array([40.0, 0.0])), strict)  # Q6.10 max < 32


def test_int_classifier_rejects_out_of_format_values():
    fmt = preset("edge-4")  # 4-bit hidden weights: -8..7
    with pytest.raises(QuantizationError, match="W2q"):
        IntClassifier(np.full((2, 2), 8, np.int64), np.zeros(2, np.int64), np.zeros((2, 2), np.int64),
                      np.zeros(2, np.int64), fmt)


def test_relu_is_refused():
    p = _params_with()
    with pytest.raises(QuantizationError, match="relu"):
        quantize_classifier(p, preset("fpga-16"), opts=ClassifierOptions(gradient="relu"))
    with pytest.raises(SpykehwError, match="relu"):
        qat_finetune(p, preset("fpga-16"), np.zeros((5, 1), np.uint8), np.zeros(5), np.zeros((1, 1), np.uint8),
                     np.zeros(1), ClassifierOptions(gradient="relu"), 1, progress=False)


def test_dequantize_is_exact():
    fmt = preset("fpga-8")
    q = _random_int_classifier(np.random.default_rng(0), fmt, 5, 4, 3)
    q2 = quantize_classifier(dequantize(q), fmt.replace(**{"classifier.quantize_overflow": "error"}))
    for a, b in zip((q.W2q, q.b2q, q.W3q, q.b3q), (q2.W2q, q2.b2q, q2.W3q, q2.b3q)):
        np.testing.assert_array_equal(a, b)


# --- QAT -----------------------------------------------------------------------------------

def _qat_setup(name, seed=0):
    rng = np.random.default_rng(seed)
    F, H, C, n = 30, 16, 4, 40
    x = (rng.random((n, F)) < 0.3).astype(np.uint8)
    y = rng.integers(0, C, n)
    p = ClassifierParams(rng.normal(0, 0.1, (F, H)).astype(F32), rng.normal(0, 0.05, H).astype(F32),
                         rng.normal(0, 1.0, (H, C)).astype(F32), rng.normal(0, 0.5, C).astype(F32))
    return preset(name), x, y, p


@pytest.mark.parametrize("name", ["fpga-16", "fpga-8", "edge-4"])
def test_qat_forward_weights_are_the_quantized_shadow(name):
    fmt, x, y, p = _qat_setup(name)
    opts = ClassifierOptions(eta=0.2, batch=5, dropout=0.5)
    st_ = TrainState(p, qp=qat_table(fmt))
    st_.steps(x, y, 0, len(x) // 5, opts, dropout_masks(np.random.default_rng(2), len(x), 16, 0.5))
    shadow = st_.params()
    assert np.any(shadow.W2 != p.W2)
    deq = dequantize(quantize_classifier(shadow, fmt.replace(**{"classifier.quantize_overflow": "error"})))
    for name_, fwd in zip(("W2", "b2", "W3", "b3"), st_.fwd):
        np.testing.assert_array_equal(fwd, getattr(deq, name_), err_msg=name_)


def test_qat_step_matches_dense_straight_through_oracle():
    fmt, x, y, p = _qat_setup("fpga-8")
    opts = ClassifierOptions(eta=0.2, batch=5, dropout=0.0)
    x, y = x[:5], y[:5]
    st_ = TrainState(p, qp=qat_table(fmt))
    start = st_.params()  # shadow after clipping to the formats' ranges
    st_.steps(x, y, 0, 1, opts, np.zeros((5, 16), bool))
    got = st_.params()
    # oracle: gradient of the dequantized (integer) model applied to the shadow, then clipped
    gr = gradients(dequantize(quantize_classifier(start, fmt)), x, y, opts)
    for name, g, (scale, lo, hi) in zip(("W2", "b2", "W3", "b3"), (gr.dW2, gr.db2, gr.dW3, gr.db3),
                                        qat_table(fmt)):
        want = (getattr(start, name).astype(np.float64) - opts.eta / 5 * g).astype(F32)
        want = np.clip(want.astype(np.float64), lo / scale, hi / scale).astype(F32)
        np.testing.assert_allclose(getattr(got, name), want, rtol=1e-6, atol=1e-7, err_msg=name)


def _planted(seed, n, F=64):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, F)) < 0.25).astype(np.uint8)
    return x, np.argmax(x[:, :32].reshape(n, 4, 8).sum(axis=2), axis=1)


def test_int_accuracy_tracks_float_and_qat_reports_integer_accuracy():
    from spykehw.golden.classifier import evaluate, train_classifier
    x, y = _planted(0, 2000)
    tx, ty = _planted(1, 500)
    opts = ClassifierOptions(hidden=64, eta=0.05, epochs=12, seed=3)
    res = train_classifier(x[300:], y[300:], x[:300], y[:300], 4, opts, progress=False)
    acc_float, _ = evaluate(res.best_params, tx, ty, opts)
    acc_int, _ = evaluate_int(res.best_params, preset("fpga-16"), tx, ty)
    assert abs(acc_int - acc_float) <= 0.01
    fmt = preset("fpga-8")
    qres = qat_finetune(res.best_params, fmt, x[300:], y[300:], x[:300], y[:300],
                        ClassifierOptions(hidden=64, eta=0.01, seed=4), 3, progress=False,
                        test_x=tx, test_y=ty)
    assert qres.history[0]["val_acc"] == evaluate_int(res.best_params, fmt, x[:300], y[:300])[0]
    q = quantize_classifier(qres.best_params, fmt)
    val_int = np.mean(forward_int(q, x[:300], keep_hidden=False).classes == y[:300])
    assert val_int == qres.best_val_acc == qres.history[qres.best_epoch]["val_acc"]
    assert qres.test_acc_best == np.mean(forward_int(q, tx).classes == ty)


@pytest.fixture(scope="module")
def sample_classifier():
    """A float classifier of the paper's MNIST size (H = 1000) trained for a few epochs on the
    float pipeline's features of the embedded MNIST sample, with its test features."""
    from spykehw.golden.classifier import train_classifier
    from spykehw.golden.options import NetworkOptions
    from spykehw.golden.pipeline import extract_features, train_conv1

    from spykehw.data import load_dataset

    ds = load_dataset("mnist-sample")
    opts = NetworkOptions()
    weights = train_conv1(ds.train_images[:1000], opts, None).weights
    tr = extract_features(ds.train_images, weights, opts, None).features
    te = extract_features(ds.test_images, weights, opts, None).features
    copts = ClassifierOptions(hidden=1000, epochs=4, eta=0.01, seed=0)
    res = train_classifier(tr[500:], ds.train_labels[500:], tr[:500], ds.train_labels[:500], 10, copts,
                           progress=False)
    return res.best_params, te, np.asarray(ds.test_labels), copts


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_keeps_a_real_classifier_close_to_float(sample_classifier, name):
    """Post-training quantization to each preset's classifier formats on a classifier trained on
    real features: within 2 points of the float classifier (the sweeps measure 0.1-0.5 points on
    the full datasets). Catches a preset whose fractions round most weights to 0 or saturate
    them (edge-4 once had 4 hidden fraction bits and fell to chance)."""
    from spykehw.golden.classifier import evaluate

    params, x, y, copts = sample_classifier
    acc_float, _ = evaluate(params, x, y, copts)
    acc_int, _ = evaluate_int(params, preset(name), x, y)
    assert acc_float > 0.85
    assert acc_int >= acc_float - 0.02, (name, acc_int, acc_float)
