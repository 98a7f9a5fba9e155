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

Numbers
-------
Parameters are float32 like the reference. Every sum (``z2``, ``z3``, the batch sums of the
gradients) is accumulated in float64 and each parameter is rounded to float32 exactly once per
update (``W32 = float32(float64(W32) - (eta/batch) * dW64)``).

Speed
-----
``x`` and (for sg1/sg2) ``a2`` are binary, so the numba kernels add the weight rows of the
active inputs instead of multiplying, and the update touches only the rows of ``W2`` whose input
was active in the batch. :func:`train_steps_dense` and :func:`gradients` are the plain dense
numpy statement of the same math; the tests check the kernels against them. Training is serial
(batches of 5 are too small for numba's parallel regions to pay off: on 2 shared cores a
parallel region per batch made it over ten times slower); evaluation runs images in parallel.
The update of ``W2`` subtracts whole rows (vectorised) where that is exact: a row active in one
sample of the batch takes that sample's ``delta2``, rows active in several are grouped by their
set of samples; subtracting ``lr * 0.0`` leaves a float32 value unchanged, so the result is the
same as updating only the nonzero columns. The forward pass reads each row active in the batch
once for all its samples (each sample's sum still runs over its rows in ascending order). The
next chunk's dropout masks are drawn on a helper thread while the kernel (which releases the
GIL) trains this one. ``tests/test_classifier_fast.py`` checks that the parameters are
bit-identical to those of the kernel before these changes.

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
from numba import njit, prange

from .errors import SpykehwError
from .options import ClassifierOptions
from .progress import Progress, format_duration

__all__ = [
    "ClassifierError",
    "ClassifierParams",
    "Gradients",
    "TrainResult",
    "TrainState",
    "init_params",
    "split_validation",
    "check_binary",
    "check_labels",
    "dropout_masks",
    "forward",
    "predict",
    "softmax_ce",
    "evaluate",
    "gradients",
    "train_steps",
    "train_steps_dense",
    "best_epoch_index",
    "run_epochs",
    "train_classifier",
    "add_rows",
]

SG1, SG2, RELU = 0, 1, 2
_MODES = {"sg1": SG1, "sg2": SG2, "relu": RELU}
_CHUNK_ROWS = 2500
"""Rows per kernel call while training: progress granularity and dropout-mask memory only."""


class ClassifierError(SpykehwError, ValueError):
    """Bad classifier input (shapes, non-binary features, labels out of range)."""


@dataclass(frozen=True)
class ClassifierParams:
    """``W2 (F, H)``, ``b2 (H,)``, ``W3 (H, C)``, ``b3 (C,)``; float32 from training (float64
    is accepted, e.g. for gradient checks)."""

    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray

    def __post_init__(self) -> None:
        f, h = self.W2.shape
        if self.b2.shape != (h,) or self.W3.ndim != 2 or self.W3.shape[0] != h \
                or self.b3.shape != (self.W3.shape[1],):
            raise ClassifierError(
                f"params: inconsistent shapes W2 {self.W2.shape}, b2 {self.b2.shape}, "
                f"W3 {self.W3.shape}, b3 {self.b3.shape}")

    @property
    def features(self) -> int:
        return self.W2.shape[0]

    @property
    def hidden(self) -> int:
        return self.W2.shape[1]

    @property
    def classes(self) -> int:
        return self.W3.shape[1]

    def copy(self) -> "ClassifierParams":
        return ClassifierParams(self.W2.copy(), self.b2.copy(), self.W3.copy(), self.b3.copy())

    def astype(self, dtype) -> "ClassifierParams":
        return ClassifierParams(*(np.asarray(a, dtype=dtype) for a in (self.W2, self.b2, self.W3, self.b3)))


@dataclass(frozen=True)
class Gradients:
    """Batch sums ``dW2 = x^T delta2``, ``db2 = sum delta2``, ``dW3 = a2^T delta3``,
    ``db3 = sum delta3``, the mean ``loss`` and the forward/backward intermediates (float64)."""

    dW2: np.ndarray
    db2: np.ndarray
    dW3: np.ndarray
    db3: np.ndarray
    loss: float
    z2: np.ndarray
    a2: np.ndarray
    z3: np.ndarray
    a3: np.ndarray
    delta2: np.ndarray
    delta3: np.ndarray


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


# --- data helpers ------------------------------------------------------------------------------

def check_binary(x: np.ndarray, what: str = "features") -> np.ndarray:
    """C-contiguous uint8 view/copy of a binary ``(N, F)`` array; raises on any value > 1."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ClassifierError(f"{what}: expected a 2-d (N, F) array, found shape {x.shape}")
    if x.dtype != np.bool_ and x.size and (x.min() < 0 or x.max() > 1):
        raise ClassifierError(f"{what}: expected binary 0/1 values, found range "
                              f"{x.min()}..{x.max()}")
    return np.ascontiguousarray(x, dtype=np.uint8)


def check_labels(y: np.ndarray, n: int, n_classes: int, what: str = "labels") -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ClassifierError(f"{what}: expected shape ({n},), found {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ClassifierError(f"{what}: expected labels 0..{n_classes - 1}, found {y.min()}..{y.max()}")
    return np.ascontiguousarray(y, dtype=np.int64)


def split_validation(x: np.ndarray, y: np.ndarray, val_fraction: float):
    """``(train_x, train_y, val_x, val_y)``: the first ``int(val_fraction * N)`` rows are the
    validation set, in stored order (the notebooks' split, spec 1.5)."""
    n_val = int(val_fraction * len(x))
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def _truncated_normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    """``tf.truncated_normal``: N(0, std), values beyond 2 std redrawn until none is left."""
    v = rng.standard_normal(shape)
    bad = np.abs(v) > 2.0
    while bad.any():
        v[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(v) > 2.0
    return v * std


def init_params(F: int, H: int, C: int, opts: ClassifierOptions, seed: int) -> ClassifierParams:
    """float32 initial params: W2 then W3 drawn from ``default_rng([seed, 0])``; zero biases.

    ``truncated_normal``: std ``opts.init_std`` truncated at 2 std (TF's rule);
    ``uniform_fan_in``: ``U(-sqrt(4/fan_in), +sqrt(4/fan_in))`` with fan_in F for W2, H for W3.
    """
    rng = np.random.default_rng([seed, 0])
    if opts.init == "truncated_normal":
        W2 = _truncated_normal(rng, (F, H), opts.init_std)
        W3 = _truncated_normal(rng, (H, C), opts.init_std)
    else:
        W2 = rng.uniform(-math.sqrt(4.0 / F), math.sqrt(4.0 / F), (F, H))
        W3 = rng.uniform(-math.sqrt(4.0 / H), math.sqrt(4.0 / H), (H, C))
    return ClassifierParams(W2.astype(np.float32), np.zeros(H, np.float32),
                            W3.astype(np.float32), np.zeros(C, np.float32))


def dropout_masks(rng: np.random.Generator, rows: int, hidden: int, p: float) -> np.ndarray:
    """Bool ``(rows, hidden)``, True = dropped; drawn as ``rng.random(..., float32) < p``."""
    if p <= 0:
        return np.zeros((rows, hidden), dtype=np.bool_)
    return rng.random((rows, hidden), dtype=np.float32) < np.float32(p)


# --- kernels -----------------------------------------------------------------------------------

@njit(cache=True)
def add_rows(W, bias, flags, out):
    """``out = bias + sum of W[i] over i with flags[i] != 0``: the add-only layer.

    Used by the float kernels (float64 ``out``) and by the integer model (int64 ``out``).
    """
    for j in range(out.shape[0]):
        out[j] = bias[j]
    for i in range(flags.shape[0]):
        if flags[i] != 0:
            for j in range(out.shape[0]):
                out[j] += W[i, j]


@njit(cache=True)
def _output(F3, f3, a2, mode, z3):
    """``z3`` of one sample from its hidden activations (floored unless relu)."""
    if mode == RELU:
        for c in range(z3.shape[0]):
            z3[c] = f3[c]
        for h in range(a2.shape[0]):
            if a2[h] != 0.0:
                for c in range(z3.shape[0]):
                    z3[c] += a2[h] * F3[h, c]
    else:
        add_rows(F3, f3, a2, z3)
        for c in range(z3.shape[0]):
            z3[c] = math.floor(z3[c])


@njit(cache=True)
def _activate(z2, mode, a2):
    for h in range(z2.shape[0]):
        if mode == RELU:
            a2[h] = z2[h] if z2[h] > 0.0 else 0.0
        else:
            a2[h] = 1.0 if z2[h] >= 0.0 else 0.0


@njit(cache=True, parallel=True, nogil=True)
def _forward_kernel(F2, f2, F3, f3, x, mode):
    n = x.shape[0]
    H = F2.shape[1]
    out = np.empty((n, F3.shape[1]), np.float64)
    for r in prange(n):
        z2 = np.empty(H, np.float64)
        a2 = np.empty(H, np.float64)
        add_rows(F2, f2, x[r], z2)
        _activate(z2, mode, a2)
        _output(F3, f3, a2, mode, out[r])
    return out


@njit(cache=True)
def _qat_table(qp):
    """Rows ``(scale, lo, hi)`` -> ``(scale, lo, hi, 1/scale, lo/scale, hi/scale)`` (exact: the
    scales are powers of two), so the per-weight work has no division."""
    qx = np.empty((qp.shape[0], 6))
    for k in range(qp.shape[0]):
        qx[k, 0], qx[k, 1], qx[k, 2] = qp[k, 0], qp[k, 1], qp[k, 2]
        qx[k, 3] = 1.0 / qp[k, 0]
        qx[k, 4] = qp[k, 1] * qx[k, 3]
        qx[k, 5] = qp[k, 2] * qx[k, 3]
    return qx


@njit(cache=True)
def _clip_shadow(w, q):
    """QAT keeps each shadow value inside its format's range ``[lo, hi] / scale``."""
    return min(max(np.float64(w), q[4]), q[5])


@njit(cache=True)
def _quantized(w, q):
    """``k / scale`` with ``k = clip(floor(w * scale + 0.5), lo, hi)``: the arithmetic of
    ``fixed.quantize``, applied to the stored (float32) shadow value ``w``."""
    return min(max(np.floor(np.float64(w) * q[0] + 0.5), q[1]), q[2]) * q[3]


@njit(cache=True)
def _sample_pass(F2, f2, F3, f3, xr, yr, m, mode, quadratic, window, z2, a2, d2, d3, z3, add=True):
    """Forward and backward of one training sample: ``z2, a2, d2 (H,)``, ``d3 (C,)``; ``z3`` is
    scratch. ``m`` is the sample's dropout mask (True = dropped). With ``add`` False, ``z2``
    already holds ``f2 + sum of the active rows of F2``."""
    H = z2.shape[0]
    C = d3.shape[0]
    if add:
        add_rows(F2, f2, xr, z2)
    for h in range(H):
        if m[h]:
            z2[h] = -1.0
    _activate(z2, mode, a2)
    _output(F3, f3, a2, mode, z3)
    if quadratic:
        for c in range(C):
            d3[c] = z3[c] if z3[c] > 0.0 else 0.0
    else:
        zmax = z3[0]
        for c in range(1, C):
            zmax = max(zmax, z3[c])
        tot = 0.0
        for c in range(C):
            d3[c] = math.exp(z3[c] - zmax)
            tot += d3[c]
        for c in range(C):
            d3[c] /= tot
    d3[yr] -= 1.0
    for h in range(H):
        zh = z2[h]
        if mode == SG1:
            gate = zh >= 0.0 and zh <= window
        else:
            gate = zh >= 0.0
        acc = 0.0
        if gate:
            for c in range(C):
                acc += d3[c] * F3[h, c]
        d2[h] = acc


@njit(cache=True)
def _sub_row(w, lr, d):
    """``w = float32(float64(w) - lr * d)`` over a whole row."""
    for h in range(w.shape[0]):
        w[h] = np.float64(w[h]) - lr * d[h]


@njit(cache=True, nogil=True)
def _train_kernel(W2, b2, W3, b3, F2, f2, F3, f3, x, y, row0, n_batches, batch, masks,
                  eta, mode, quadratic, window, qat, qp, member, slot, rows):
    """Train ``n_batches`` consecutive batches starting at row ``row0`` (serial, in place).

    ``W2, b2, W3, b3`` are the trained (shadow) params; ``F2, f2, F3, f3`` the ones the forward
    pass uses: the same arrays in float training, their quantized copies (float64, exact) in QAT
    (``qat`` True, ``qp[k] = (scale, lo, hi)`` for W2, b2, W3, b3). ``member``/``slot``/``rows``
    are scratch (``slot`` all -1 on entry and on exit).
    """
    F, H = W2.shape
    C = W3.shape[1]
    z2 = np.empty((batch, H))
    a2 = np.empty((batch, H))
    d2 = np.empty((batch, H))
    d3 = np.empty((batch, C))
    z3 = np.empty(C)
    gW3 = np.empty((H, C))
    touched = np.empty(H, np.bool_)
    cols = np.empty(H, np.int64)      # hidden units with a nonzero delta2 in a group's samples
    gc = np.empty(H)
    scol = np.empty((batch, H), np.int64)  # per sample: hidden units with a nonzero delta2
    ns = np.empty(batch, np.int64)
    pat = np.empty(F, np.int64)       # per batch row slot: bit s set if sample s has it active
    cnt = np.empty(F, np.int64)       # per batch row slot: number of samples with it active
    multi = np.empty(F, np.int64)     # slots of rows active in several samples
    lr = eta / batch
    qx = _qat_table(qp)
    for b in range(n_batches):
        # the rows active in the batch, ascending: slot k holds row rows[k], used by the
        # samples s with member[k, s] (cnt[k] of them; bit s of pat[k] for s < 62)
        r0 = row0 + b * batch
        nu = 0
        for i in range(F):
            for s in range(batch):
                if x[r0 + s, i] != 0:
                    if slot[i] < 0:
                        slot[i] = nu
                        rows[nu] = i
                        pat[nu] = 0
                        cnt[nu] = 0
                        nu += 1
                    k = slot[i]
                    member[k, s] = True
                    cnt[k] += 1
                    if s < 62:
                        pat[k] |= np.int64(1) << s
        # z2 of every sample, each active row read once for the batch; every sample's sum
        # runs over its rows in ascending order, as add_rows does
        for s in range(batch):
            for h in range(H):
                z2[s, h] = f2[h]
        for k in range(nu):
            wi = F2[rows[k]]
            for s in range(batch):
                if member[k, s]:
                    zs = z2[s]
                    for h in range(H):
                        zs[h] += wi[h]
        # forward and backward of every sample with the pre-update weights
        for s in range(batch):
            _sample_pass(F2, f2, F3, f3, x[r0 + s], y[r0 + s], masks[b * batch + s], mode,
                         quadratic, window, z2[s], a2[s], d2[s], d3[s], z3, False)
        # W3 += -lr * a2^T delta3 (rows of hidden units active in some sample), b3
        gW3[:, :] = 0.0
        touched[:] = False
        for s in range(batch):
            for h in range(H):
                if a2[s, h] != 0.0:
                    touched[h] = True
                    for c in range(C):
                        gW3[h, c] += a2[s, h] * d3[s, c]
        for h in range(H):
            if touched[h]:
                for c in range(C):
                    W3[h, c] = np.float64(W3[h, c]) - lr * gW3[h, c]
                if qat:
                    for c in range(C):
                        W3[h, c] = _clip_shadow(W3[h, c], qx[2])
                        F3[h, c] = _quantized(W3[h, c], qx[2])
        for c in range(C):
            gb = 0.0
            for s in range(batch):
                gb += d3[s, c]
            b3[c] = np.float64(b3[c]) - eta * (gb / batch)
            if qat:
                b3[c] = _clip_shadow(b3[c], qx[3])
                f3[c] = _quantized(b3[c], qx[3])
        # W2 += -lr * x^T delta2, only where it changes something: row i (an input active in
        # the batch) changes at the columns h where delta2 of some sample with x[i] = 1 is
        # nonzero. Rows active in one sample (most of them) take that sample's nonzero columns;
        # rows active in several are grouped by their set of samples. Each element's gradient
        # is summed in sample order from 0.0, as in the dense statement, and elsewhere the
        # update would subtract exactly 0.0 (delta2 is never -0.0), so skipping it is exact.
        for s in range(batch):
            n = 0
            for h in range(H):
                if d2[s, h] != 0.0:
                    scol[s, n] = h
                    n += 1
            ns[s] = n
        nmulti = 0
        for k in range(nu):
            i = rows[k]
            if cnt[k] == 1:
                for s in range(batch):
                    if member[k, s]:
                        if qat:
                            for j in range(ns[s]):
                                h = scol[s, j]
                                W2[i, h] = np.float64(W2[i, h]) - lr * d2[s, h]
                                W2[i, h] = _clip_shadow(W2[i, h], qx[0])
                                F2[i, h] = _quantized(W2[i, h], qx[0])
                        elif 16 * ns[s] < H:
                            for j in range(ns[s]):
                                h = scol[s, j]
                                W2[i, h] = np.float64(W2[i, h]) - lr * d2[s, h]
                        else:  # the whole row, vectorised (d2[s, h] = 0 changes nothing)
                            _sub_row(W2[i], lr, d2[s])
                        member[k, s] = False
                slot[i] = -1
            else:
                multi[nmulti] = k
                nmulti += 1
        if nmulti > 0:
            mk = multi[:nmulti]
            if batch <= 62:  # group rows with the same samples (pattern) together
                mk = mk[np.argsort(pat[mk], kind="mergesort")]
            g0 = 0
            while g0 < nmulti:
                g1 = g0 + 1
                if batch <= 62:
                    while g1 < nmulti and pat[mk[g1]] == pat[mk[g0]]:
                        g1 += 1
                k0 = mk[g0]
                if not qat:  # the whole rows, vectorised: gc[h] = 0.0 changes nothing
                    for h in range(H):
                        gc[h] = 0.0
                    for s in range(batch):
                        if member[k0, s]:
                            for h in range(H):
                                gc[h] += d2[s, h]
                    for g in range(g0, g1):
                        k = mk[g]
                        i = rows[k]
                        _sub_row(W2[i], lr, gc)
                        for s in range(batch):
                            member[k, s] = False
                        slot[i] = -1
                    g0 = g1
                    continue
                # union of the member samples' nonzero columns, in ascending order
                ncol = 0
                for h in range(H):
                    nz = False
                    for s in range(batch):
                        if member[k0, s] and d2[s, h] != 0.0:
                            nz = True
                    if nz:
                        cols[ncol] = h
                        ncol += 1
                for j in range(ncol):
                    gc[j] = 0.0
                for s in range(batch):
                    if member[k0, s]:
                        for j in range(ncol):
                            gc[j] += d2[s, cols[j]]
                for g in range(g0, g1):
                    k = mk[g]
                    i = rows[k]
                    for j in range(ncol):
                        h = cols[j]
                        W2[i, h] = np.float64(W2[i, h]) - lr * gc[j]
                        if qat:
                            W2[i, h] = _clip_shadow(W2[i, h], qx[0])
                            F2[i, h] = _quantized(W2[i, h], qx[0])
                    for s in range(batch):
                        member[k, s] = False
                    slot[i] = -1
                g0 = g1
        for h in range(H):
            gb = 0.0
            for s in range(batch):
                gb += d2[s, h]
            b2[h] = np.float64(b2[h]) - eta * (gb / batch)
            if qat:
                b2[h] = _clip_shadow(b2[h], qx[1])
                f2[h] = _quantized(b2[h], qx[1])


# --- forward, cost, prediction ----------------------------------------------------------------

def forward(params: ClassifierParams, x: np.ndarray, opts: ClassifierOptions) -> np.ndarray:
    """Logits ``(N, C)`` float64 with p = 0: ``floor(z3)`` for sg1/sg2, ``z3`` for relu."""
    x = check_binary(x)
    if x.shape[1] != params.features:
        raise ClassifierError(f"features: expected {params.features} columns, found {x.shape[1]}")
    return _forward_kernel(params.W2, params.b2, params.W3, params.b3, x, _MODES[opts.gradient])


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


# --- dense reference -------------------------------------------------------------------------

def gradients(params: ClassifierParams, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions,
              dropout_mask: np.ndarray | None = None) -> Gradients:
    """Dense numpy forward + backward of one batch (float64), the reference for the kernels.

    ``dropout_mask`` (bool ``(n, H)``, True = dropped) sets ``z2 = -1`` for the dropped units.
    Returns batch *sums*; for the relu path ``d loss / d theta = grad / n``.
    """
    W2, b2, W3, b3 = (np.asarray(a, dtype=np.float64) for a in (params.W2, params.b2, params.W3, params.b3))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = len(x)
    z2 = x @ W2 + b2
    if dropout_mask is not None:
        z2 = np.where(dropout_mask, -1.0, z2)
    if opts.gradient == "relu":
        a2 = np.maximum(z2, 0.0)
        z3 = a2 @ W3 + b3
        gate = z2 >= 0.0
    else:
        a2 = (z2 >= 0.0).astype(np.float64)
        z3 = np.floor(a2 @ W3 + b3)
        gate = (z2 >= 0.0) & (z2 <= opts.sg1_window) if opts.gradient == "sg1" else z2 >= 0.0
    onehot = np.zeros_like(z3)
    onehot[np.arange(n), y] = 1.0
    if opts.cost == "quadratic":
        a3 = np.maximum(z3, 0.0)
        loss = float(np.mean(0.5 * ((a3 - onehot) ** 2).sum(axis=1)))
    else:
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        a3 = e / e.sum(axis=1, keepdims=True)
        loss = float(np.mean(softmax_ce(z3, y)))
    d3 = a3 - onehot
    d2 = (d3 @ W3.T) * gate
    return Gradients(dW2=x.T @ d2, db2=d2.sum(axis=0), dW3=a2.T @ d3, db3=d3.sum(axis=0),
                     loss=loss, z2=z2, a2=a2, z3=z3, a3=a3, delta2=d2, delta3=d3)


def _n_batches(n: int, opts: ClassifierOptions) -> int:
    return n // opts.batch


def train_steps_dense(params: ClassifierParams, x: np.ndarray, y: np.ndarray,
                      opts: ClassifierOptions, masks: np.ndarray) -> ClassifierParams:
    """Train ``len(x) // batch`` batches in row order with :func:`gradients` (slow reference).

    ``masks`` is bool ``(n_batches * batch, H)``. Same rounding rule as the kernels: float64
    update, one rounding to the params' dtype.
    """
    p = params.copy()
    bs = opts.batch
    for b in range(_n_batches(len(x), opts)):
        sl = slice(b * bs, (b + 1) * bs)
        gr = gradients(p, x[sl], y[sl], opts, masks[sl])
        lr = opts.eta / bs
        p = ClassifierParams(
            W2=(p.W2.astype(np.float64) - lr * gr.dW2).astype(p.W2.dtype),
            b2=(p.b2.astype(np.float64) - opts.eta * (gr.db2 / bs)).astype(p.b2.dtype),
            W3=(p.W3.astype(np.float64) - lr * gr.dW3).astype(p.W3.dtype),
            b3=(p.b3.astype(np.float64) - opts.eta * (gr.db3 / bs)).astype(p.b3.dtype))
    return p


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
        F, H = self.shadow[0].shape
        self._slot = np.full(F, -1, np.int64)
        self._rows = np.empty(F, np.int64)
        self._member = None

    def params(self) -> ClassifierParams:
        """A copy of the shadow params."""
        return ClassifierParams(*(a.copy() for a in self.shadow))

    def steps(self, x: np.ndarray, y: np.ndarray, row0: int, n_batches: int,
              opts: ClassifierOptions, masks: np.ndarray) -> None:
        if n_batches <= 0:
            return
        if self._member is None or self._member.shape[1] != opts.batch:
            self._member = np.zeros((self.shadow[0].shape[0], opts.batch), np.bool_)
        qat = self.qp is not None
        qp = self.qp if qat else np.ones((4, 3))  # unused placeholder
        _train_kernel(*self.shadow, *self.fwd, x, y, row0, n_batches, opts.batch,
                      np.ascontiguousarray(masks, dtype=np.bool_), float(opts.eta),
                      _MODES[opts.gradient], opts.cost == "quadratic", float(opts.sg1_window),
                      qat, qp, self._member, self._slot, self._rows)

    def epoch(self, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions,
              rng: np.random.Generator, progress: Progress | None = None) -> None:
        """One pass over ``len(x) // batch`` batches in stored order."""
        H = self.shadow[0].shape[1]
        total = _n_batches(len(x), opts)
        per = max(1, _CHUNK_ROWS // opts.batch)
        starts = list(range(0, total, per))
        if not starts:
            return

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
                self.steps(x, y, b0 * opts.batch, nb, opts, masks)
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
