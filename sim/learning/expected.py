"""What the learning core must produce: the golden ``train_conv`` run image by image (winners and
weights after every image), the reference of the learning testbenches and vector files.
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
]


@dataclass
class LearnExpectation:
    """Golden training of one sequence: ``winners[n]`` (k, 4) rows ``(t, m, r, c)``,
    ``weights[n]`` (M, C, K, K) after image ``n``, and ``level``: the learning-rate doublings
    after the last image."""

    winners: list[np.ndarray]
    weights: np.ndarray
    level: int = 0


def golden_training(events: Sequence[np.ndarray], weights0: np.ndarray, opts: "ConvOptions",
                    formats: "NumberFormats", *, steps: int = TIME_STEPS,
                    max_spikes_per_input: int = 1) -> LearnExpectation:
    """The golden integer STDP training (``train_conv``, one epoch) of ``events`` (per image
    ``(k, 4)`` rows ``(t, c, y, x)`` in the golden order) from ``weights0``."""

    S, C = opts.in_size, opts.in_channels
    arith = int_arithmetic(opts, formats, max_spikes_per_input=max_spikes_per_input)
    tr = train_conv(SpikeEvents(*ragged(events), steps, (C, S, S)), np.asarray(weights0, dtype=np.int64),
                    opts, arith, trace_weights=True)
    win = np.asarray(tr.winners, dtype=np.int64).reshape(-1, 4)
    per = []
    for n in range(len(events)):
        rows = win[(win[:, 0] >= n * steps) & (win[:, 0] < (n + 1) * steps)].copy()
        rows[:, 0] -= n * steps
        per.append(rows)
    wpi = (np.asarray(tr.weights_per_image, dtype=np.int64) if len(events)
           else np.zeros((0,) + np.shape(weights0), np.int64))
    return LearnExpectation(per, wpi, int(tr.level))
