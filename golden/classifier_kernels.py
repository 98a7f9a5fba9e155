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
same as updating only the nonzero columns. ``z2`` adds four rows per pass over the float64
accumulator (``(((z + a) + b) + c) + d`` rounds exactly as four passes do, with a quarter of the
accumulator's loads and stores); each sample's sum still runs over its rows in ascending order.
Per-unit decisions on random data (dropout, activation, the surrogate window, which inputs are
active) are made without branches, as lists of the units or rows concerned: a branch per unit
mispredicted about every other time and cost more than the arithmetic. The next chunk's dropout
masks are drawn on a helper thread while the kernel (which releases the GIL) trains this one.
Tried and dropped: updating batch ``b``'s rows of ``W2`` in the same pass that adds batch
``b + 1``'s rows to its ``z2`` (slower; likely because a row then waits longer between its
forward read and its update), software prefetch of the next rows (slower) and 512-bit
vectors (no faster in a micro-benchmark).
``tests/test_classifier_fast.py`` checks that the parameters are bit-identical to those of the
kernel before the first of these changes (``tests/classifier_previous.py``).
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
def _add_listed_rows(W, idx, n, out):
    """``out += W[idx[0]] + ... + W[idx[n-1]]``, each ``out[j]`` summed in list order (what
    :func:`add_rows` computes when ``idx`` lists its active flags). Four rows per pass over
    ``out``: ``((((o + a) + b) + c) + d)`` is the same sequence of roundings as four passes,
    with a quarter of the loads and stores of ``out``."""
    H = out.shape[0]
    j = 0
    while j + 4 <= n:
        w0 = W[idx[j]]
        w1 = W[idx[j + 1]]
        w2 = W[idx[j + 2]]
        w3 = W[idx[j + 3]]
        for h in range(H):
            out[h] = (((out[h] + w0[h]) + w1[h]) + w2[h]) + w3[h]
        j += 4
    while j < n:
        wi = W[idx[j]]
        for h in range(H):
            out[h] += wi[h]
        j += 1


@njit(cache=True)
def _flags_to_list(flags, idx):
    """``idx[:n]`` = the indices of the nonzero ``flags``, ascending (no branches); returns n."""
    n = 0
    for i in range(flags.shape[0]):
        idx[n] = i
        n += np.int64(flags[i] != 0)
    return n


@njit(cache=True)
def _activate(z2, mode, a2, act):
    """``a2`` from ``z2`` (``1[z2 >= 0]``, relu ``max(z2, 0)``); ``act[:na]`` the units with
    ``a2 != 0``, ascending; returns ``na``. Simple loops without data-dependent branches (a
    branch per unit on random activations mispredicts about every other time)."""
    H = z2.shape[0]
    if mode == RELU:
        for h in range(H):
            a2[h] = z2[h] if z2[h] > 0.0 else 0.0
    else:
        for h in range(H):
            a2[h] = 1.0 if z2[h] >= 0.0 else 0.0
    na = 0
    for h in range(H):
        act[na] = h
        na += np.int64(a2[h] != 0.0)
    return na


@njit(cache=True)
def _output(F3, f3, a2, act, na, mode, z3):
    """``z3`` of one sample from its hidden activations (floored unless relu): ``f3`` plus the
    rows of the active units ``act[:na]``, each ``z3[c]`` summed in ascending unit order."""
    C = z3.shape[0]
    for c in range(C):
        z3[c] = f3[c]
    if mode == RELU:
        for j in range(na):
            h = act[j]
            for c in range(C):
                z3[c] += a2[h] * F3[h, c]
    else:
        for j in range(na):
            h = act[j]
            for c in range(C):
                z3[c] += F3[h, c]
        for c in range(C):
            z3[c] = math.floor(z3[c])


@njit(cache=True, parallel=True, nogil=True)
def forward_kernel(F2, f2, F3, f3, x, mode):
    n = x.shape[0]
    H = F2.shape[1]
    out = np.empty((n, F3.shape[1]), np.float64)
    for r in prange(n):
        z2 = np.empty(H, np.float64)
        a2 = np.empty(H, np.float64)
        act = np.empty(H, np.int64)
        idx = np.empty(x.shape[1], np.int64)
        for h in range(H):
            z2[h] = f2[h]
        _add_listed_rows(F2, idx, _flags_to_list(x[r], idx), z2)
        na = _activate(z2, mode, a2, act)
        _output(F3, f3, a2, act, na, mode, out[r])
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
def _batch_rows(x, r0, batch, pat, cnt, rows):
    """The inputs active in some sample of ``x[r0:r0 + batch]``, ascending, into ``rows``
    (returns how many); ``cnt[i]``: the samples with input ``i`` active; bit ``s`` of
    ``pat[i]``: sample ``s`` has it (``s < 62``). Branch-free, so it vectorises."""
    F = x.shape[1]
    for i in range(F):
        cnt[i] = 0
        pat[i] = 0
    for s in range(batch):
        xs = x[r0 + s]
        bit = np.int64(1) << s if s < 62 else np.int64(0)
        for i in range(F):
            v = np.int64(xs[i] != 0)
            cnt[i] += v
            pat[i] |= v * bit
    nu = 0
    for i in range(F):
        rows[nu] = i
        nu += np.int64(cnt[i] != 0)
    return nu


@njit(cache=True)
def _sample_pass(F3, f3, yr, m, mode, quadratic, window, wy, z2, a2, d2, d3, z3, act, nzc):
    """Forward from ``z2`` (``f2 + sum of the active rows of F2``) and backward of one training
    sample; ``m`` its dropout mask (True = dropped). Fills ``z2`` (masked), ``a2``, ``d2 (H,)``,
    ``d3 (C,)``; ``z3`` is scratch. ``act[:na]``: the hidden units with ``a2 != 0``,
    ``nzc[:nd]``: those with ``d2 != 0``, both ascending; returns ``(na, nd)``. ``wy`` scales
    ``d3`` (class weights; 1.0 leaves every value as it was)."""
    H = z2.shape[0]
    C = d3.shape[0]
    for h in range(H):
        z2[h] = -1.0 if m[h] else z2[h]
    na = _activate(z2, mode, a2, act)
    ng = 0  # the gated units (without branches); compacted to those with d2 != 0 below
    if mode == SG1:
        for h in range(H):
            nzc[ng] = h
            ng += np.int64((z2[h] >= 0.0) & (z2[h] <= window))
    else:
        for h in range(H):
            nzc[ng] = h
            ng += np.int64(z2[h] >= 0.0)
    _output(F3, f3, a2, act, na, mode, z3)
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
        d2[h] = 0.0
    nd = 0  # delta2 of the gated units; nzc compacted in place to those with d2 != 0 (nd <= j)
    for j in range(ng):
        h = nzc[j]
        acc = 0.0
        for c in range(C):
            acc += d3[c] * F3[h, c]
        d2[h] = acc
        nzc[nd] = h
        nd += np.int64(acc != 0.0)
    return na, nd


@njit(cache=True)
def _sub_row(w, lr, d):
    """``w = float32(float64(w) - lr * d)`` over a whole row."""
    for h in range(w.shape[0]):
        w[h] = np.float64(w[h]) - lr * d[h]


@njit(cache=True)
def _sort_by_key(idx, n, key):
    """Insertion sort of ``idx[:n]`` by ``key[idx]`` (a few dozen entries, no allocation)."""
    for a in range(1, n):
        v = idx[a]
        kv = key[v]
        b = a - 1
        while b >= 0 and key[idx[b]] > kv:
            idx[b + 1] = idx[b]
            b -= 1
        idx[b + 1] = v


@njit(cache=True, nogil=True)
def train_kernel(W2, b2, W3, b3, F2, f2, F3, f3, x, y, row0, n_batches, batch, masks,
                 eta, mode, quadratic, window, qat, qp, cw):
    """Train ``n_batches`` consecutive batches starting at row ``row0`` (serial, in place).

    ``W2, b2, W3, b3`` are the trained (shadow) params; ``F2, f2, F3, f3`` the ones the forward
    pass uses: the same arrays in float training, their quantized copies (float64, exact) in QAT
    (``qat`` True, ``qp[k] = (scale, lo, hi)`` for W2, b2, W3, b3). ``cw (C,)``: each sample's
    ``delta3`` is scaled by ``cw[label]`` (all 1.0: unweighted).
    """
    F, H = W2.shape
    C = W3.shape[1]
    z2 = np.empty((batch, H))
    a2 = np.empty((batch, H))
    d2 = np.empty((batch, H))
    d3 = np.empty((batch, C))
    z3 = np.empty(C)
    gW3 = np.zeros((H, C))            # zero between batches: rows are cleared once applied
    touched = np.zeros(H, np.bool_)
    act = np.empty((batch, H), np.int64)   # per sample: hidden units with a2 != 0
    na = np.empty(batch, np.int64)
    scol = np.empty((batch, H), np.int64)  # per sample: hidden units with a nonzero delta2
    ns = np.empty(batch, np.int64)
    cols = np.empty(H, np.int64)      # hidden units with a nonzero delta2 in a group's samples
    gc = np.empty(H)
    rows = np.empty(F, np.int64)      # the inputs active in the batch, ascending
    pat = np.empty(F, np.int64)       # per input: bit s set if sample s (< 62) has it active
    cnt = np.empty(F, np.int64)       # per input: the samples that have it active
    multi = np.empty(F, np.int64)     # inputs active in several samples
    slist = np.empty((batch, F), np.int64)  # per sample: its active inputs, ascending
    sn = np.empty(batch, np.int64)
    lr = eta / batch
    qx = _qat_table(qp)
    for b in range(n_batches):
        r0 = row0 + b * batch
        nu = _batch_rows(x, r0, batch, pat, cnt, rows)
        # z2 of every sample: its rows in ascending order, as add_rows does
        for s in range(batch):
            sn[s] = 0
        for k in range(nu):
            i = rows[k]
            for s in range(batch):
                slist[s, sn[s]] = i
                sn[s] += np.int64(x[r0 + s, i] != 0)
        for s in range(batch):
            for h in range(H):
                z2[s, h] = f2[h]
            _add_listed_rows(F2, slist[s], sn[s], z2[s])
        # forward and backward of every sample with the pre-update weights
        for s in range(batch):
            na[s], ns[s] = _sample_pass(F3, f3, y[r0 + s], masks[b * batch + s], mode, quadratic,
                                        window, cw[y[r0 + s]], z2[s], a2[s], d2[s], d3[s], z3,
                                        act[s], scol[s])
        # W3 += -lr * a2^T delta3 (rows of hidden units active in some sample; each element's
        # sum in sample order from 0.0), b3
        for s in range(batch):
            for j in range(na[s]):
                h = act[s, j]
                touched[h] = True
                for c in range(C):
                    gW3[h, c] += a2[s, h] * d3[s, c]
        for h in range(H):
            if touched[h]:
                for c in range(C):
                    W3[h, c] = np.float64(W3[h, c]) - lr * gW3[h, c]
                    gW3[h, c] = 0.0
                if qat:
                    for c in range(C):
                        W3[h, c] = _clip_shadow(W3[h, c], qx[2])
                        F3[h, c] = _quantized(W3[h, c], qx[2])
                touched[h] = False
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
        nmulti = 0
        for k in range(nu):
            i = rows[k]
            if cnt[i] != 1:
                multi[nmulti] = i
                nmulti += 1
                continue
            s = 0
            while x[r0 + s, i] == 0:
                s += 1
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
        if batch <= 62:  # rows with the same samples (pattern) next to each other
            _sort_by_key(multi, nmulti, pat)
        g0 = 0
        while g0 < nmulti:
            g1 = g0 + 1
            if batch <= 62:
                while g1 < nmulti and pat[multi[g1]] == pat[multi[g0]]:
                    g1 += 1
            i0 = multi[g0]
            if not qat:  # the whole rows, vectorised: gc[h] = 0.0 changes nothing
                for h in range(H):
                    gc[h] = 0.0
                for s in range(batch):
                    if x[r0 + s, i0] != 0:
                        for h in range(H):
                            gc[h] += d2[s, h]
                for g in range(g0, g1):
                    _sub_row(W2[multi[g]], lr, gc)
                g0 = g1
                continue
            # union of the member samples' nonzero columns, in ascending order
            ncol = 0
            for h in range(H):
                nz = False
                for s in range(batch):
                    if x[r0 + s, i0] != 0 and d2[s, h] != 0.0:
                        nz = True
                if nz:
                    cols[ncol] = h
                    ncol += 1
            for j in range(ncol):
                gc[j] = 0.0
            for s in range(batch):
                if x[r0 + s, i0] != 0:
                    for j in range(ncol):
                        gc[j] += d2[s, cols[j]]
            for g in range(g0, g1):
                i = multi[g]
                for j in range(ncol):
                    h = cols[j]
                    W2[i, h] = np.float64(W2[i, h]) - lr * gc[j]
                    W2[i, h] = _clip_shadow(W2[i, h], qx[0])
                    F2[i, h] = _quantized(W2[i, h], qx[0])
            g0 = g1
        for h in range(H):
            gb = 0.0
            for s in range(batch):
                gb += d2[s, h]
            b2[h] = np.float64(b2[h]) - eta * (gb / batch)
            if qat:
                b2[h] = _clip_shadow(b2[h], qx[1])
                f2[h] = _quantized(b2[h], qx[1])
