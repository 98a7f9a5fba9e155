"""The fast training kernel (issue 15, item 7: whole-row W2 updates) against the kernel it
replaced (``tests/classifier_previous.py``, verbatim from before the change), on random sparse
binary inputs like the real features (about 4% active) and on denser, correlated ones (many rows
active in several samples of a batch).

Tolerance: none. The change only reorders which elements are visited, never the float64
expression or the float32 rounding of any element, so the parameters must be bit-identical
(float training and QAT alike), for every gradient, cost, dropout and batch size tested,
including batches wider than the 62 samples the row grouping handles with a bit pattern."""

from __future__ import annotations

import numpy as np
import pytest
from classifier_previous import previous_train_kernel
from spykehw.golden.classifier import TrainState
from spykehw.golden.classifier_kernels import MODES
from spykehw.golden.classifier_params import ClassifierParams, dropout_masks, init_params
from spykehw.golden.options import ClassifierOptions

NAMES = ("W2", "b2", "W3", "b3")


def _data(n, F, C, density, seed, shared=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, F)) < density).astype(np.uint8)
    if shared:  # a block of common features: many rows active in several samples of a batch
        x[:, :shared] |= (rng.random((n, shared)) < 0.4).astype(np.uint8)
    y = rng.integers(0, C, n).astype(np.int64)
    return x, y


def _params(F, H, C, opts, seed):
    p = init_params(F, H, C, opts, seed)
    # larger weights than the initial ones, so that z2 crosses the sg1 window often
    rng = np.random.default_rng(seed + 100)
    return ClassifierParams((p.W2 + rng.normal(0, 0.05, p.W2.shape)).astype(np.float32),
                            rng.normal(0, 0.05, p.b2.shape).astype(np.float32),
                            (p.W3 + rng.normal(0, 0.5, p.W3.shape)).astype(np.float32), p.b3)


def _previous(state: TrainState, x, y, opts, masks):
    F = state.shadow[0].shape[0]
    qat = state.qp is not None
    qp = state.qp if qat else np.ones((4, 3))
    previous_train_kernel(*state.shadow, *state.fwd, x, y, 0, len(x) // opts.batch, opts.batch,
                          masks, float(opts.eta), MODES[opts.gradient], opts.cost == "quadratic",
                          float(opts.sg1_window), qat, qp, np.zeros((F, opts.batch), np.bool_),
                          np.full(F, -1, np.int64), np.empty(F, np.int64))


def _same(a: TrainState, b: TrainState) -> None:
    for name, u, v in zip(NAMES, a.shadow, b.shadow):
        assert u.dtype == v.dtype and np.array_equal(u, v), f"{name} differs"
    for name, u, v in zip(NAMES, a.fwd, b.fwd):
        assert np.array_equal(u, v), f"forward copy of {name} differs"


CASES = [
    dict(gradient="sg1"), dict(gradient="sg2"), dict(gradient="relu"),
    dict(gradient="relu", cost="quadratic"), dict(gradient="sg1", dropout=0.0),
    dict(gradient="sg1", batch=3), dict(gradient="sg1", batch=1), dict(gradient="sg2", batch=64),
]


@pytest.mark.parametrize("shared", [0, 40])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_fast_kernel_is_bit_identical_to_the_previous_one(case, shared):
    F, H, C = 300, 64, 7
    opts = ClassifierOptions(hidden=H, eta=0.05, **case)
    n = opts.batch * max(4, 600 // opts.batch)
    x, y = _data(n, F, C, 0.04, seed=len(str(case)) + shared, shared=shared)
    p = _params(F, H, C, opts, seed=3)
    masks = dropout_masks(np.random.default_rng(5), n, H, opts.dropout)
    new, old = TrainState(p), TrainState(p)
    new.steps(x, y, 0, n // opts.batch, opts, masks)
    _previous(old, x, y, opts, masks)
    _same(new, old)
    assert not np.array_equal(new.shadow[0], p.W2), "nothing was trained"


@pytest.mark.parametrize("shared", [0, 40])
def test_fast_kernel_is_bit_identical_in_qat(shared):
    F, H, C = 300, 64, 7
    opts = ClassifierOptions(hidden=H, eta=0.05)
    n = 500
    x, y = _data(n, F, C, 0.04, seed=11, shared=shared)
    p = _params(F, H, C, opts, seed=4)
    qp = np.array([[2.0 ** 8, -2 ** 11, 2 ** 11 - 1], [2.0 ** 8, -2 ** 15, 2 ** 15 - 1],
                   [2.0 ** 6, -2 ** 7, 2 ** 7 - 1], [2.0 ** 6, -2 ** 11, 2 ** 11 - 1]])
    masks = dropout_masks(np.random.default_rng(6), n, H, opts.dropout)
    new, old = TrainState(p, qp), TrainState(p, qp)
    new.steps(x, y, 0, n // opts.batch, opts, masks)
    _previous(old, x, y, opts, masks)
    _same(new, old)


def test_epoch_with_masks_drawn_ahead_equals_masks_drawn_in_line(monkeypatch):
    """``TrainState.epoch`` draws the next chunk's masks on a helper thread: the stream and so
    the result are those of drawing every chunk's masks in order (several chunks here)."""
    import spykehw.golden.classifier as clf

    monkeypatch.setattr(clf, "_CHUNK_ROWS", 50)
    F, H, C = 200, 32, 5
    opts = ClassifierOptions(hidden=H, eta=0.05)
    x, y = _data(403, F, C, 0.05, seed=2)
    p = _params(F, H, C, opts, seed=1)
    new, old = TrainState(p), TrainState(p)
    new.epoch(x, y, opts, np.random.default_rng([0, 1]))
    rng = np.random.default_rng([0, 1])
    total = len(x) // opts.batch
    for b0 in range(0, total, 10):
        nb = min(10, total - b0)
        masks = dropout_masks(rng, nb * opts.batch, H, opts.dropout)
        sl = slice(b0 * opts.batch, (b0 + nb) * opts.batch)
        _previous(old, np.ascontiguousarray(x[sl]), y[sl], opts, masks)
    _same(new, old)
