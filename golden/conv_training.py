"""STDP training of the conv layer (spec section 4), one sequential numba kernel for the float
and integer models, on the step functions of :mod:`spykehw.golden.conv` (which states how a step
integrates and fires). In every step of every image, after firing:

a. at the top of every step of an image whose index is a multiple of
   ``homeostasis_const``, the per-window win counts are cleared (authors' quirk, kept);
b. candidates are this step's new spikes still allowed to learn; if there is any, maps with
   more than ``homeostasis_limit`` wins in the window are suppressed (no candidates) and
   their weights decay (maps ascending);
c. competition: ``greedy`` repeatedly takes the candidate with the largest potential (the
   first row-major one on ties), its map wins, and every candidate of that map or within
   the inhibition window (Chebyshev distance ``<= window // 2``) is removed; ``per_map``
   takes each map's best candidate, visits them by potential (ties: row-major) and drops a
   map whose best lies in an accepted winner's window;
d. each winner, in ascending map order, applies STDP to its patch (``pre`` = the input
   spiked at any step ``<= t`` of this image), then blocks learning on its window for all
   maps and on its whole map, for the rest of the image;
e. the learning-rate level rises at global steps ``s % lr_period == 0`` (including ``s = 0``
   when ``step0_doubling``), and the weights are snapshotted at epoch steps
   ``t % snapshot_period == 0``.

With stochastic rounding, LFSR steps are consumed in this order within a step: homeostasis
decays (maps ascending, weights ``(c, kr, kc)``), then winners (maps ascending, weights
``(c, kr, kc)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import literally, njit

from .arithmetic import Arithmetic, homeostasis_decay, stdp_update
from .conv import (
    fire,
    from_kernel_layout,
    integrate,
    next_event_block,
    to_kernel_layout,
)
from .options import TIME_STEPS, ConvOptions
from .spikes import SpikeEvents

__all__ = ["TrainTrace", "train_conv"]


@njit(cache=True)
def _compete_greedy(sm, su, sv, val, alive, ns, off, wm, wr, wc):
    nw = 0
    while True:
        bi = -1
        best = val[0]
        for i in range(ns):
            if alive[i] and (bi < 0 or val[i] > best):
                best = val[i]
                bi = i
        if bi < 0:
            return nw
        m = sm[bi]
        r = su[bi]
        c = sv[bi]
        wm[nw] = m
        wr[nw] = r
        wc[nw] = c
        nw += 1
        for i in range(ns):
            if alive[i] and (sm[i] == m or (abs(su[i] - r) <= off and abs(sv[i] - c) <= off)):
                alive[i] = False


@njit(cache=True)
def _compete_per_map(sm, su, sv, val, alive, ns, off, M, wm, wr, wc):
    best = np.full(M, -1, dtype=np.int64)
    for i in range(ns):  # row-major order: strict '>' keeps the first position on ties
        if alive[i]:
            m = sm[i]
            if best[m] < 0 or val[i] > val[best[m]]:
                best[m] = i
    taken = np.zeros(M, dtype=np.uint8)
    nw = 0
    while True:
        bi = -1
        for m in range(M):
            i = best[m]
            if i >= 0 and not taken[m] and (bi < 0 or val[i] > val[bi] or (val[i] == val[bi] and i < bi)):
                bi = i
        if bi < 0:
            return nw
        m = sm[bi]
        taken[m] = 1
        blocked = False
        for k in range(nw):
            if abs(su[bi] - wr[k]) <= off and abs(sv[bi] - wc[k]) <= off:
                blocked = True
        if not blocked:
            wm[nw] = m
            wr[nw] = su[bi]
            wc[nw] = sv[bi]
            nw += 1


@njit(cache=True)
def _sort_winners_by_map(wm, wr, wc, nw):
    for a in range(1, nw):  # insertion sort: at most M winners
        m, r, c = wm[a], wr[a], wc[a]
        b = a - 1
        while b >= 0 and wm[b] > m:
            wm[b + 1], wr[b + 1], wc[b + 1] = wm[b], wr[b], wc[b]
            b -= 1
        wm[b + 1], wr[b + 1], wc[b + 1] = m, r, c


@njit(cache=True)
def _train_kernel(offsets, ev, Wk, K, M, threshold, steps, H, prm, st, ictl, fctl,
                  sched, snaps, snap_steps, win_log, win_per_step, updates, win_window,
                  weights_trace, pot_probe):
    """Sequential STDP training over the images of ``offsets``/``ev`` (one epoch).

    ictl = [homeostasis, homeostasis_const, competition (0 greedy, 1 per_map), inhibition offset,
            snapshot_period, lr_period, step0_doubling, epoch-local index of the first image,
            global step at which the epoch started]
    fctl = [homeostasis_limit]
    sched = [global_step, level, n_snaps, n_wins] (updated in place, carried across calls, like
    ``updates`` and the homeostasis window counts ``win_window``)
    """
    literally(K)
    N = len(offsets) - 1
    C = Wk.shape[0]
    homeo = ictl[0] != 0
    hconst = ictl[1]
    per_map = ictl[2] != 0
    off = ictl[3]
    snap_period = ictl[4]
    lr_period = ictl[5]
    step0 = ictl[6] != 0
    limit = fctl[0]
    V = np.zeros((H, H, M), dtype=pot_probe.dtype)
    fired = np.zeros((H, H), dtype=np.uint8)
    dirty = np.zeros((H, H), dtype=np.uint8)
    pre = np.zeros((C, H + K - 1, H + K - 1), dtype=np.uint8)
    allowed = np.zeros((M, H, H), dtype=np.uint8)
    sm = np.empty(H * H, dtype=np.int64)
    su = np.empty(H * H, dtype=np.int64)
    sv = np.empty(H * H, dtype=np.int64)
    val = np.empty(H * H, dtype=V.dtype)
    Vf = V.reshape(H * H * M)
    Wf = Wk.reshape(C * K * K * M)
    alive = np.empty(H * H, dtype=np.bool_)
    wm = np.empty(M, dtype=np.int64)
    wr = np.empty(M, dtype=np.int64)
    wc = np.empty(M, dtype=np.int64)
    suppressed = np.zeros(M, dtype=np.bool_)
    trace = weights_trace.shape[0] > 0
    for n in range(N):
        V[:] = 0
        fired[:] = 0
        pre[:] = 0
        allowed[:] = 1
        image = ictl[7] + n  # epoch-local image index (the reference's t // 12)
        i = offsets[n]
        end = offsets[n + 1]
        for t in range(steps):
            g = sched[0]
            if homeo and image % hconst == 0:
                win_window[:] = 0
            j = next_event_block(ev, i, end, t)
            integrate(K, M, Wf, Vf, dirty, pre, ev, i, j)
            i = j
            ns = fire(Vf, M, fired, dirty, threshold, sm, su, sv)
            any_cand = False
            for k in range(ns):
                alive[k] = allowed[sm[k], su[k], sv[k]] != 0
                val[k] = V[su[k], sv[k], sm[k]]
                if alive[k]:
                    any_cand = True
            nw = 0
            if any_cand:
                if homeo:
                    for m in range(M):
                        suppressed[m] = win_window[m] > limit
                        if suppressed[m]:
                            homeostasis_decay(Wk, m, prm, st)
                    for k in range(ns):
                        if suppressed[sm[k]]:
                            alive[k] = False
                if per_map:
                    nw = _compete_per_map(sm, su, sv, val, alive, ns, off, M, wm, wr, wc)
                else:
                    nw = _compete_greedy(sm, su, sv, val, alive, ns, off, wm, wr, wc)
                _sort_winners_by_map(wm, wr, wc, nw)
                for k in range(nw):
                    m, r, c = wm[k], wr[k], wc[k]
                    stdp_update(Wk, m, r, c, pre, sched[1], prm, st)
                    r0 = max(r - off, 0)
                    r1 = min(r + off, H - 1)
                    c0 = max(c - off, 0)
                    c1 = min(c + off, H - 1)
                    allowed[:, r0:r1 + 1, c0:c1 + 1] = 0
                    allowed[m, :, :] = 0
                    updates[m] += 1
                    win_window[m] += 1
                    w = sched[3]
                    if w < win_log.shape[0]:
                        win_log[w, 0] = g
                        win_log[w, 1] = m
                        win_log[w, 2] = r
                        win_log[w, 3] = c
                    sched[3] = w + 1
            win_per_step[g] = nw
            if (g - ictl[8]) % snap_period == 0 and sched[2] < snaps.shape[0]:
                snaps[sched[2]] = Wk
                snap_steps[sched[2]] = g
                sched[2] += 1
            if g % lr_period == 0 and (g > 0 or step0):
                sched[1] += 1
            sched[0] = g + 1
        if trace:
            weights_trace[n] = Wk
    return 0


@dataclass(eq=False)
class TrainTrace:
    """What STDP training produced and observed.

    ``weights``: the weights inference should use (the last snapshot when
    ``last_snapshot_weights``, else the final ones), (M, C, K, K). ``final_weights``: after the
    last step. ``snapshots`` (S, M, C, K, K) and ``snapshot_steps`` (S,). ``winners`` (W, 4)
    rows ``(global step, map, row, col)`` in the order applied. ``winners_per_step`` (steps,).
    ``updates_per_map`` (M,). ``weights_per_image`` (N, M, C, K, K) when traced.
    ``level``: learning-rate doublings so far; ``lfsr_state``: after the last rounding.
    """

    weights: np.ndarray
    final_weights: np.ndarray
    snapshots: np.ndarray
    snapshot_steps: np.ndarray
    winners: np.ndarray
    winners_per_step: np.ndarray
    updates_per_map: np.ndarray
    weights_per_image: np.ndarray | None
    level: int
    lfsr_state: int
    to_unit: object = field(repr=False, default=None)

    def winners_per_image(self, steps: int = TIME_STEPS) -> np.ndarray:
        return self.winners_per_step.reshape(-1, steps).sum(axis=1)

    def convergence(self) -> tuple[np.ndarray, np.ndarray]:
        """``C_l = mean(w(1-w))`` and ``TD = mean((w_{s-1} - w_s)^2)`` per snapshot s >= 1
        (spec section 8, eq. 22/23), weights as fractions of 1."""
        w = self.to_unit(self.snapshots)
        w = w.reshape(len(w), -1)
        n = w.shape[1]
        conv = (w[1:] * (1 - w[1:])).sum(axis=1) / n
        td = ((w[:-1] - w[1:]) ** 2).sum(axis=1) / n
        return conv, td


def train_conv(events: SpikeEvents, weights0: np.ndarray, opts: ConvOptions, arith: Arithmetic, *,
               epochs: int = 1, trace_weights: bool = False, progress=None,
               chunk: int = 2000) -> TrainTrace:
    """STDP-train a conv layer on ``events`` (all images, ``epochs`` times), sequentially.

    ``progress``: an optional :class:`spykehw.golden.progress.Progress` advanced per chunk of images.
    """
    C, S, _ = events.shape
    if (C, S) != (opts.in_channels, opts.in_size):
        raise ValueError(f"events are {C}x{S}x{S}, the layer expects "
                         f"{opts.in_channels}x{opts.in_size}x{opts.in_size}")
    N, H, M, steps = len(events), opts.out_size, opts.maps, events.steps
    Wk = to_kernel_layout(weights0, arith.weight_dtype)
    st = arith.new_state()
    total_steps = N * steps * epochs
    n_snaps = epochs * ((N * steps - 1) // opts.snapshot_period + 1)
    snaps = np.zeros((n_snaps,) + Wk.shape, dtype=Wk.dtype)
    snap_steps = np.zeros(n_snaps, dtype=np.int64)
    # Each map wins at most once per image, and winners are >= 6 apart: min(M, positions) per image.
    win_log = np.zeros((N * epochs * min(M, H * H), 4), dtype=np.int64)
    win_per_step = np.zeros(total_steps, dtype=np.int64)
    updates = np.zeros(M, dtype=np.int64)
    win_window = np.zeros(M, dtype=np.int64)
    wtrace = np.zeros((N * epochs if trace_weights else 0,) + Wk.shape, dtype=Wk.dtype)
    ictl = np.array([opts.homeostasis, opts.homeostasis_const, opts.competition == "per_map",
                     opts.inhibition_offset, opts.snapshot_period, opts.lr_period,
                     opts.step0_doubling, 0, 0], dtype=np.int64)
    fctl = np.array([opts.homeostasis_limit], dtype=np.float64)
    sched = np.zeros(4, dtype=np.int64)
    thr = arith.potential_dtype(arith.threshold)
    probe = np.zeros(1, dtype=arith.potential_dtype)
    for epoch in range(epochs):
        ictl[8] = sched[0]
        for a in range(0, N, chunk):
            b = min(N, a + chunk)
            sub = events if (a, b) == (0, N) else events.select(np.arange(a, b))
            ictl[7] = a
            wt = wtrace[epoch * N + a: epoch * N + b] if trace_weights else wtrace
            _train_kernel(sub.offsets, sub.ev, Wk, opts.kernel, opts.maps, thr, steps, H, arith.prm,
                          st, ictl, fctl, sched, snaps, snap_steps, win_log, win_per_step, updates,
                          win_window, wt, probe)
            if progress is not None:
                progress.advance(b - a)
    n_s = int(sched[2])
    snaps_pub = np.stack([from_kernel_layout(s, np.float32 if arith.kind == "float" else np.int64)
                          for s in snaps[:n_s]]) if n_s else np.zeros((0,) + weights0.shape)
    final = from_kernel_layout(Wk, np.float32 if arith.kind == "float" else np.int64)
    use = snaps_pub[-1] if (opts.last_snapshot_weights and n_s) else final
    n_w = int(min(sched[3], len(win_log)))
    wpi = (np.stack([from_kernel_layout(w, final.dtype) for w in wtrace]) if trace_weights else None)
    return TrainTrace(use.copy(), final, snaps_pub, snap_steps[:n_s].copy(), win_log[:n_w].copy(),
                      win_per_step, updates, wpi, int(sched[1]), int(st[0]), arith.to_unit)
