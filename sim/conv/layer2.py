"""The conv core in the Conv2 configuration: its config, its inputs (real Pool1 spike trains)
and its inference vector sets (``conv-infer``; the ``conv-learn`` sets of on-chip STDP training
are :func:`spykehw.sim.learning.vector_gen.conv2_learn_vectors`).

Everything comes from the golden second layer (:mod:`spykehw.golden.pipeline2`) with the
network's options and number formats, as ``spykehw run --layers 2`` uses them: the Pool1 spike
trains of :func:`~spykehw.golden.pipeline2.pool1_spikes` (encode, Conv1 inference, Pool1 with
the ``pool1`` options: with lateral inhibition the golden model has already chosen the one map
per location, so the core only sees its outcome), the ``conv2`` options, the formats of
:meth:`~spykehw.golden.formats.NumberFormats.conv2_formats` (the ``conv2_stdp`` constants) and
inputs spiking up to :func:`~spykehw.golden.pool.max_pool_spikes` times (4 without Pool1
options, 1 with inhibition, ``steps`` with accumulation alone).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...golden.formats import NumberFormats
from ...golden.options import NetworkOptions
from ...golden.pipeline2 import pool1_spikes
from ...golden.pool import max_pool_spikes
from ...rtl.conv_config import ConvCoreConfig
from ..framework.vectors import VectorSet
from .cases import ConvCase, canonical_events
from .vector_gen import make_conv_vectors

__all__ = [
    "DEFAULT_CONV2_PARALLELISM",
    "conv2_max_spikes",
    "conv2_core_config",
    "pool1_events",
    "conv2_infer_vectors",
]

DEFAULT_CONV2_PARALLELISM = 40
"""Maps per cycle of the Conv2 core by default (200 maps: 5 groups)."""


def conv2_max_spikes(opts: NetworkOptions) -> int:
    """How often a Conv2 input (a Pool1 neuron) can spike in an image under ``opts.pool1``."""
    return max_pool_spikes(opts.pool1, opts.encoder.steps)


def conv2_core_config(opts: NetworkOptions, fmt: NumberFormats, parallelism: int | None = None,
                      *, learning: bool = False) -> ConvCoreConfig:
    """The conv core that computes ``opts``' Conv2 bit for bit as the golden second layer does."""
    return ConvCoreConfig(options=opts.conv2, formats=fmt.conv2_formats(), steps=opts.encoder.steps,
                          parallelism=DEFAULT_CONV2_PARALLELISM if parallelism is None else parallelism,
                          max_spikes_per_input=conv2_max_spikes(opts), learning=learning)


def pool1_events(images: np.ndarray, conv1_weights: np.ndarray, opts: NetworkOptions,
                 fmt: NumberFormats) -> list[np.ndarray]:
    """The golden Pool1 spike trains of ``images``: per image ``(k, 4)`` rows ``(t, c, y, x)``
    in the golden order, the Conv2 input."""
    run = pool1_spikes(np.asarray(images, dtype=np.uint8), np.asarray(conv1_weights, np.int64), opts, fmt)
    return [canonical_events(run.events.image(n)) for n in range(len(images))]


def conv2_infer_vectors(images: np.ndarray, labels: Sequence[str], conv1_weights: np.ndarray,
                        conv2_weights: np.ndarray, opts: NetworkOptions, fmt: NumberFormats, *,
                        sources: dict[str, Any] | None = None, description: str = "") -> VectorSet:
    """A ``conv-infer`` set (layer ``conv2``): the Pool1 spike trains of ``images`` through
    Conv2 with ``conv2_weights`` (expected spikes and Pool2 features from the golden
    ``run_conv`` with the second layer's arithmetic)."""
    images = np.asarray(images, dtype=np.uint8)
    events = pool1_events(images, conv1_weights, opts, fmt)
    cases = [ConvCase(lab, ev, 0, img) for lab, ev, img in zip(labels, events, images)]
    return make_conv_vectors(
        fmt.conv2_formats(), opts.conv2, [("conv2", np.asarray(conv2_weights, np.int64))], cases,
        steps=opts.encoder.steps, max_spikes_per_input=conv2_max_spikes(opts), layer="conv2",
        encoder=opts.encoder, sources=sources, description=description)

