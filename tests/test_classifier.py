"""Float classifier (spec 7): gradients, surrogate window, dropout, fast path vs dense reference,
training loop and model selection."""

from __future__ import annotations

import numpy as np
import pytest
from spykehw.golden.classifier import (
    TrainResult,
    best_epoch_index,
    evaluate,
    forward,
    predict,
    run_epochs,
    train_classifier,
    train_steps,
)
from spykehw.golden.classifier_params import (
    ClassifierParams,
    check_binary,
    dropout_masks,
    init_params,
    split_validation,
)
from spykehw.golden.classifier_reference import gradients, train_steps_dense
from spykehw.golden.errors import SpykehwError
from spykehw.golden.options import ClassifierOptions

F32 = np.float32


# --- independent oracles --------------------------------------------------------------------

def _relu_losses(W2, b2, W3, b3, x, y):
    """Written out separately from the model: ReLU hidden, no floor; CE and quadratic losses."""
    z2 = x @ W2 + b2
    a2 = np.where(z2 > 0, z2, 0.0)
    z3 = a2 @ W3 + b3
    n = len(y)
    ce = np.mean([np.log(np.sum(np.exp(z3[i]))) - z3[i, y[i]] for i in range(n)])
    t = np.eye(W3.shape[1])[y]
    quad = np.mean([0.5 * np.sum((np.maximum(z3[i], 0) - t[i]) ** 2) for i in range(n)])
    return ce, quad, z2, z3


def _random_net(seed, F=7, H=6, C=4, n=5, b3_shift=0.0):
    rng = np.random.default_rng(seed)
    p = ClassifierParams(rng.normal(0, 0.6, (F, H)), rng.normal(0, 0.3, H),
                         rng.normal(0, 0.6, (H, C)), rng.normal(b3_shift, 0.3, C))
    x = (rng.random((n, F)) < 0.5).astype(np.float64)
    y = rng.integers(0, C, n)
    return p, x, y


def _finite_difference(loss, p: ClassifierParams, eps=1e-6):
    grads = []
    for name in ("W2", "b2", "W3", "b3"):
        arr = getattr(p, name)
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = p.copy(), p.copy()
            getattr(plus, name)[idx] += eps
            getattr(minus, name)[idx] -= eps
            g[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("cost", ["softmax_ce", "quadratic"])
def test_relu_gradient_matches_finite_differences(cost):
    opts = ClassifierOptions(gradient="relu", cost=cost, dropout=0.0)
    # quadratic: keep every z3 > 0 so the quirk (no ReLU' factor on delta3) is not involved
    for seed in range(20):
        p, x, y = _random_net(seed, b3_shift=5.0 if cost == "quadratic" else 0.0)
        _, _, z2, z3 = _relu_losses(p.W2, p.b2, p.W3, p.b3, x, y)
        if np.abs(z2).min() > 1e-3 and (cost == "softmax_ce" or z3.min() > 1e-3):
            break
    else:
        pytest.fail("no random net away from the kinks")
    which = 0 if cost == "softmax_ce" else 1

    def loss(q):
        return _relu_losses(q.W2, q.b2, q.W3, q.b3, x, y)[which]

    gr = gradients(p, x, y, opts)
    n = len(y)
    assert gr.loss == pytest.approx(loss(p), rel=1e-12)
    fd = _finite_difference(loss, p)
    for got, want in zip((gr.dW2, gr.db2, gr.dW3, gr.db3), fd):
        np.testing.assert_allclose(got / n, want, rtol=1e-5, atol=1e-8)


def test_quadratic_delta3_has_no_relu_factor():
    # z3 = [-2, 0.5] (no hidden unit active), y = 0: a3 = relu(z3) = [0, 0.5], delta3 = a3 - y
    opts = ClassifierOptions(gradient="relu", cost="quadratic", dropout=0.0)
    p = ClassifierParams(np.zeros((1, 1)), np.array([-1.0]), np.zeros((1, 2)), np.array([-2.0, 0.5]))
    gr = gradients(p, np.zeros((1, 1)), np.array([0]), opts)
    np.testing.assert_array_equal(gr.delta3, [[-1.0, 0.5]])
    assert gr.loss == pytest.approx(0.5 * (1.0 + 0.25))


# --- surrogate window and dropout ------------------------------------------------------------

# z2 = b2 (no active input): exactly 0, exactly 0.125, the next float32 above 0.125,
# a tiny negative, inside the window, far above
_Z2 = np.array([0.0, 0.125, np.nextafter(F32(0.125), F32(1)), -1e-7, 0.0625, 3.0], dtype=F32)
_W3 = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 1], [5, 0, 1], [1, 0, 2], [0, 1, 0]], dtype=F32)


def _window_case():
    p = ClassifierParams(np.zeros((1, 6), F32), _Z2.copy(), _W3.copy(), np.array([0.5, 0, 0], F32))
    x = np.zeros((1, 1), np.uint8)
    y = np.array([2])
    # by hand: a2 = [1,1,1,0,1,1]; a2 W3 + b3 = [2.5, 3, 3] -> floor [2, 3, 3]
    e = np.exp([2.0, 3.0, 3.0])
    d3 = e / e.sum() - [0, 0, 1]
    return p, x, y, d3


@pytest.mark.parametrize("gradient, gate", [("sg1", [1, 1, 0, 0, 1, 0]), ("sg2", [1, 1, 1, 0, 1, 1])])
def test_surrogate_window_boundaries(gradient, gate):
    p, x, y, d3 = _window_case()
    opts = ClassifierOptions(gradient=gradient, dropout=0.0, batch=1, eta=1.0)
    gr = gradients(p, x, y, opts)
    np.testing.assert_array_equal(gr.z3, [[2.0, 3.0, 3.0]])
    np.testing.assert_allclose(gr.delta3, [d3], rtol=1e-12)
    want = (_W3.astype(np.float64) @ d3) * np.array(gate)
    np.testing.assert_allclose(gr.delta2[0], want, rtol=1e-12, atol=0)
    assert all((gr.delta2[0] != 0) == np.array(gate, bool))
    # the fast path applies the same gate: b2 moves exactly where the gate is open
    new = train_steps(p, x, y, opts, np.zeros((1, 6), bool))
    moved = new.b2 != p.b2
    np.testing.assert_array_equal(moved, np.array(gate, bool))
    np.testing.assert_allclose(new.b2, (p.b2 - want).astype(F32), rtol=1e-6)


@pytest.mark.parametrize("gradient", ["sg1", "sg2", "relu"])
def test_dropout_sets_z2_minus_one_and_blocks_gradient(gradient):
    p, x, y, _ = _window_case()
    x = np.ones((1, 1), np.uint8)
    p = ClassifierParams(np.zeros((1, 6), F32), p.b2, p.W3, p.b3)  # z2 = b2, x active
    mask = np.zeros((1, 6), bool)
    mask[0, [0, 4]] = True  # both would be inside the sg1 window
    opts = ClassifierOptions(gradient=gradient, batch=1, eta=1.0)
    gr = gradients(p, x, y, opts, mask)
    assert gr.z2[0, 0] == -1.0 and gr.z2[0, 4] == -1.0
    assert gr.a2[0, 0] == 0.0 and gr.a2[0, 4] == 0.0
    for h in (0, 4):
        assert gr.delta2[0, h] == 0.0 and gr.db2[h] == 0.0
        assert not gr.dW2[:, h].any() and not gr.dW3[h].any()
    assert gr.delta2[0, 1] != 0.0  # an undropped unit in the window still learns
    new = train_steps(p, x, y, opts, mask)
    for h in (0, 4):
        assert new.b2[h] == p.b2[h] and new.W2[0, h] == p.W2[0, h]
        np.testing.assert_array_equal(new.W3[h], p.W3[h])
    assert new.b2[1] != p.b2[1]


def test_dropout_is_not_rescaled_at_evaluation():
    # p = 0 at evaluation: an (undropped) unit contributes W3 with weight 1, never 1/(1-p)
    p = ClassifierParams(np.zeros((1, 1), F32), np.array([0.0], F32), np.array([[2.0, 0.0]], F32),
                         np.zeros(2, F32))
    logits, cls = predict(p, np.zeros((1, 1), np.uint8), ClassifierOptions(dropout=0.5))
    np.testing.assert_array_equal(logits, [[2.0, 0.0]])


# --- fast path == dense reference ------------------------------------------------------------

@pytest.mark.parametrize("gradient, cost", [("sg1", "softmax_ce"), ("sg2", "softmax_ce"),
                                            ("relu", "softmax_ce"), ("relu", "quadratic")])
def test_fast_path_equals_dense_reference(gradient, cost):
    rng = np.random.default_rng(7)
    F, H, C, n = 40, 30, 5, 60
    x = (rng.random((n, F)) < 0.2).astype(np.uint8)
    y = rng.integers(0, C, n)
    p = ClassifierParams(rng.normal(0, 0.08, (F, H)).astype(F32), rng.normal(0, 0.05, H).astype(F32),
                         rng.normal(0, 1.0, (H, C)).astype(F32), rng.normal(0, 0.5, C).astype(F32))
    opts = ClassifierOptions(gradient=gradient, cost=cost, eta=0.05, batch=5, dropout=0.5)
    masks = dropout_masks(np.random.default_rng(1), n, H, 0.5)
    fast = train_steps(p, x, y, opts, masks)
    dense = train_steps_dense(p, x, y, opts, masks)
    # Both accumulate in float64 and round each parameter to float32 once per step; only the
    # order of float64 summation differs, so they agree to a few float32 ulps.
    for name in ("W2", "b2", "W3", "b3"):
        got, want = getattr(fast, name), getattr(dense, name)
        assert got.dtype == F32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=name)
        assert np.any(got != getattr(p, name)), f"{name} never updated"
    # evaluation kernel == dense forward
    logits = forward(fast, x, opts)
    gr = gradients(fast, x, y, opts)
    if gradient == "relu":
        np.testing.assert_allclose(logits, gr.z3, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(logits, gr.z3)


def test_partial_last_batch_is_not_used():
    rng = np.random.default_rng(3)
    x = (rng.random((13, 8)) < 0.5).astype(np.uint8)
    y = rng.integers(0, 3, 13)
    opts = ClassifierOptions(hidden=4, batch=5, dropout=0.0, eta=0.5)
    p = init_params(8, 4, 3, opts, 0)
    masks = np.zeros((10, 4), bool)
    a = train_steps(p, x, y, opts, masks)
    b = train_steps(p, x[:10], y[:10], opts, masks)
    for name in ("W2", "b2", "W3", "b3"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# --- init, split, masks -------------------------------------------------------------------------

def test_init_truncated_normal_and_uniform():
    opts = ClassifierOptions()
    p = init_params(300, 200, 10, opts, seed=4)
    assert p.W2.dtype == F32 and p.W2.shape == (300, 200) and p.W3.shape == (200, 10)
    assert np.abs(p.W2).max() <= 0.02 and np.abs(p.W3).max() <= 0.02
    # std of N(0, 0.01) truncated at 2 std: 0.01 * 0.8796
    assert p.W2.std() == pytest.approx(0.008796, rel=0.02)
    assert not p.b2.any() and not p.b3.any()
    q = init_params(300, 200, 10, opts, seed=4)
    np.testing.assert_array_equal(p.W2, q.W2)
    assert np.any(init_params(300, 200, 10, opts, seed=5).W2 != p.W2)
    u = init_params(300, 200, 10, ClassifierOptions(init="uniform_fan_in"), seed=4)
    assert np.abs(u.W2).max() <= np.sqrt(4 / 300) and np.abs(u.W2).max() > 0.9 * np.sqrt(4 / 300)
    assert np.abs(u.W3).max() <= np.sqrt(4 / 200)


def test_split_validation_takes_the_first_rows():
    x = np.arange(60000)[:, None]
    y = np.arange(60000)
    tx, ty, vx, vy = split_validation(x, y, 0.09)
    assert len(vx) == 5400 and len(tx) == 54600  # the MNIST notebook numbers (spec 1.5)
    assert vy[0] == 0 and vy[-1] == 5399 and ty[0] == 5400


def test_dropout_masks_are_seeded_and_chunk_independent():
    a = dropout_masks(np.random.default_rng([3, 1]), 50, 20, 0.5)
    rng = np.random.default_rng([3, 1])
    b = np.concatenate([dropout_masks(rng, 17, 20, 0.5), dropout_masks(rng, 33, 20, 0.5)])
    np.testing.assert_array_equal(a, b)
    assert 0.4 < a.mean() < 0.6
    assert not dropout_masks(rng, 5, 20, 0.0).any()


def test_bad_input_is_a_spykehw_error():
    with pytest.raises(SpykehwError, match="binary"):
        check_binary(np.array([[0, 2]]))
    with pytest.raises(SpykehwError, match="labels"):
        train_classifier(np.zeros((10, 3), np.uint8), np.full(10, 5), np.zeros((2, 3), np.uint8),
                         np.zeros(2), 3, ClassifierOptions(hidden=2, epochs=1), progress=False)


# --- model selection ----------------------------------------------------------------------

def test_best_epoch_index_is_strict():
    assert best_epoch_index([0.5, 0.7, 0.7, 0.6]) == 1
    assert best_epoch_index([0.3, 0.3, 0.3]) == 0
    assert best_epoch_index([0.1, 0.2, 0.3]) == 2
    assert best_epoch_index([float("nan"), 0.2, float("nan")]) == 1
    assert best_epoch_index([]) == -1


class _CountingState:
    """Fake training state: params hold the number of epochs trained so far."""

    def __init__(self):
        self.epochs_done = 0

    def params(self):
        v = np.array([float(self.epochs_done)])
        return ClassifierParams(v.reshape(1, 1), v.copy(), v.reshape(1, 1), v.copy())

    def epoch(self, x, y, opts, rng, progress=None):
        self.epochs_done += 1


def test_run_epochs_snapshots_before_training():
    val_by_epochs_done = [0.2, 0.5, 0.9, 0.9, 0.4]  # strictly best after 2 epochs

    def evaluate_fn(p, x, y):
        k = int(p.b2[0])
        return (val_by_epochs_done[k] if len(x) == 2 else 0.0), float(k)

    res = run_epochs(_CountingState(), evaluate_fn, np.zeros((5, 1)), np.zeros(5), np.zeros((2, 1)),
                     np.zeros(2), ClassifierOptions(batch=1), 4, progress=False,
                     test_x=np.zeros((3, 1)), test_y=np.zeros(3))
    assert isinstance(res, TrainResult)
    assert res.best_epoch == 2 and res.best_params.b2[0] == 2.0
    assert res.final_params.b2[0] == 4.0  # final params are never validated
    assert [h["val_acc"] for h in res.history] == [0.2, 0.5, 0.9, 0.9]
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3]
    assert res.best_val_acc == 0.9


# --- end to end -----------------------------------------------------------------------------

def planted(seed, n, F=64):
    """Random binary features; the class is the group of 8 features (of 4) with most spikes."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, F)) < 0.25).astype(np.uint8)
    y = np.argmax(x[:, :32].reshape(n, 4, 8).sum(axis=2), axis=1)
    return x, y


def test_tiny_problem_is_learned_and_deterministic():
    x, y = planted(0, 2000)
    tx, ty = planted(1, 500)
    opts = ClassifierOptions(hidden=64, eta=0.05, epochs=12, seed=3)
    res = train_classifier(x[300:], y[300:], x[:300], y[:300], 4, opts, test_x=tx, test_y=ty,
                           progress=False)
    assert res.history[0]["val_acc"] < 0.5
    assert res.test_acc_best > 0.85 and res.test_acc_final > 0.85
    assert res.best_epoch == best_epoch_index([h["val_acc"] for h in res.history])
    acc, _ = evaluate(res.best_params, x[:300], y[:300], opts)
    assert acc == res.best_val_acc
    again = train_classifier(x[300:], y[300:], x[:300], y[:300], 4, opts, progress=False)
    np.testing.assert_array_equal(again.final_params.W2, res.final_params.W2)
    assert [h["val_acc"] for h in again.history] == [h["val_acc"] for h in res.history]
