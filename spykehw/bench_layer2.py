"""The second layer's benchmarks (``spykehw bench``: ``conv2_stdp_*``, ``conv2_extract_*``).

Both start from the Pool1 spike trains of the images (encode + Conv1 inference + Pool1 with
the options' ``pool1`` settings, :func:`spykehw.golden.pipeline2.pool1_spikes`), computed
untimed and reported beside the rate:

``conv2_stdp_float``, ``conv2_stdp_int``
    Conv2 STDP training (one epoch, in order) on the Pool1 trains of train images.
``conv2_extract_float``, ``conv2_extract_int``
    Conv2 inference + Pool2 features (:func:`spykehw.golden.pipeline2.extract_conv2`) of test
    images' Pool1 trains, with the Conv2 weights ``conv2_stdp_*`` trained (or trained here,
    untimed, on 500 images if it did not run); ``images_per_s_with_pool1`` also counts the
    Pool1 stage (the whole feature path from pixels).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .golden.pipeline2 import extract_conv2, pool1_spikes, train_conv2

__all__ = ["bench_conv2_stdp", "bench_conv2_extract"]


def _pool1(x, w1, opts, fmt):
    t0 = time.perf_counter()
    p1 = pool1_spikes(x, w1, opts, fmt)
    return p1, time.perf_counter() - t0


def bench_conv2_stdp(x: np.ndarray, w1: np.ndarray, opts, fmt, *, warmup: int, meter: Callable[[], Any],
                     weights_file: Path | None) -> dict[str, Any]:
    """Time :func:`train_conv2` on the Pool1 trains of ``x``; ``meter()`` starts a measurement
    whose ``done()`` gives ``seconds`` and memory."""
    p1, t_pool = _pool1(x, w1, opts, fmt)
    o = dataclasses.replace(opts, conv2_images=len(x), conv2_epochs=1)
    train_conv2(p1.events.select(np.arange(min(warmup, len(x)))), o, fmt)
    m = meter()
    trace = train_conv2(p1.events, o, fmt)
    r = m.done()
    if weights_file is not None:
        np.save(weights_file, trace.weights)
    return {**r, "pool1_seconds": round(t_pool, 4),
            "pool1_spikes_per_image": round(float(p1.spikes_per_image().mean()), 2),
            "winners_per_image": round(float(trace.winners_per_image().mean()), 3),
            "snapshots": int(len(trace.snapshots))}


def bench_conv2_extract(x: np.ndarray, w1: np.ndarray, opts, fmt, *, warmup: int, meter: Callable[[], Any],
                        weights_file: Path | None, train_x: np.ndarray) -> dict[str, Any]:
    if weights_file is not None and weights_file.is_file():
        w2, how = np.load(weights_file), "trained by the conv2_stdp benchmark"
    else:
        p1t, _ = _pool1(train_x[:500], w1, opts, fmt)
        w2 = train_conv2(p1t.events, dataclasses.replace(opts, conv2_images=500, conv2_epochs=1), fmt).weights
        how = f"trained here on {min(500, len(train_x))} images (untimed)"
    p1, t_pool = _pool1(x, w1, opts, fmt)
    extract_conv2(p1.events.select(np.arange(min(warmup, len(x)))), w2, opts, fmt)
    m = meter()
    run = extract_conv2(p1.events, w2, opts, fmt)
    r = m.done()
    return {**r, "conv2_weights": how, "pool1_seconds": round(t_pool, 4),
            "images_per_s_with_pool1": round(len(x) / (r["seconds"] + t_pool), 1),
            "conv2_spikes_per_image": round(float(run.spike_counts.mean()), 2),
            "pool2_features_per_image": round(float(run.features.sum(axis=1).mean()), 2)}
