"""Spike trains as event lists: the currency between encoder, conv layers and pool.

A :class:`SpikeEvents` holds the spikes of N images in CSR form: ``offsets`` (N+1,) and
``ev`` (E, 4) int16 rows ``(t, c, y, x)``. Within an image, events are sorted by time step and,
within a step, row-major by ``(c, y, x)``; that is the order in which a layer integrates them.
Conv1 inputs spike at most once (a latency map); Pool1 neurons, the Conv2 inputs, can spike at
several steps (spec 5.2), which is why the general form is a list of events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .options import TIME_STEPS

__all__ = ["SpikeEvents", "events_from_latencies", "dense_from_events"]


@dataclass(frozen=True, eq=False)
class SpikeEvents:
    offsets: np.ndarray
    ev: np.ndarray
    steps: int
    shape: tuple[int, int, int]
    """(channels, height, width) of one step's input."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def image(self, n: int) -> np.ndarray:
        return self.ev[self.offsets[n]:self.offsets[n + 1]]

    def select(self, idx: np.ndarray) -> "SpikeEvents":
        idx = np.asarray(idx, dtype=np.int64)
        counts = self.offsets[idx + 1] - self.offsets[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        ev = np.empty((offsets[-1], 4), dtype=np.int16)
        for k, n in enumerate(idx):
            ev[offsets[k]:offsets[k + 1]] = self.image(n)
        return SpikeEvents(offsets, ev, self.steps, self.shape)


@njit(cache=True, parallel=True)
def _count_spikes(lat):
    n = lat.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        counts[i] = np.sum(lat[i] >= 0)
    return counts


@njit(cache=True, parallel=True)
def _fill_events(lat, steps, offsets, ev):
    N, C, S, _ = lat.shape
    for i in prange(N):
        # Counting sort by time; within a step the (c, y, x) scan is already row-major.
        k = offsets[i]
        for t in range(steps):
            for c in range(C):
                for y in range(S):
                    for x in range(S):
                        if lat[i, c, y, x] == t:
                            ev[k, 0] = t
                            ev[k, 1] = c
                            ev[k, 2] = y
                            ev[k, 3] = x
                            k += 1


def events_from_latencies(lat: np.ndarray, steps: int = TIME_STEPS) -> SpikeEvents:
    """Latency maps (N, C, S, S) int8 (-1 = silent) -> events (each input spikes at most once)."""
    lat = np.ascontiguousarray(lat, dtype=np.int8)
    if lat.ndim != 4 or lat.shape[2] != lat.shape[3]:
        raise ValueError(f"latencies must be (N, C, S, S), got {lat.shape}")
    if lat.size and (lat.max() >= steps or lat.min() < -1):
        raise ValueError(f"latencies must be -1 or in 0..{steps - 1}")
    counts = _count_spikes(lat)
    offsets = np.zeros(len(lat) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    ev = np.empty((offsets[-1], 4), dtype=np.int16)
    _fill_events(lat, steps, offsets, ev)
    return SpikeEvents(offsets, ev, steps, (lat.shape[1], lat.shape[2], lat.shape[3]))


def dense_from_events(events: SpikeEvents, n: int) -> np.ndarray:
    """Spike tensor (T, C, H, W) uint8 of image ``n`` (counts; > 1 only for multi-spike inputs)."""
    out = np.zeros((events.steps,) + events.shape, dtype=np.uint8)
    for t, c, y, x in events.image(n):
        out[t, c, y, x] += 1
    return out
