"""Class-balanced training (``classifier.class_weights``, issue 15 item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from spykehw.golden.classifier import train_steps
from spykehw.golden.classifier_params import ClassifierParams, class_weights, dropout_masks
from spykehw.golden.classifier_reference import gradients, train_steps_dense
from spykehw.golden.option_sets import apply_settings, options_preset, parse_setting
from spykehw.golden.options import ClassifierOptions, OptionsError

F32 = np.float32


def test_class_weights_by_hand():
    # N = 4 rows, C = 3 classes: class 0 has 3 rows, class 1 one, class 2 none.
    w = class_weights(np.array([0, 1, 0, 0]), 3, "balanced")
    np.testing.assert_allclose(w, [4 / 9, 4 / 3, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(class_weights(np.array([0, 1, 0, 0]), 3, "uniform"), [1.0, 1.0, 1.0])


def test_weighted_gradients_are_those_of_the_weighted_cost():
    """Oracle written apart from the model: ReLU net, cost sum_i w[y_i] * CE_i, central
    differences; the reference's batch sums with ``cw`` must be its gradient."""
    rng = np.random.default_rng(5)
    F, H, C, n = 6, 5, 3, 4
    p = ClassifierParams(rng.normal(0, 0.6, (F, H)), rng.normal(0, 0.3, H),
                         rng.normal(0, 0.6, (H, C)), rng.normal(0, 0.3, C))
    x = (rng.random((n, F)) < 0.5).astype(np.float64)
    y = np.array([0, 0, 2, 1])
    cw = np.array([0.5, 3.0, 1.25])

    def cost(q):
        z2 = x @ q.W2 + q.b2
        z3 = np.where(z2 > 0, z2, 0.0) @ q.W3 + q.b3
        return sum(cw[y[i]] * (np.log(np.exp(z3[i]).sum()) - z3[i, y[i]]) for i in range(n))

    gr = gradients(p, x, y, ClassifierOptions(gradient="relu"), cw=cw)
    eps = 1e-6
    for name, got in (("W2", gr.dW2), ("b2", gr.db2), ("W3", gr.dW3), ("b3", gr.db3)):
        arr = getattr(p, name)
        for idx in np.ndindex(arr.shape):
            plus, minus = p.copy(), p.copy()
            getattr(plus, name)[idx] += eps
            getattr(minus, name)[idx] -= eps
            want = (cost(plus) - cost(minus)) / (2 * eps)
            assert got[idx] == pytest.approx(want, rel=1e-5, abs=1e-8), (name, idx)


def _problem(labels):
    rng = np.random.default_rng(11)
    F, H, C, n = 40, 30, 4, len(labels)
    x = (rng.random((n, F)) < 0.2).astype(np.uint8)
    p = ClassifierParams(rng.normal(0, 0.08, (F, H)).astype(F32), rng.normal(0, 0.05, H).astype(F32),
                         rng.normal(0, 1.0, (H, C)).astype(F32), rng.normal(0, 0.5, C).astype(F32))
    return p, x, np.asarray(labels), dropout_masks(np.random.default_rng(2), n, H, 0.5)


def test_balanced_fast_path_equals_dense_reference_on_unbalanced_labels():
    y = np.r_[np.zeros(35, int), np.ones(15, int), np.full(8, 2), np.full(2, 3)]
    np.random.default_rng(4).shuffle(y)
    p, x, y, masks = _problem(y)
    opts = ClassifierOptions(eta=0.05, batch=5, class_weights="balanced")
    fast = train_steps(p, x, y, opts, masks)
    dense = train_steps_dense(p, x, y, opts, masks)
    plain = train_steps(p, x, y, ClassifierOptions(eta=0.05, batch=5), masks)
    for name in ("W2", "b2", "W3", "b3"):
        np.testing.assert_allclose(getattr(fast, name), getattr(dense, name), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    assert not np.array_equal(fast.W3, plain.W3)  # the weights did change something


def test_balanced_on_balanced_labels_is_bit_identical_to_unweighted():
    p, x, y, masks = _problem(np.tile(np.arange(4), 15))  # 15 rows per class: all weights 1.0
    a = train_steps(p, x, y, ClassifierOptions(eta=0.05, batch=5, class_weights="balanced"), masks)
    b = train_steps(p, x, y, ClassifierOptions(eta=0.05, batch=5), masks)
    for name in ("W2", "b2", "W3", "b3"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_option_is_settable_and_checked():
    opts = apply_settings(options_preset("authors-code", "emnist"),
                          [parse_setting("classifier.class_weights=balanced")])
    assert opts.classifier.class_weights == "balanced"
    assert options_preset("authors-code", "emnist").classifier.class_weights == "uniform"
    with pytest.raises(OptionsError, match="classifier.class_weights"):
        apply_settings(options_preset("authors-code", "emnist"),
                       [parse_setting("classifier.class_weights=inverse")])
