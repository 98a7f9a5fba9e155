"""The conv layer with lateral inhibition and STDP: one kernel for the float and integer models.

Dynamics per image (spec sections 3-5), for each step ``t`` of ``steps``:

1. **Integrate** the step's input events: ``V[u, v, m] += W[m, c, kr, kc]`` for every output
   position ``(u, v) = (y - kr, x - kc)`` of an input spike ``(c, y, x)``. Non-leaky, no reset.
   Positions that have already fired are skipped: they can never fire again in this image and
   their potential is not observable (this is also what the RTL does).
2. **Fire with lateral inhibition**: at every not-yet-fired position touched in this step,
   ``m* = argmax_m V[u, v, m]`` (lowest map on ties); if ``V[u, v, m*] >= threshold`` the
   position fires once, in map ``m*``, and is blocked for the rest of the image. New spikes are
   listed row-major ``(u, v)``.
3. **Training only** (STDP competition and update, spec 4):

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

Weights are ``(M, C, K, K)`` in the public API; kernels use ``(C, K, K, M)`` with the ``kc`` axis
reversed, so that integration runs over contiguous memory (see ``_integrate``). With stochastic rounding, LFSR steps are consumed in this order within a step:
homeostasis decays (maps ascending, weights ``(c, kr, kc)``), then winners (maps ascending,
weights ``(c, kr, kc)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import literally, njit, prange

from .arithmetic import Arithmetic, homeostasis_decay, stdp_update
from .fixed import round_half_up
from .options import TIME_STEPS, ConvOptions
from .spikes import SpikeEvents

__all__ = [
    "init_weights",
    "quantize_weights",
    "to_kernel_layout",
    "from_kernel_layout",
    "ConvRun",
    "run_conv",
    "TrainTrace",
    "train_conv",
]


# ----- weights ------------------------------------------------------------------------------

def init_weights(opts: ConvOptions) -> np.ndarray:
    """The authors' initialisation (``network_setup``): ``np.random.seed(seed)``, then
    ``normal(init_mean, init_std, K*K*C*M)`` reshaped C-order to (1, 1, K*K, C, M); values
    ``>= 1`` or ``<= 0`` become ``init_mean``; float32. Returned as (M, C, K, K)."""
    K, C, M = opts.kernel, opts.in_channels, opts.maps
    rng = np.random.RandomState(opts.seed)
    w = rng.normal(opts.init_mean, opts.init_std, K * K * C * M)
    w[(w >= 1.0) | (w <= 0.0)] = opts.init_mean
    w = w.astype(np.float32).reshape(K, K, C, M)  # index 25 = kr*5 + kc (spec 3.1)
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def quantize_weights(w: np.ndarray, weight_bits: int) -> np.ndarray:
    """Float weights in [0, 1) -> UQ0.B integers ``round_half_up(w * 2**B)``, saturated."""
    q = round_half_up(np.asarray(w, dtype=np.float64) * float(1 << weight_bits))
    return np.clip(q, 0, (1 << weight_bits) - 1)


def to_kernel_layout(w: np.ndarray, dtype) -> np.ndarray:
    """(M, C, K, K) -> kernel layout (C, K, K, M) with the kc axis reversed (see _integrate)."""
    return np.ascontiguousarray(np.asarray(w).transpose(1, 2, 3, 0)[:, :, ::-1, :], dtype=dtype)


def from_kernel_layout(wk: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(wk[:, :, ::-1, :].transpose(3, 0, 1, 2), dtype=dtype)


# ----- shared step functions -----------------------------------------------------------------

@njit(cache=True, inline="always")
def _integrate(K, M, Wf, Vf, dirty, pre, ev, i0, i1):
    """Add the events ``ev[i0:i1]`` (all of one step) to the potentials.

    With the kc axis of ``Wk`` reversed, the 5 output positions ``(u, x-4..x)`` of an input spike
    and the 5 weight columns they take are the same contiguous run of ``5*M`` values in ``V`` and
    in ``Wk``: one vectorisable loop per kernel row. Fired positions are integrated too (cheaper
    than skipping them, and their potential is never looked at again). ``Wf`` and ``Vf`` are flat
    views of the weights and potentials; indices are unsigned so that numba emits no
    negative-index wraparound, and the callers make ``K`` a compile-time constant
    (``numba.literally``): together 3x faster, as LLVM then vectorises the inner loop.
    """
    H = dirty.shape[0]
    Mu = np.uint64(M)
    for i in range(i0, i1):
        c = np.int64(ev[i, 1])
        y = np.int64(ev[i, 2])
        x = np.int64(ev[i, 3])
        pre[c, y, x] = 1
        v0 = x - (K - 1)
        v1 = x
        j0 = 0
        if v0 < 0:
            j0 = -v0
            v0 = 0
        if v1 > H - 1:
            v1 = H - 1
        if v1 < v0:
            continue
        n = np.uint64(v1 - v0 + 1) * Mu
        for kr in range(K):
            u = y - kr
            if u < 0 or u >= H:
                continue
            a = np.uint64(u * H + v0) * Mu
            b = np.uint64((c * K + kr) * K + j0) * Mu
            for q in range(n):
                Vf[a + q] += Wf[b + q]
            for v in range(v0, v1 + 1):
                dirty[u, v] = 1


@njit(cache=True, inline="always")
def _fire(Vf, M, fired, dirty, threshold, sm, su, sv):
    """Threshold + lateral inhibition at the touched positions; returns the new spike count.

    ``Vf`` is the flat potential array (position-major, ``M`` maps per position).
    """
    H = fired.shape[0]
    Mu = np.uint64(M)
    n = 0
    for u in range(H):
        for v in range(H):
            if not dirty[u, v]:
                continue
            dirty[u, v] = 0
            if fired[u, v]:
                continue
            # max first (a branch-free, vectorised reduction); the index only for the few that fire
            a = np.uint64(u * H + v) * Mu
            best = Vf[a]
            for q in range(np.uint64(1), Mu):
                best = max(best, Vf[a + q])
            if best >= threshold:
                bm = np.uint64(0)
                while Vf[a + bm] != best:
                    bm += np.uint64(1)
                fired[u, v] = 1
                sm[n] = bm
                su[n] = u
                sv[n] = v
                n += 1
    return n


@njit(cache=True, inline="always")
def _next_event_block(ev, i, end, t):
    j = i
    while j < end and ev[j, 0] == t:
        j += 1
    return j


# ----- inference ---------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def _infer_batch(offsets, ev, Wk, K, M, threshold, steps, H, pool, out_t, out_m, out_u, out_v, counts,
                 features, pool_counts, chunks, pot_dtype_probe):
    literally(K)
    N = len(offsets) - 1
    C = Wk.shape[0]
    S = pool
    record = out_t.shape[0] > 0
    for ch in prange(chunks):
        n0 = ch * N // chunks
        n1 = (ch + 1) * N // chunks
        V = np.zeros((H, H, M), dtype=pot_dtype_probe.dtype)
        fired = np.zeros((H, H), dtype=np.uint8)
        dirty = np.zeros((H, H), dtype=np.uint8)
        pre = np.zeros((C, H + K - 1, H + K - 1), dtype=np.uint8)
        sm = np.empty(H * H, dtype=np.int64)
        su = np.empty(H * H, dtype=np.int64)
        sv = np.empty(H * H, dtype=np.int64)
        stamp = np.zeros((M, S, S), dtype=np.int32)
        Vf = V.reshape(H * H * M)
        Wf = Wk.reshape(C * K * K * M)
        for n in range(n0, n1):
            V[:] = 0
            fired[:] = 0
            stamp[:] = 0
            i = offsets[n]
            end = offsets[n + 1]
            total = 0
            for t in range(steps):
                j = _next_event_block(ev, i, end, t)
                _integrate(K, M, Wf, Vf, dirty, pre, ev, i, j)
                i = j
                ns = _fire(Vf, M, fired, dirty, threshold, sm, su, sv)
                for k in range(ns):
                    m = sm[k]
                    u = su[k]
                    v = sv[k]
                    if record:
                        out_t[n, total] = t
                        out_m[n, total] = m
                        out_u[n, total] = u
                        out_v[n, total] = v
                    total += 1
                    pi = u // 2
                    pj = v // 2
                    if pi < S and pj < S:
                        features[n, m * S * S + pi * S + pj] = 1
                        # A pool neuron spikes at a step if any of its 2x2 inputs fired then.
                        if stamp[m, pi, pj] != t + 1:
                            stamp[m, pi, pj] = t + 1
                            pool_counts[n, m] += 1
            counts[n] = total
    return 0


@dataclass(frozen=True, eq=False)
class ConvRun:
    """Result of running a conv layer (inference) on N images.

    ``features`` (N, M*P*P) uint8: pool bit ``m*P*P + i*P + j`` is 1 iff a neuron of map ``m`` in
    rows ``2i..2i+1`` and cols ``2j..2j+1`` fired at any step (the binarised Pool output).
    ``pool_counts`` (N, M): pool spikes per map summed over steps (a pool neuron spikes at a step
    if any of its inputs fired then). ``spike_counts`` (N,): conv spikes per image.
    ``spikes`` (only with ``record=True``): arrays ``t, m, u, v`` of shape (N, H*H), the first
    ``spike_counts[n]`` entries valid, in firing order (step, then row-major).
    """

    features: np.ndarray
    pool_counts: np.ndarray
    spike_counts: np.ndarray
    spikes: dict[str, np.ndarray] | None = None

    def spike_list(self, n: int) -> np.ndarray:
        """(k, 4) int array of ``(t, m, u, v)`` for image ``n``."""
        if self.spikes is None:
            raise ValueError("run_conv(..., record=True) is needed for spike lists")
        k = int(self.spike_counts[n])
        return np.stack([self.spikes[f][n, :k] for f in ("t", "m", "u", "v")], axis=1).astype(np.int64)

    def spike_tensor(self, n: int, steps: int) -> np.ndarray:
        """(T, M, H, H) uint8 of image ``n``'s conv spikes."""
        M = self.pool_counts.shape[1]
        H = int(round(np.sqrt(self.spikes["t"].shape[1])))
        out = np.zeros((steps, M, H, H), dtype=np.uint8)
        for t, m, u, v in self.spike_list(n):
            out[t, m, u, v] = 1
        return out


def _chunks() -> int:
    from numba import get_num_threads
    return max(1, get_num_threads()) * 4


def run_conv(events: SpikeEvents, weights: np.ndarray, opts: ConvOptions, arith: Arithmetic, *,
             record: bool = False) -> ConvRun:
    """Inference of one conv layer (+ pool) on every image of ``events`` (numba, parallel)."""
    C, S, _ = events.shape
    if (C, S) != (opts.in_channels, opts.in_size):
        raise ValueError(f"events are {C}x{S}x{S}, the layer expects "
                         f"{opts.in_channels}x{opts.in_size}x{opts.in_size}")
    if weights.shape != (opts.maps, opts.in_channels, opts.kernel, opts.kernel):
        raise ValueError(f"weights must be (M, C, K, K) = "
                         f"{(opts.maps, opts.in_channels, opts.kernel, opts.kernel)}, got {weights.shape}")
    N, H, P, M = len(events), opts.out_size, opts.pool_size, opts.maps
    Wk = to_kernel_layout(weights, arith.weight_dtype)
    shape = (N, H * H) if record else (0, 0)
    out = {f: np.zeros(shape, dtype=np.int16) for f in ("t", "m", "u", "v")}
    counts = np.zeros(N, dtype=np.int64)
    features = np.zeros((N, M * P * P), dtype=np.uint8)
    pool_counts = np.zeros((N, M), dtype=np.int32)
    thr = arith.potential_dtype(arith.threshold)
    _infer_batch(events.offsets, events.ev, Wk, opts.kernel, opts.maps, thr, events.steps, H, P, out["t"], out["m"],
                 out["u"], out["v"], counts, features, pool_counts, min(_chunks(), max(N, 1)),
                 np.zeros(1, dtype=arith.potential_dtype))
    return ConvRun(features, pool_counts, counts, out if record else None)


# ----- training ----------------------------------------------------------------------------

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
            j = _next_event_block(ev, i, end, t)
            _integrate(K, M, Wf, Vf, dirty, pre, ev, i, j)
            i = j
            ns = _fire(Vf, M, fired, dirty, threshold, sm, su, sv)
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

