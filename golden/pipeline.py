"""The SpykeFlow feature pipeline for either model: encode -> Conv1 (STDP) -> Pool1 features.

``fmt=None`` selects the float reference; a :class:`~spykehw.golden.formats.NumberFormats`
selects the bit-accurate integer model with those formats. Both start from the same float
initial weights (the integer model quantizes them), so the two can be compared run for run.
Work is chunked so memory stays bounded on full datasets and progress can be shown.
"""

from __future__ import annotations

import numpy as np

from .arithmetic import Arithmetic, float_arithmetic, int_arithmetic
from .conv import ConvRun, init_weights, quantize_weights, run_conv
from .conv_training import TrainTrace, train_conv
from .encoding import encode_float, encode_int
from .formats import NumberFormats
from .options import ConvOptions, EncoderOptions, NetworkOptions, PoolOptions
from .pool import pool_spikes
from .spikes import SpikeEvents, events_from_latencies

__all__ = ["model_name", "conv1_arithmetic", "initial_conv1_weights", "encode", "encode_events",
           "train_conv1", "extract_features"]

_CHUNK = 10000


def model_name(fmt: NumberFormats | None) -> str:
    return "float" if fmt is None else f"int[{fmt.name}]"


def conv1_arithmetic(conv: ConvOptions, fmt: NumberFormats | None) -> Arithmetic:
    return float_arithmetic(conv) if fmt is None else int_arithmetic(conv, fmt)


def initial_conv1_weights(conv: ConvOptions, fmt: NumberFormats | None) -> np.ndarray:
    """The authors' initial weights, quantized to UQ0.B for the integer model."""
    w = init_weights(conv)
    return w if fmt is None else quantize_weights(w, fmt.conv.weight_bits)


def encode(images: np.ndarray, enc: EncoderOptions, fmt: NumberFormats | None) -> np.ndarray:
    """Latencies (N, 2, 27, 27) int8 from uint8 images (N, 28, 28)."""
    return encode_float(images, enc) if fmt is None else encode_int(images, enc, fmt)


def encode_events(images: np.ndarray, enc: EncoderOptions, fmt: NumberFormats | None) -> SpikeEvents:
    return events_from_latencies(encode(images, enc, fmt), enc.steps)


def train_conv1(images: np.ndarray, opts: NetworkOptions, fmt: NumberFormats | None, *,
                progress=None, trace_weights: bool = False) -> TrainTrace:
    """STDP-train Conv1 on ``images`` (one epoch, in order), from the authors' initial weights."""
    events = encode_events(images, opts.encoder, fmt)
    return train_conv(events, initial_conv1_weights(opts.conv, fmt), opts.conv,
                      conv1_arithmetic(opts.conv, fmt), progress=progress, trace_weights=trace_weights)


def extract_features(images: np.ndarray, weights: np.ndarray, opts: NetworkOptions,
                     fmt: NumberFormats | None, *, progress=None) -> ConvRun:
    """Encode + Conv1 inference + Pool1 for every image: features (N, 3630) and spike counts.

    With the default Pool1 options the conv kernel's own pool gives the features; otherwise
    (lateral inhibition or accumulation, :class:`~spykehw.golden.options.PoolOptions`) they and
    the pool spike counts come from :func:`~spykehw.golden.pool.pool_spikes`."""
    arith = conv1_arithmetic(opts.conv, fmt)
    special = opts.pool1 != PoolOptions()
    feats, pools, counts = [], [], []
    for a in range(0, len(images), _CHUNK):
        chunk = images[a:a + _CHUNK]
        run = run_conv(encode_events(chunk, opts.encoder, fmt), weights, opts.conv, arith, record=special)
        if special:
            pr = pool_spikes(run, opts.conv.maps, opts.conv.pool_size, opts.encoder.steps, opts.pool1)
            run = ConvRun(pr.features, pr.pool_counts, run.spike_counts)
        feats.append(run.features)
        pools.append(run.pool_counts)
        counts.append(run.spike_counts)
        if progress is not None:
            progress.advance(len(chunk))
    if not feats:
        M = opts.conv.maps
        return ConvRun(np.zeros((0, opts.conv.features), np.uint8), np.zeros((0, M), np.int32),
                       np.zeros(0, np.int64))
    return ConvRun(np.concatenate(feats), np.concatenate(pools), np.concatenate(counts))
