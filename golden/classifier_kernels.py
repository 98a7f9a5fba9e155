"""The float classifier's numba kernels: the forward pass of many rows and the training of
consecutive batches (the model and its numbers: :mod:`spykehw.golden.classifier`). The integer
model (:mod:`spykehw.golden.classifier_int`) shares :func:`add_rows`.

Speed
-----
``x`` and (for sg1/sg2) ``a2`` are binary, so the numba kernels add the weight rows of the
active inputs instead of multiplying, and the update touches only the rows of ``W2`` whose input
was active in the batch. :func:`~spykehw.golden.classifier_reference.train_steps_dense` and
:func:`~spykehw.golden.classifier_reference.gradients` are the plain dense numpy statement of
the same math; the tests check the kernels against them. Training is serial
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
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["SG1", "SG2", "RELU", "MODES", "add_rows", "forward_kernel", "train_kernel"]

SG1, SG2, RELU = 0, 1, 2
MODES = {"sg1": SG1, "sg2": SG2, "relu": RELU}
"""``ClassifierOptions.gradient`` -> the kernels' mode."""


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
def forward_kernel(F2, f2, F3, f3, x, mode):
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
def _sample_pass(F2, f2, F3, f3, xr, yr, m, mode, quadratic, window, z2, a2, d2, d3, z3, add=True,
                 wy=1.0):
    """Forward and backward of one training sample: ``z2, a2, d2 (H,)``, ``d3 (C,)``; ``z3`` is
    scratch. ``m`` is the sample's dropout mask (True = dropped). With ``add`` False, ``z2``
    already holds ``f2 + sum of the active rows of F2``. ``wy`` scales ``d3`` (class weights;
    1.0 leaves every value as it was)."""
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
    if wy != 1.0:
        for c in range(C):
            d3[c] *= wy
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
def train_kernel(W2, b2, W3, b3, F2, f2, F3, f3, x, y, row0, n_batches, batch, masks,
                  eta, mode, quadratic, window, qat, qp, member, slot, rows, cw):
    """Train ``n_batches`` consecutive batches starting at row ``row0`` (serial, in place).

    ``W2, b2, W3, b3`` are the trained (shadow) params; ``F2, f2, F3, f3`` the ones the forward
    pass uses: the same arrays in float training, their quantized copies (float64, exact) in QAT
    (``qat`` True, ``qp[k] = (scale, lo, hi)`` for W2, b2, W3, b3). ``member``/``slot``/``rows``
    are scratch (``slot`` all -1 on entry and on exit). ``cw (C,)``: each sample's ``delta3``
    is scaled by ``cw[label]`` (all 1.0: unweighted).
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
                         quadratic, window, z2[s], a2[s], d2[s], d3[s], z3, False, cw[y[r0 + s]])
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

