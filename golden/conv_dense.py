"""A slow, dense transcription of the authors' conv layer, kept to cross-check the numba kernel.

This follows the structure of the reference code (``network.py``: ``feedforward``,
``lateral_inhibition``, ``stdp_competition``) rather than the event-driven kernel of
:mod:`spykehw.golden.conv`: whole potential tensors per step (which keep integrating at fired
positions, as the reference's do), ``conv_spikes`` masks, ``P = V * allowed * spikes``, and the
competition on ``mxv``/``mxi`` maps. Its STDP and homeostasis updates are written out weight by
weight from the formulas (sharing only the rounding primitive :func:`~spykehw.golden.fixed.shr_round`
with the kernel). Use it on a few images; it is orders of magnitude slower.
"""

from __future__ import annotations

import numpy as np

from .fixed import ROUNDING_CODES, shr_round
from .formats import NumberFormats
from .options import ConvOptions

__all__ = ["dense_conv"]


def _correlate(S: np.ndarray, W: np.ndarray, dtype) -> np.ndarray:
    """VALID cross-correlation: S (C, Sz, Sz) x W (K, K, C, M) -> (H, H, M)."""
    K = W.shape[0]
    H = S.shape[1] - K + 1
    out = np.zeros((H, H, W.shape[3]), dtype=dtype)
    for kr in range(K):
        for kc in range(K):
            patch = S[:, kr:kr + H, kc:kc + H].astype(dtype)  # (C, H, H)
            out += np.einsum("cuv,cm->uvm", patch, W[kr, kc].astype(dtype))
    return out


def dense_conv(spike_trains: list[np.ndarray], weights: np.ndarray, opts: ConvOptions, *,
               fmt: NumberFormats | None = None, train: bool = False) -> dict:
    """Run (and optionally STDP-train) the layer on ``spike_trains`` [(T, C, S, S) uint8].

    ``fmt=None`` is the float reference, else the integer model with ``fmt``. Weights are
    (M, C, K, K) (float32 in [0,1) or UQ0.B integers). Returns a dict with ``spikes`` (list of
    (T, M, H, H) uint8), ``features`` (N, M*P*P) uint8, and when training ``weights`` (final),
    ``snapshots``, ``winners`` [(global step, m, r, c)], ``winners_per_step``.
    """
    is_int = fmt is not None
    W = np.asarray(weights).transpose(2, 3, 1, 0).copy()  # (K, K, C, M), as the reference stores it
    W = W.astype(np.int64 if is_int else np.float32)
    K, M, H, P = opts.kernel, opts.maps, opts.out_size, opts.pool_size
    off = opts.inhibition_offset
    if is_int:
        thr = fmt.threshold_int(opts.threshold)
        vdtype = np.int64
        bits = fmt.conv.weight_bits
        mode = ROUNDING_CODES[fmt.stdp.rounding]
        lfsr = [fmt.stdp.lfsr_seed]
    else:
        thr = float(opts.threshold)
        vdtype = np.float64
    level = 0
    g = 0
    upd_imgs = np.zeros(M, dtype=np.int64)
    snapshots, snap_steps, winners, per_step, spikes_out = [], [], [], [], []
    features = np.zeros((len(spike_trains), M * P * P), dtype=np.uint8)

    def rate_shift():
        return max(fmt.stdp.stdp_shift - level, fmt.stdp.stdp_shift_min)

    def a_plus():
        a = opts.a_plus * 2.0 ** level
        return a if opts.rate_cap is None else min(a, opts.rate_cap)

    def update_int(w: int, num: int, shift: int) -> int:
        d, lfsr[0] = shr_round(int(num), int(shift), mode, lfsr[0])
        return int(d)

    for n, S_all in enumerate(spike_trains):
        T = S_all.shape[0]
        V = np.zeros((H, H, M), dtype=vdtype)
        conv_spikes = np.zeros((H, H, M), dtype=np.uint8)
        blocked = np.zeros((H, H), dtype=bool)
        allowed = np.ones((H, H, M), dtype=np.uint8)
        img_spikes = np.zeros((T, M, H, H), dtype=np.uint8)
        pool_acc = np.zeros((P, P, M), dtype=np.int64)
        for t in range(T):
            if train and opts.homeostasis and n % opts.homeostasis_const == 0:
                upd_imgs[:] = 0
            V += _correlate(S_all[t], W, vdtype)
            conv_spikes[V >= thr] = 1
            # lateral_inhibition: (a) fired locations, (b) argmax map only, (c) block.
            conv_spikes[blocked] = 0
            mstar = np.argmax(V, axis=2)
            keep = np.zeros_like(conv_spikes)
            uu, vv = np.meshgrid(np.arange(H), np.arange(H), indexing="ij")
            keep[uu, vv, mstar] = conv_spikes[uu, vv, mstar]
            conv_spikes = keep
            blocked |= conv_spikes.any(axis=2)
            img_spikes[t] = conv_spikes.transpose(2, 0, 1)
            # Pool: 2x2 stride-2 max of (spikes * V) >= threshold, i.e. OR of the new spikes.
            cs = conv_spikes[:2 * P, :2 * P].reshape(P, 2, P, 2, M)
            pool_acc += cs.max(axis=(1, 3))
            nw = 0
            if train:
                Pm = V * allowed * conv_spikes
                if Pm.sum() != 0:
                    if opts.homeostasis:
                        for i in range(M):
                            if upd_imgs[i] > opts.homeostasis_limit:
                                Pm[:, :, i] = 0
                                for ch in range(W.shape[2]):
                                    for kr in range(K):
                                        for kc in range(K):
                                            w = W[kr, kc, ch, i]
                                            if is_int:
                                                p = int(w) * ((1 << bits) - int(w))
                                                w2 = int(w) - update_int(w, fmt.stdp.homeostasis_mult * p,
                                                                         bits + fmt.stdp.homeostasis_shift)
                                                W[kr, kc, ch, i] = min(max(w2, 0), (1 << bits) - 1)
                                            else:
                                                w64 = np.float64(w)
                                                W[kr, kc, ch, i] = np.float32(w64 - opts.homeostasis_coeff * w64 * (1 - w64))
                    found = _competition(Pm, opts)
                    found.sort(key=lambda x: x[0])
                    for m, r, c in found:
                        pre = S_all[:t + 1, :, r:r + K, c:c + K].any(axis=0)  # (C, K, K)
                        for ch in range(W.shape[2]):
                            for kr in range(K):
                                for kc in range(K):
                                    w = W[kr, kc, ch, m]
                                    if is_int:
                                        s = rate_shift()
                                        p = int(w) * ((1 << bits) - int(w))
                                        if pre[ch, kr, kc]:
                                            w2 = int(w) + update_int(w, p, bits + s)
                                        else:
                                            w2 = int(w) - update_int(w, 3 * p, bits + s + 2)
                                        W[kr, kc, ch, m] = min(max(w2, 0), (1 << bits) - 1)
                                    else:
                                        w64 = np.float64(w)
                                        ap = a_plus()
                                        dw = ap * w64 * (1 - w64) if pre[ch, kr, kc] else -0.75 * ap * w64 * (1 - w64)
                                        W[kr, kc, ch, m] = np.float32(w64 + dw)
                        r0, r1 = max(r - off, 0), min(r + off, H - 1)
                        c0, c1 = max(c - off, 0), min(c + off, H - 1)
                        allowed[r0:r1 + 1, c0:c1 + 1, :] = 0
                        allowed[:, :, m] = 0
                        upd_imgs[m] += 1
                        winners.append((g, m, r, c))
                    nw = len(found)
                per_step.append(nw)
                if g % opts.snapshot_period == 0:
                    snapshots.append(W.transpose(3, 2, 0, 1).copy())
                    snap_steps.append(g)
                if g % opts.lr_period == 0 and (g > 0 or opts.step0_doubling):
                    level += 1
            g += 1
        spikes_out.append(img_spikes)
        features[n] = (pool_acc > 0).transpose(2, 0, 1).reshape(-1)
    out = {"spikes": spikes_out, "features": features}
    if train:
        out.update(weights=W.transpose(3, 2, 0, 1).copy(), snapshots=snapshots, snapshot_steps=snap_steps,
                   winners=winners, winners_per_step=np.array(per_step))
    return out


def _competition(Pm: np.ndarray, opts: ConvOptions) -> list[tuple[int, int, int]]:
    H = Pm.shape[0]
    off = opts.inhibition_offset
    mxv = Pm.max(axis=2).astype(np.float64)
    mxi = Pm.argmax(axis=2)
    found = []
    if opts.competition == "greedy":
        while mxv.sum() != 0:
            idx = int(np.argmax(mxv))  # first row-major maximum
            r, c = divmod(idx, H)
            m = int(mxi[r, c])
            found.append((m, r, c))
            mxv[mxi == m] = 0
            mxv[max(r - off, 0):min(r + off, H - 1) + 1, max(c - off, 0):min(c + off, H - 1) + 1] = 0
        return found
    # per_map (paper): each map's best candidate; visit by value, then row-major position.
    bests = []
    for m in range(Pm.shape[2]):
        plane = np.where(mxi == m, mxv, 0)
        if plane.max() > 0:
            idx = int(np.argmax(plane))
            bests.append((-plane.flat[idx], idx, m))
    for _, idx, m in sorted(bests):
        r, c = divmod(idx, H)
        if all(abs(r - r2) > off or abs(c - c2) > off for _, r2, c2 in found):
            found.append((m, r, c))
    return found
