"""What the learning core must produce: the golden ``train_conv`` run image by image (winners,
weights and the last snapshot after every trained image, over any number of epochs), the
reference of the learning testbenches and vector files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.conv_training import train_conv
from ...golden.formats import NumberFormats
from ...golden.options import TIME_STEPS, ConvOptions
from ...golden.spikes import SpikeEvents
from ..framework.vectors import ragged

__all__ = [
    "LearnExpectation",
    "golden_training",
    "snapshot_after_image",
]


@dataclass
class LearnExpectation:
    """Golden training of one sequence, by trained image ``n`` (epoch ``n // N``, image
    ``n % N``): ``winners[n]`` (k, 4) rows ``(t, m, r, c)``, ``weights[n]`` (M, C, K, K) after
    it, ``snapshots[n]`` the last snapshot taken by then (the golden ``weights`` with
    ``last_snapshot_weights`` had training stopped after it), and ``level``: the learning-rate
    doublings after the last image."""

    winners: list[np.ndarray]
    weights: np.ndarray
    snapshots: np.ndarray
    level: int = 0


def snapshot_after_image(snapshot_steps: np.ndarray, images: int, steps: int) -> np.ndarray:
    """For each of ``images`` trained images, the index of the last snapshot taken at a global
    step inside or before it (snapshots are taken at the end of their step), -1 if none."""
    ends = (np.arange(images, dtype=np.int64) + 1) * steps
    return np.searchsorted(np.asarray(snapshot_steps, dtype=np.int64), ends, side="left") - 1


def golden_training(events: Sequence[np.ndarray], weights0: np.ndarray, opts: "ConvOptions",
                    formats: "NumberFormats", *, steps: int = TIME_STEPS,
                    max_spikes_per_input: int = 1, epochs: int = 1) -> LearnExpectation:
    """The golden integer STDP training (``train_conv``, ``epochs`` epochs) of ``events`` (per
    image ``(k, 4)`` rows ``(t, c, y, x)`` in the golden order) from ``weights0``."""

    S, C = opts.in_size, opts.in_channels
    arith = int_arithmetic(opts, formats, max_spikes_per_input=max_spikes_per_input)
    tr = train_conv(SpikeEvents(*ragged(events), steps, (C, S, S)), np.asarray(weights0, dtype=np.int64),
                    opts, arith, epochs=epochs, trace_weights=True)
    win = np.asarray(tr.winners, dtype=np.int64).reshape(-1, 4)
    per = []
    n_trained = len(events) * epochs
    for n in range(n_trained):
        rows = win[(win[:, 0] >= n * steps) & (win[:, 0] < (n + 1) * steps)].copy()
        rows[:, 0] -= n * steps
        per.append(rows)
    shape = np.shape(weights0)
    wpi = (np.asarray(tr.weights_per_image, dtype=np.int64) if n_trained
           else np.zeros((0,) + shape, np.int64))
    idx = snapshot_after_image(tr.snapshot_steps, n_trained, steps)
    snaps = np.asarray(tr.snapshots, dtype=np.int64).reshape((-1,) + shape)
    if (idx < 0).any():     # (cannot happen: every epoch snapshots at its step 0)
        raise ValueError("an image ended before the first snapshot")
    return LearnExpectation(per, wpi, snaps[idx], int(tr.level))
