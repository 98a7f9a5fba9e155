"""The float classifier of SpykeFlow and its training (spec section 7): the reference that follows
the authors' TensorFlow notebooks.

Model
-----
``x`` in {0,1}^F (uint8 rows), ``z2 = x W2 + b2``; during training each (sample, unit) is dropped
with probability ``p`` and a dropped unit gets ``z2 = -1`` (no spike, zero gradient, no
``1/(1-p)`` rescaling). Binary hidden layer (``sg1``/``sg2``): ``a2 = 1[z2 >= 0]``,
``z3 = floor(a2 W3 + b3)``. ``relu`` (the "actual gradient" notebooks): ``a2 = max(z2, 0)``,
``z3 = a2 W3 + b3`` (no floor). Cost ``softmax_ce``: ``a3 = softmax(z3)``, loss = mean CE;
``quadratic`` (relu only): ``a3 = relu(z3)``, loss = mean of ``0.5 * |a3 - y|^2``.

Backward: ``delta3 = a3 - y`` (straight through the floor; for ``quadratic`` without the ReLU'
factor, as in the notebook), ``delta2 = (delta3 W3^T) * g(z2)`` with ``g = 1[0 <= z2 <= 0.125]``
(sg1, closed at both ends), ``g = 1[z2 >= 0]`` (sg2 and relu). Gradients are summed over the
batch (``dW3 = a2^T delta3``, ``dW2 = x^T delta2``) and the update is
``W -= (eta/batch) dW``, ``b -= eta * mean_batch(delta)``, all four from the pre-update weights.
With ``class_weights = "balanced"`` (an option, not the authors') each sample's ``delta3`` is
first scaled by ``N / (C * n_c)`` of its class (``classifier_params.class_weights``).

Numbers
-------
Parameters are float32 like the reference. Every sum (``z2``, ``z3``, the batch sums of the
gradients) is accumulated in float64 and each parameter is rounded to float32 exactly once per
update (``W32 = float32(float64(W32) - (eta/batch) * dW64)``).

The parameters, the input checks, the initialisation and the dropout masks are in
:mod:`spykehw.golden.classifier_params`; the numba kernels (and how they are fast) in
:mod:`spykehw.golden.classifier_kernels`; the dense numpy reference of the same math in
:mod:`spykehw.golden.classifier_reference`.

Determinism
-----------
Determinism
-----------
``init_params(..., seed)`` draws from ``np.random.default_rng([seed, 0])``. Dropout masks come
from ``np.random.default_rng([seed, 1])``: for each epoch in turn, the masks of the train rows
``0 .. n_batches*batch-1`` are ``rng.random((rows, H), dtype=float32) < dropout``, drawn in row
order (chunking does not change the stream); with ``dropout == 0`` nothing is drawn. Training is
serial, and evaluation is per-row, so results do not depend on the thread count.
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .classifier_kernels import MODES, forward_kernel, train_kernel
from .classifier_params import (
    ClassifierError,
    ClassifierParams,
    check_binary,
    check_labels,
    class_weights,
    dropout_masks,
    init_params,
)
from .options import ClassifierOptions
from .progress import Progress, format_duration

__all__ = [
    "TrainResult",
    "TrainState",
    "forward",
    "predict",
    "softmax_ce",
    "evaluate",
    "train_steps",
    "best_epoch_index",
    "run_epochs",
    "train_classifier",
]

_CHUNK_ROWS = 2500
"""Rows per kernel call while training: progress granularity and dropout-mask memory only."""


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_classifier` (or of QAT fine-tuning).

    ``best_epoch`` is the number of training epochs before the best-validation snapshot
    (0 = initial params); ``history[e]`` holds the metrics evaluated after ``e`` epochs, just
    before epoch ``e`` is trained, and that epoch's wall time (evaluation + training).
    Accuracies are fractions in [0, 1]; test accuracies are ``None`` without a test set.
    """

    best_params: ClassifierParams
    final_params: ClassifierParams
    best_epoch: int
    best_val_acc: float
    history: list[dict] = field(default_factory=list)
    test_acc_final: float | None = None
    test_acc_best: float | None = None
    seconds: float = 0.0



# --- forward, cost, prediction ----------------------------------------------------------------

def forward(params: ClassifierParams, x: np.ndarray, opts: ClassifierOptions) -> np.ndarray:
    """Logits ``(N, C)`` float64 with p = 0: ``floor(z3)`` for sg1/sg2, ``z3`` for relu."""
    x = check_binary(x)
    if x.shape[1] != params.features:
        raise ClassifierError(f"features: expected {params.features} columns, found {x.shape[1]}")
    return forward_kernel(params.W2, params.b2, params.W3, params.b3, x, MODES[opts.gradient])


def predict(params: ClassifierParams, x: np.ndarray, opts: ClassifierOptions):
    """``(logits (N, C) float64, classes (N,) int64)``; class = argmax, lowest index on ties."""
    logits = forward(params, x, opts)
    return logits, np.argmax(logits, axis=1)


def softmax_ce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample softmax cross-entropy ``logsumexp(z) - z[y]`` (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - z[np.arange(len(z)), y]


def _cost(logits: np.ndarray, y: np.ndarray, opts: ClassifierOptions) -> np.ndarray:
    if opts.cost == "quadratic":
        a3 = np.maximum(logits, 0.0)
        a3[np.arange(len(y)), y] -= 1.0
        return 0.5 * (a3 * a3).sum(axis=1)
    return softmax_ce(logits, y)


def evaluate(params: ClassifierParams, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions):
    """``(accuracy, mean cost)`` with p = 0 (``(nan, nan)`` for an empty set)."""
    if len(y) == 0:
        return float("nan"), float("nan")
    logits, cls = predict(params, x, opts)
    y = np.asarray(y, dtype=np.int64)
    return float(np.mean(cls == y)), float(_cost(logits, y, opts).mean())



def _n_batches(n: int, opts: ClassifierOptions) -> int:
    return n // opts.batch


# --- fast training ---------------------------------------------------------------------------

class TrainState:
    """Mutable training state around the kernel: shadow params and forward params.

    Float training: the forward params *are* the shadow params. QAT
    (:mod:`spykehw.golden.qat`): ``qp`` holds ``(scale, lo, hi)`` per tensor and the forward
    params are float64 quantized copies.
    """

    def __init__(self, params: ClassifierParams, qp: np.ndarray | None = None) -> None:
        self.shadow = [np.array(a, dtype=np.float32, order="C") for a in
                       (params.W2, params.b2, params.W3, params.b3)]
        self.qp = qp
        if qp is None:
            self.fwd = self.shadow
        else:
            self.fwd = [np.empty(a.shape, np.float64) for a in self.shadow]
            for a, f, q in zip(self.shadow, self.fwd, qp):
                scale, lo, hi = q
                a[...] = np.clip(a, lo / scale, hi / scale)
                f[...] = np.clip(np.floor(a.astype(np.float64) * scale + 0.5), lo, hi) / scale

    def params(self) -> ClassifierParams:
        """A copy of the shadow params."""
        return ClassifierParams(*(a.copy() for a in self.shadow))

    def steps(self, x: np.ndarray, y: np.ndarray, row0: int, n_batches: int,
              opts: ClassifierOptions, masks: np.ndarray, cw: np.ndarray | None = None) -> None:
        """Train ``n_batches`` batches from row ``row0``; ``cw`` the class weights (default:
        computed from the trained rows' labels, see :func:`class_weights`)."""
        if n_batches <= 0:
            return
        if cw is None:
            cw = class_weights(y[row0:row0 + n_batches * opts.batch], self.shadow[2].shape[1],
                               opts.class_weights)
        qat = self.qp is not None
        qp = self.qp if qat else np.ones((4, 3))  # unused placeholder
        train_kernel(*self.shadow, *self.fwd, x, y, row0, n_batches, opts.batch,
                     np.ascontiguousarray(masks, dtype=np.bool_), float(opts.eta),
                     MODES[opts.gradient], opts.cost == "quadratic", float(opts.sg1_window),
                     qat, qp, cw)

    def epoch(self, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions,
              rng: np.random.Generator, progress: Progress | None = None) -> None:
        """One pass over ``len(x) // batch`` batches in stored order."""
        H = self.shadow[0].shape[1]
        total = _n_batches(len(x), opts)
        per = max(1, _CHUNK_ROWS // opts.batch)
        starts = list(range(0, total, per))
        if not starts:
            return
        cw = class_weights(y[:total * opts.batch], self.shadow[2].shape[1], opts.class_weights)

        def masks_of(b0: int) -> np.ndarray:
            return dropout_masks(rng, min(per, total - b0) * opts.batch, H, opts.dropout)

        # The next chunk's dropout masks are drawn on another thread while the kernel (which
        # releases the GIL) trains this chunk; one thread draws them all, in chunk order, so
        # the random stream is the same as drawing them in line.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(masks_of, starts[0])
            for n, b0 in enumerate(starts):
                masks = pending.result()
                if n + 1 < len(starts):
                    pending = pool.submit(masks_of, starts[n + 1])
                nb = min(per, total - b0)
                self.steps(x, y, b0 * opts.batch, nb, opts, masks, cw)
                if progress is not None:
                    progress.advance(nb * opts.batch)


def train_steps(params: ClassifierParams, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions,
                masks: np.ndarray) -> ClassifierParams:
    """The fast path of :func:`train_steps_dense`: same inputs, same masks, float32 result."""
    x = check_binary(x)
    y = np.ascontiguousarray(y, dtype=np.int64)
    st = TrainState(params)
    st.steps(x, y, 0, _n_batches(len(x), opts), opts, masks)
    return st.params()



# --- the epoch loop ---------------------------------------------------------------------------

def best_epoch_index(val_accs) -> int:
    """Index of the first strictly-best validation accuracy (the notebooks' ``>`` rule);
    NaN never wins; -1 if nothing qualifies."""
    best, idx = -math.inf, -1
    for i, a in enumerate(val_accs):
        if a > best:  # NaN compares False
            best, idx = a, i
    return idx


def run_epochs(state: TrainState, evaluate_fn: Callable, train_x, train_y, val_x, val_y,
               opts: ClassifierOptions, epochs: int, *, test_x=None, test_y=None,
               seed: int | None = None, progress: bool = True, label: str = "classifier") -> TrainResult:
    """The notebooks' epoch loop (spec 7) around a :class:`TrainState`.

    ``evaluate_fn(params, x, y) -> (acc, cost)`` scores a params snapshot (float model, or the
    integer model in QAT). Per epoch: evaluate train and validation, snapshot if validation
    accuracy is strictly better than every earlier one, then train one epoch.
    """
    seed = opts.seed if seed is None else seed
    rng = np.random.default_rng([seed, 1])
    history: list[dict] = []
    best_params, best_epoch, best_val = None, -1, -math.inf
    t_start = time.perf_counter()
    for e in range(epochs):
        t0 = time.perf_counter()
        snap = state.params()
        prog = Progress(f"{label} epoch {e + 1}/{epochs}", total=_n_batches(len(train_x), opts) * opts.batch,
                        enabled=progress, interval=10.0)
        # (Evaluating the snapshot on another thread while the epoch trains was tried: on 2
        # cores shared with other jobs it made the epoch slower, not faster.)
        tr_acc, tr_cost = evaluate_fn(snap, train_x, train_y)
        va_acc, va_cost = evaluate_fn(snap, val_x, val_y)
        state.epoch(train_x, train_y, opts, rng, prog)
        prog.close()
        if va_acc > best_val:
            best_val, best_params, best_epoch = va_acc, snap, e
        dt = time.perf_counter() - t0
        history.append(dict(epoch=e, train_acc=tr_acc, train_cost=tr_cost, val_acc=va_acc,
                            val_cost=va_cost, seconds=dt))
        if progress:
            eta = (time.perf_counter() - t_start) / (e + 1) * (epochs - e - 1)
            print(f"{label} epoch {e + 1}/{epochs}: before it train {100 * tr_acc:.2f}% "
                  f"(cost {tr_cost:.4f}), val {100 * va_acc:.2f}% (cost {va_cost:.4f}); "
                  f"{prog.rate:,.0f} img/s training, {dt:.1f}s, ETA {format_duration(eta)}",
                  file=sys.stderr, flush=True)
    final = state.params()
    if best_params is None:  # no validation rows: nothing was validated, keep the final params
        best_params, best_epoch = final, epochs
    t_final = t_best = None
    if test_x is not None and test_y is not None and len(test_y):
        t_final = evaluate_fn(final, test_x, test_y)[0]
        t_best = evaluate_fn(best_params, test_x, test_y)[0]
        if progress:
            print(f"{label}: final test {100 * t_final:.2f}%, test at best val (epoch {best_epoch}) "
                  f"{100 * t_best:.2f}%", file=sys.stderr, flush=True)
    return TrainResult(best_params=best_params, final_params=final, best_epoch=best_epoch,
                       best_val_acc=best_val if best_val > -math.inf else float("nan"),
                       history=history, test_acc_final=t_final, test_acc_best=t_best,
                       seconds=time.perf_counter() - t_start)


def train_classifier(train_x, train_y, val_x, val_y, n_classes: int,
                     opts: ClassifierOptions = ClassifierOptions(), *, test_x=None, test_y=None,
                     params: ClassifierParams | None = None, progress: bool = True) -> TrainResult:
    """Train the float classifier for ``opts.epochs`` epochs (spec 7).

    ``params`` (optional) replaces ``init_params(F, opts.hidden, n_classes, opts, opts.seed)``.
    """
    train_x = check_binary(train_x, "train features")
    val_x = check_binary(val_x, "validation features")
    F = train_x.shape[1]
    if val_x.shape[1] != F and len(val_x):
        raise ClassifierError(f"validation features: expected {F} columns, found {val_x.shape[1]}")
    train_y = check_labels(train_y, len(train_x), n_classes, "train labels")
    val_y = check_labels(val_y, len(val_x), n_classes, "validation labels")
    # An empty split would make every accuracy NaN and pick the "best" epoch on NaN.
    if len(train_x) == 0:
        raise ClassifierError("train features: no rows (the training split is empty)")
    if len(val_x) == 0:
        raise ClassifierError("validation features: no rows (the validation split is empty)")
    if test_x is not None and len(test_x) == 0:
        raise ClassifierError("test features: no rows (the test split is empty)")
    if test_x is not None:
        test_x = check_binary(test_x, "test features")
        test_y = check_labels(test_y, len(test_x), n_classes, "test labels")
    if params is None:
        params = init_params(F, opts.hidden, n_classes, opts, opts.seed)
    elif params.features != F or params.classes != n_classes:
        raise ClassifierError(f"params: expected {F} features and {n_classes} classes, found "
                              f"{params.features} and {params.classes}")

    def evaluate_fn(p, x, y):
        return evaluate(p, x, y, opts)

    return run_epochs(TrainState(params), evaluate_fn, train_x, train_y, val_x, val_y, opts,
                      opts.epochs, test_x=test_x, test_y=test_y, progress=progress)
