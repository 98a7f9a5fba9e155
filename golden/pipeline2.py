"""The second layer for either model: Pool1 spike trains -> Conv2 (STDP) -> Pool2 features.

As the authors' net4/net5 (spec 6): Conv2 (:data:`~spykehw.golden.options.CONV2` by default)
is STDP-trained on the time-resolved Pool1 spikes of the first ``conv2_images`` training images
for ``conv2_epochs`` epochs (the image counter, snapshots' global steps and the rate schedule
continue across epochs); its Pool2 (7x7 -> 3x3, 200 * 9 = 1800) binarised features are the
second layer's output. ``fmt=None`` is the float reference; with a
:class:`~spykehw.golden.formats.NumberFormats`, the integer model: Conv2 weights in
``conv.weight_bits``, STDP constants ``conv2_stdp``, potentials wide enough for inputs spiking
:func:`~spykehw.golden.pool.max_pool_spikes` times.
"""

from __future__ import annotations

import numpy as np

from .arithmetic import Arithmetic, float_arithmetic, int_arithmetic
from .conv import ConvRun, init_weights, quantize_weights, run_conv
from .conv_training import TrainTrace, train_conv
from .formats import NumberFormats
from .options import NetworkOptions
from .pipeline import conv1_arithmetic, encode_events
from .pool import PoolRun, max_pool_spikes, pool_spikes
from .spikes import SpikeEvents

__all__ = ["conv2_arithmetic", "initial_conv2_weights", "pool1_spikes", "concat_events",
           "train_conv2", "extract_conv2"]

_CHUNK = 10000


def conv2_arithmetic(opts: NetworkOptions, fmt: NumberFormats | None) -> Arithmetic:
    if fmt is None:
        return float_arithmetic(opts.conv2)
    return int_arithmetic(opts.conv2, fmt.conv2_formats(),
                          max_spikes_per_input=max_pool_spikes(opts.pool1, opts.encoder.steps))


def initial_conv2_weights(opts: NetworkOptions, fmt: NumberFormats | None) -> np.ndarray:
    w = init_weights(opts.conv2)
    return w if fmt is None else quantize_weights(w, fmt.conv.weight_bits)


def concat_events(parts: list[SpikeEvents]) -> SpikeEvents:
    first = parts[0]
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += int(p.offsets[-1])
    ev = np.concatenate([p.ev for p in parts]) if parts else np.zeros((0, 4), np.int16)
    return SpikeEvents(np.concatenate(offsets), ev, first.steps, first.shape)


def pool1_spikes(images: np.ndarray, conv1_weights: np.ndarray, opts: NetworkOptions,
                 fmt: NumberFormats | None, *, progress=None) -> PoolRun:
    """Encode + Conv1 inference + Pool1 spike trains (with ``opts.pool1``) for every image."""
    arith = conv1_arithmetic(opts.conv, fmt)
    runs = []
    for a in range(0, max(len(images), 1), _CHUNK):
        chunk = images[a:a + _CHUNK]
        conv = run_conv(encode_events(chunk, opts.encoder, fmt), conv1_weights, opts.conv, arith, record=True)
        runs.append(pool_spikes(conv, opts.conv.maps, opts.conv.pool_size, opts.encoder.steps, opts.pool1))
        if progress is not None:
            progress.advance(len(chunk))
    return PoolRun(concat_events([r.events for r in runs]), np.concatenate([r.features for r in runs]),
                   np.concatenate([r.pool_counts for r in runs]))


def train_conv2(pool1: SpikeEvents, opts: NetworkOptions, fmt: NumberFormats | None, *,
                progress=None) -> TrainTrace:
    """STDP-train Conv2 on the first ``opts.conv2_images`` Pool1 spike trains, ``conv2_epochs``
    times, from the authors' initial weights."""
    n = min(opts.conv2_images, len(pool1))
    events = pool1 if n == len(pool1) else pool1.select(np.arange(n))
    return train_conv(events, initial_conv2_weights(opts, fmt), opts.conv2, conv2_arithmetic(opts, fmt),
                      epochs=opts.conv2_epochs, progress=progress)


def extract_conv2(pool1: SpikeEvents, weights: np.ndarray, opts: NetworkOptions,
                  fmt: NumberFormats | None, *, progress=None) -> ConvRun:
    """Conv2 inference + Pool2: features (N, 1800) and spike counts."""
    arith = conv2_arithmetic(opts, fmt)
    runs = []
    N = len(pool1)
    for a in range(0, N, _CHUNK):
        b = min(N, a + _CHUNK)
        sub = pool1 if (a, b) == (0, N) else pool1.select(np.arange(a, b))
        runs.append(run_conv(sub, weights, opts.conv2, arith))
        if progress is not None:
            progress.advance(b - a)
    if not runs:
        M = opts.conv2.maps
        return ConvRun(np.zeros((0, opts.conv2.features), np.uint8), np.zeros((0, M), np.int32),
                       np.zeros(0, np.int64))
    return ConvRun(np.concatenate([r.features for r in runs]), np.concatenate([r.pool_counts for r in runs]),
                   np.concatenate([r.spike_counts for r in runs]))
