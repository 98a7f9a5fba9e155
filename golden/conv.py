"""The conv layer with lateral inhibition (inference, with Pool1): one numba kernel for the float
and integer models; its STDP training is :mod:`spykehw.golden.conv_training`, on the same step
functions.

Dynamics per image (spec sections 3-5), for each step ``t`` of ``steps``:

1. **Integrate** the step's input events: ``V[u, v, m] += W[m, c, kr, kc]`` for every output
   position ``(u, v) = (y - kr, x - kc)`` of an input spike ``(c, y, x)``. Non-leaky, no reset.
   Positions that have already fired are skipped: they can never fire again in this image and
   their potential is not observable (this is also what the RTL does).
2. **Fire with lateral inhibition**: at every not-yet-fired position touched in this step,
   ``m* = argmax_m V[u, v, m]`` (lowest map on ties); if ``V[u, v, m*] >= threshold`` the
   position fires once, in map ``m*``, and is blocked for the rest of the image. New spikes are
   listed row-major ``(u, v)``.
3. **Training only**: STDP competition and update, :mod:`spykehw.golden.conv_training`.

Weights are ``(M, C, K, K)`` in the public API; kernels use ``(C, K, K, M)`` with the ``kc`` axis
reversed, so that integration runs over contiguous memory (see :func:`integrate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, literally, njit, prange

from .arithmetic import Arithmetic
from .fixed import round_half_up
from .options import ConvOptions
from .spikes import SpikeEvents

__all__ = [
    "init_weights",
    "quantize_weights",
    "to_kernel_layout",
    "from_kernel_layout",
    "integrate",
    "fire",
    "next_event_block",
    "ConvRun",
    "run_conv",
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


# ----- step functions (inference and training) ----------------------------------------------

@njit(cache=True, inline="always")
def integrate(K, M, Wf, Vf, dirty, pre, ev, i0, i1):
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
def fire(Vf, M, fired, dirty, threshold, sm, su, sv):
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
def next_event_block(ev, i, end, t):
    j = i
    while j < end and ev[j, 0] == t:
        j += 1
    return j


# ----- inference ---------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def _infer_batch(offsets, ev, Wk, K, M, threshold, steps, H, pool, out_t, out_m, out_u, out_v, out_p,
                 counts, features, pool_counts, chunks, pot_dtype_probe):
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
                j = next_event_block(ev, i, end, t)
                integrate(K, M, Wf, Vf, dirty, pre, ev, i, j)
                i = j
                ns = fire(Vf, M, fired, dirty, threshold, sm, su, sv)
                for k in range(ns):
                    m = sm[k]
                    u = su[k]
                    v = sv[k]
                    if record:
                        out_t[n, total] = t
                        out_m[n, total] = m
                        out_u[n, total] = u
                        out_v[n, total] = v
                        out_p[n, total] = V[u, v, m]
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
    ``spike_counts[n]`` entries valid, in firing order (step, then row-major), and ``p``, the
    potential of each spiking neuron at its step (what Pool1's lateral inhibition compares).
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
    out["p"] = np.zeros(shape, dtype=arith.potential_dtype)
    counts = np.zeros(N, dtype=np.int64)
    features = np.zeros((N, M * P * P), dtype=np.uint8)
    pool_counts = np.zeros((N, M), dtype=np.int32)
    thr = arith.potential_dtype(arith.threshold)
    _infer_batch(events.offsets, events.ev, Wk, opts.kernel, opts.maps, thr, events.steps, H, P, out["t"], out["m"],
                 out["u"], out["v"], out["p"], counts, features, pool_counts, min(_chunks(), max(N, 1)),
                 np.zeros(1, dtype=arith.potential_dtype))
    return ConvRun(features, pool_counts, counts, out if record else None)

