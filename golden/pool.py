"""Pool1 spike trains as the authors' code makes them (spec 5), from a conv layer's recorded spikes.

The conv kernel (:func:`spykehw.golden.conv.run_conv`) already gives the binarised Pool1
features of the classification pipeline. This module makes the time-resolved Pool1 spike
trains that feed Conv2, under the two options of :class:`~spykehw.golden.options.PoolOptions`:

- neither option (net2, net4): pool neuron ``(m, i, j)`` spikes at step ``t`` iff some conv
  neuron of map ``m`` in rows ``2i..2i+1``, cols ``2j..2j+1`` fired at ``t`` (0..4 spikes);
- ``spike_accumulation`` alone: it spikes at every step from the first such ``t`` to the end
  of the image (the accumulated pooled potential stays ``>= threshold``);
- ``lateral_inhibition`` (net3, net5; accumulation then changes nothing, see the option's
  docstring): location ``(i, j)`` spikes once, at the first step ``t`` at which any conv
  neuron of its window fired, in the map whose new spikes there have the largest potential
  (the pooled potential ``max(spikes * V)``), the lowest map on ties.

Every conv spike has ``V >= threshold``, so a pooled potential with a spike under it always
crosses the threshold: the pool threshold never needs to be evaluated. Rows/cols beyond
``2 * P`` (row and col 22 of Conv1) are dropped (VALID pooling). The float reference and the
integer model share this code; they differ only in the potentials they recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .conv import ConvRun
from .options import PoolOptions
from .spikes import SpikeEvents

__all__ = ["PoolRun", "pool_spikes", "max_pool_spikes"]


def max_pool_spikes(pool: PoolOptions, steps: int) -> int:
    """Most spikes a Pool1 neuron emits per image (the Conv2 input bound of the integer model):
    1 with lateral inhibition, ``steps`` with accumulation, else 4 (its 2x2 inputs)."""
    if pool.lateral_inhibition:
        return 1
    return steps if pool.spike_accumulation else 4


@njit(cache=True)
def _dense(t, m, u, v, p, k, M, P, steps, inhibit, accumulate, S, first, best_p, best_m):
    """Image's pool spikes into ``S`` (steps, M, P, P) uint8 (cleared here)."""
    S[:] = 0
    if inhibit:
        first[:] = -1
        for q in range(k):
            i = u[q] // 2
            j = v[q] // 2
            if i >= P or j >= P:
                continue
            tq = t[q]
            if first[0, i, j] >= 0 and first[0, i, j] != tq:
                continue  # the location fired at an earlier step: blocked for the image
            mq = m[q]
            if first[0, i, j] < 0 or p[q] > best_p[i, j] or (p[q] == best_p[i, j] and mq < best_m[i, j]):
                first[0, i, j] = tq
                best_p[i, j] = p[q]
                best_m[i, j] = mq
        for i in range(P):
            for j in range(P):
                if first[0, i, j] >= 0:
                    S[first[0, i, j], best_m[i, j], i, j] = 1
        return
    if accumulate:
        first[:] = -1
        for q in range(k):
            i = u[q] // 2
            j = v[q] // 2
            if i < P and j < P and (first[m[q], i, j] < 0 or t[q] < first[m[q], i, j]):
                first[m[q], i, j] = t[q]
        for mm in range(M):
            for i in range(P):
                for j in range(P):
                    if first[mm, i, j] >= 0:
                        for tt in range(first[mm, i, j], steps):
                            S[tt, mm, i, j] = 1
        return
    for q in range(k):
        i = u[q] // 2
        j = v[q] // 2
        if i < P and j < P:
            S[t[q], m[q], i, j] = 1


@njit(cache=True, parallel=True)
def _pool_batch(t, m, u, v, p, counts, M, P, steps, inhibit, accumulate, offsets, ev, fill,
                features, pool_counts):
    """``fill=False``: ``offsets[n]`` = image n's event count; ``fill=True``: write its events
    from ``offsets[n]`` on (offsets cumulative by then) and its features and counts."""
    N = len(counts)
    for n in prange(N):
        S = np.zeros((steps, M, P, P), dtype=np.uint8)
        first = np.zeros((M, P, P), dtype=np.int64)
        best_p = np.zeros((P, P), dtype=p.dtype)
        best_m = np.zeros((P, P), dtype=np.int64)
        _dense(t[n], m[n], u[n], v[n], p[n], counts[n], M, P, steps, inhibit, accumulate, S,
               first, best_p, best_m)
        e = offsets[n] if fill else 0
        # (t, c, y, x) scan order = the event order SpikeEvents requires
        for tt in range(steps):
            for mm in range(M):
                for i in range(P):
                    for j in range(P):
                        if S[tt, mm, i, j]:
                            if fill:
                                ev[e, 0] = tt
                                ev[e, 1] = mm
                                ev[e, 2] = i
                                ev[e, 3] = j
                                features[n, (mm * P + i) * P + j] = 1
                                pool_counts[n, mm] += 1
                            e += 1
        if not fill:
            offsets[n] = e
    return 0


@dataclass(frozen=True, eq=False)
class PoolRun:
    """Pool1 of N images: ``events`` (the Conv2 input), ``features`` (N, M*P*P) uint8 binarised
    (index ``m*P*P + i*P + j``), ``pool_counts`` (N, M) spikes per map summed over steps."""

    events: SpikeEvents
    features: np.ndarray
    pool_counts: np.ndarray

    def spikes_per_image(self) -> np.ndarray:
        return self.pool_counts.sum(axis=1)


def pool_spikes(run: ConvRun, maps: int, pool_size: int, steps: int, pool: PoolOptions) -> PoolRun:
    """Pool spike trains from a ``run_conv(..., record=True)`` result."""
    if run.spikes is None:
        raise ValueError("pool_spikes needs run_conv(..., record=True)")
    s = run.spikes
    N, M, P = len(run.spike_counts), maps, pool_size
    args = (s["t"], s["m"], s["u"], s["v"], s["p"], run.spike_counts, M, P, steps,
            pool.lateral_inhibition, pool.spike_accumulation)
    offsets = np.zeros(N + 1, dtype=np.int64)
    features = np.zeros((N, M * P * P), dtype=np.uint8)
    pool_counts = np.zeros((N, M), dtype=np.int32)
    cnt = np.zeros(N, dtype=np.int64)
    _pool_batch(*args, cnt, np.zeros((0, 4), np.int16), False, features, pool_counts)
    np.cumsum(cnt, out=offsets[1:])
    ev = np.empty((offsets[-1], 4), dtype=np.int16)
    _pool_batch(*args, offsets, ev, True, features, pool_counts)
    return PoolRun(SpikeEvents(offsets, ev, steps, (M, P, P)), features, pool_counts)
