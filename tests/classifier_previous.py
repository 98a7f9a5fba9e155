"""The classifier's training kernel as it was before the sparse-row speed-up (issue 15, item 7),
kept verbatim (from commit 77a9362, ``golden/classifier.py``; its helpers ``_output`` and
``_activate`` are copied here, the others are in ``golden/classifier_kernels.py``) as the
reference that ``tests/test_classifier_fast.py`` compares the current kernel with. Not used by
the package."""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from spykehw.golden.classifier_kernels import (
    RELU,
    SG1,
    _clip_shadow,
    _qat_table,
    _quantized,
    add_rows,
)

__all__ = ["previous_train_kernel"]


# the kernels' helpers as they were then (the package's now build lists of the active units)
@njit(cache=False)
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


@njit(cache=False)
def _activate(z2, mode, a2):
    for h in range(z2.shape[0]):
        if mode == RELU:
            a2[h] = z2[h] if z2[h] > 0.0 else 0.0
        else:
            a2[h] = 1.0 if z2[h] >= 0.0 else 0.0


@njit(cache=False)
def previous_train_kernel(W2, b2, W3, b3, F2, f2, F3, f3, x, y, row0, n_batches, batch, masks,
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
    cols = np.empty(H, np.int64)      # hidden units with a nonzero delta2 in this batch
    d2c = np.empty((batch, H))        # delta2 restricted to ``cols``
    gc = np.empty(H)
    lr = eta / batch
    qx = _qat_table(qp)
    for b in range(n_batches):
        # forward and backward of every sample with the pre-update weights
        for s in range(batch):
            r = row0 + b * batch + s
            add_rows(F2, f2, x[r], z2[s])
            m = masks[b * batch + s]
            for h in range(H):
                if m[h]:
                    z2[s, h] = -1.0
            _activate(z2[s], mode, a2[s])
            _output(F3, f3, a2[s], mode, z3)
            if quadratic:
                for c in range(C):
                    d3[s, c] = z3[c] if z3[c] > 0.0 else 0.0
            else:
                zmax = z3[0]
                for c in range(1, C):
                    zmax = max(zmax, z3[c])
                tot = 0.0
                for c in range(C):
                    d3[s, c] = math.exp(z3[c] - zmax)
                    tot += d3[s, c]
                for c in range(C):
                    d3[s, c] /= tot
            d3[s, y[r]] -= 1.0
            for h in range(H):
                zh = z2[s, h]
                if mode == SG1:
                    gate = zh >= 0.0 and zh <= window
                else:
                    gate = zh >= 0.0
                acc = 0.0
                if gate:
                    for c in range(C):
                        acc += d3[s, c] * F3[h, c]
                d2[s, h] = acc
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
        # W2 += -lr * x^T delta2: rows of inputs active in the batch, columns with nonzero delta2
        ncol = 0
        for h in range(H):
            nz = False
            for s in range(batch):
                if d2[s, h] != 0.0:
                    nz = True
            if nz:
                cols[ncol] = h
                ncol += 1
        for s in range(batch):
            for j in range(ncol):
                d2c[s, j] = d2[s, cols[j]]
        nu = 0
        for s in range(batch):
            xr = x[row0 + b * batch + s]
            for i in range(F):
                if xr[i] != 0:
                    k = slot[i]
                    if k < 0:
                        k = nu
                        slot[i] = k
                        rows[k] = i
                        nu += 1
                    member[k, s] = True
        for k in range(nu):
            i = rows[k]
            for j in range(ncol):
                gc[j] = 0.0
            for s in range(batch):
                if member[k, s]:
                    for j in range(ncol):
                        gc[j] += d2c[s, j]
                    member[k, s] = False
            for j in range(ncol):
                h = cols[j]
                W2[i, h] = np.float64(W2[i, h]) - lr * gc[j]
                if qat:
                    W2[i, h] = _clip_shadow(W2[i, h], qx[0])
                    F2[i, h] = _quantized(W2[i, h], qx[0])
            slot[i] = -1
        for h in range(H):
            gb = 0.0
            for s in range(batch):
                gb += d2[s, h]
            b2[h] = np.float64(b2[h]) - eta * (gb / batch)
            if qat:
                b2[h] = _clip_shadow(b2[h], qx[1])
                f2[h] = _quantized(b2[h], qx[1])


