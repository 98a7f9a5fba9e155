"""Conv-core test vectors (kind ``conv-infer``) from the golden ``run_conv``: real and adversarial.

A ``conv-infer`` file holds one or more *weight sets* and a list of images, each run through the
golden integer conv layer (:func:`spykehw.golden.conv.run_conv`) with its weight set:

``weights`` int64 (W, M, C, K, K)
    The weight sets, unsigned ``UQ0.B`` integers.
``weight_set`` int64 (N,)
    The weight set of each image.
``images`` uint8 (N, 28, 28)
    The source image of a real case (the events are its integer encoding, or for a Conv2 file
    its Pool1 spikes); zeros for a hand-made event list.
``event_offsets`` int64 (N+1,), ``events`` int16 (E, 4)
    Image ``n``'s input spikes are rows ``event_offsets[n] .. event_offsets[n+1]-1`` of
    ``events``, ``(t, c, y, x)``, by step and row-major within a step (:class:`SpikeEvents`).
``spike_offsets`` int64 (N+1,), ``spikes`` int16 (S, 4)
    The expected conv spikes ``(t, m, u, v)`` of each image, in the golden order (by step, then
    row-major); hardware is compared with them as a set per step.
``features`` uint8 (N, M*P*P)
    The expected pool features (0/1) of each image.

Options: ``layer`` (``conv1``, ``conv2`` or ``custom``), ``conv`` (the ConvOptions), ``encoder``
(the EncoderOptions the real images were encoded with), ``steps``, ``max_spikes_per_input``,
``threshold`` and ``potential_bits`` (derived, recorded for readers), ``cases`` (a label per
image), ``weight_sets`` (a label per weight set) and ``sources`` (where the real images come
from).

The cases and weight sets a file is made of are :mod:`spykehw.sim.conv.cases`; the committed
sets :mod:`spykehw.sim.conv.committed`; the sets on demand (``spykehw vectors conv``) are
:func:`source_vectors` here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.conv import run_conv
from ...golden.errors import SpykehwError
from ...golden.formats import NumberFormats
from ...golden.options import CONV1, TIME_STEPS, ConvOptions, EncoderOptions
from ...golden.spikes import SpikeEvents
from ...golden.state import load_state
from ...rtl.conv_config import ConvCoreConfig
from ..framework.images import emnist_test_images, mnist_test_images, mnist_train_images
from ..framework.vector_checks import check_conv_infer
from ..framework.vectors import (
    ArraySpec,
    KindSpec,
    VectorSet,
    ragged,
    register_kind,
    write_vectors,
)
from .cases import (
    STDP_TRAIN_IMAGES,
    ConvCase,
    adversarial_cases,
    adversarial_weight_sets,
    canonical_events,
    encode_cases,
    row_labels,
    stdp_weights,
)

__all__ = [
    "KIND",
    "LAYER_OPTIONS",
    "CONV_INFER",
    "ConvVectorError",
    "image_events",
    "image_spikes",
    "layer_options",
    "core_config",
    "check_drives",
    "layer_header",
    "make_conv_vectors",
    "write_vector_set",
    "SOURCES",
    "conv1_weights",
    "source_test_images",
    "source_vectors",
]

KIND = "conv-infer"

LAYER_OPTIONS = ("layer", "conv", "encoder", "steps", "max_spikes_per_input", "threshold",
                 "potential_bits")
"""The options every conv vector file (``conv-infer``, ``conv-learn``) records about its layer
(:func:`layer_header`)."""


CONV_INFER = register_kind(KindSpec(
    name=KIND,
    description="conv layer inference with lateral inhibition and pool features, per image and "
                "step (golden run_conv); see spykehw.sim.conv.vector_gen",
    arrays={
        "weights": ArraySpec("int64", ("W", "M", "C", "K", "K"), "weight sets, unsigned UQ0.B"),
        "weight_set": ArraySpec("int64", ("N",), "the weight set of each image"),
        "images": ArraySpec("uint8", ("N", "R", "R"), "source image of a real case, else zeros"),
        "event_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's events"),
        "events": ArraySpec("int16", ("E", "Q"), "input spikes (t, c, y, x)"),
        "spike_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's spikes"),
        "spikes": ArraySpec("int16", ("NS", "Q"), "expected conv spikes (t, m, u, v), golden order"),
        "features": ArraySpec("uint8", ("N", "F"), "expected pool features, 0/1"),
    },
    options=(*LAYER_OPTIONS, "cases", "weight_sets", "sources"),
    check=check_conv_infer,
))


class ConvVectorError(SpykehwError, ValueError):
    """A conv vector set that cannot be made or used as asked."""


# ----- reading -----------------------------------------------------------------------------------

def image_events(vs: VectorSet, n: int) -> np.ndarray:
    o = vs["event_offsets"]
    return np.asarray(vs["events"][o[n]:o[n + 1]], dtype=np.int64)


def image_spikes(vs: VectorSet, n: int) -> np.ndarray:
    o = vs["spike_offsets"]
    return np.asarray(vs["spikes"][o[n]:o[n + 1]], dtype=np.int64)


def layer_options(vs: VectorSet) -> ConvOptions:
    return ConvOptions(**vs.options["conv"])


def core_config(vs: VectorSet, parallelism: int | None = None, *, learning: bool = False):
    """The :class:`~spykehw.rtl.conv_core.ConvCoreConfig` a conv vector set needs (``parallelism``
    defaults to all maps; ``learning`` for a ``conv-learn`` set)."""

    opts = layer_options(vs)
    return ConvCoreConfig(options=opts, formats=vs.formats, steps=int(vs.options["steps"]),
                          parallelism=opts.maps if parallelism is None else parallelism,
                          max_spikes_per_input=int(vs.options["max_spikes_per_input"]),
                          learning=learning)


def check_drives(vs: VectorSet, cfg) -> None:
    """Refuse a vector file whose header does not describe the design it is about to drive
    (another layer, number formats, steps or spikes per input than the core was built for)."""
    want = {"options.conv": dataclasses.asdict(cfg.options), "formats": cfg.formats.digest(),
            "options.steps": cfg.steps, "options.max_spikes_per_input": cfg.max_spikes_per_input}
    found = {"options.conv": vs.options["conv"], "formats": vs.formats.digest(),
             "options.steps": vs.options["steps"],
             "options.max_spikes_per_input": vs.options["max_spikes_per_input"]}
    bad = [k for k in want if want[k] != found[k]]
    if bad:
        what = ", ".join(f"{k} ({vs.formats.name!r} vs the core's {cfg.formats.name!r})" if k == "formats"
                         else f"{k} ({found[k]!r} vs the core's {want[k]!r})" for k in bad)
        raise ConvVectorError(f"{vs.path or vs.kind}: does not describe the conv core it would "
                              f"drive: {what}")



# ----- generation ----------------------------------------------------------------------------------

def layer_header(formats: NumberFormats, opts: ConvOptions, *, layer: str, steps: int,
                 max_spikes_per_input: int, encoder: EncoderOptions | None = None) -> dict[str, Any]:
    """The :data:`LAYER_OPTIONS` of a conv vector file (threshold and potential width derived
    from ``formats``, for readers)."""
    return {
        "layer": layer,
        "conv": dataclasses.asdict(opts),
        "encoder": dataclasses.asdict(encoder or EncoderOptions()),
        "steps": steps,
        "max_spikes_per_input": max_spikes_per_input,
        "threshold": formats.threshold_int(opts.threshold),
        "potential_bits": formats.potential_bits(opts.in_channels, opts.kernel, max_spikes_per_input),
    }


def _check_case(case: ConvCase, opts: ConvOptions, steps: int, max_spikes: int, n_sets: int) -> None:
    ev = case.events
    C, S = opts.in_channels, opts.in_size
    if ev.ndim != 2 or ev.shape[1] != 4:
        raise ConvVectorError(f"case {case.name}: events must be (k, 4), not {ev.shape}")
    if len(ev):
        lo, hi = ev.min(axis=0), ev.max(axis=0)
        if lo.min() < 0 or hi[0] >= steps or hi[1] >= C or hi[2] >= S or hi[3] >= S:
            raise ConvVectorError(f"case {case.name}: an event is out of range "
                                  f"(t < {steps}, c < {C}, y, x < {S})")
        if not np.array_equal(ev, canonical_events(ev)):
            raise ConvVectorError(f"case {case.name}: events must be in the golden order")
        _, counts = np.unique(ev[:, 1:], axis=0, return_counts=True)
        if counts.max() > max_spikes:
            raise ConvVectorError(f"case {case.name}: an input spikes {counts.max()} times, more "
                                  f"than max_spikes_per_input = {max_spikes}")
    if not 0 <= case.weight_set < n_sets:
        raise ConvVectorError(f"case {case.name}: weight set {case.weight_set} does not exist")


def make_conv_vectors(formats: NumberFormats, opts: ConvOptions, weight_sets: Sequence[tuple[str, np.ndarray]],
                      cases: Sequence[ConvCase], *, steps: int = TIME_STEPS, max_spikes_per_input: int = 1,
                      layer: str = "custom", encoder: EncoderOptions | None = None,
                      sources: dict[str, Any] | None = None, seed: int | None = None,
                      description: str = "") -> VectorSet:
    """Run every case through the golden ``run_conv`` with its weight set; a ``conv-infer`` set."""

    W = np.stack([np.asarray(w, dtype=np.int64) for _, w in weight_sets])
    shape = (opts.maps, opts.in_channels, opts.kernel, opts.kernel)
    if W.shape[1:] != shape:
        raise ConvVectorError(f"weights must be (M, C, K, K) = {shape}, not {W.shape[1:]}")
    top = (1 << formats.conv.weight_bits) - 1
    if W.min() < 0 or W.max() > top:
        raise ConvVectorError(f"weights must be in 0..{top} ({formats.conv.weight_bits} bits)")
    cases = [dataclasses.replace(c, events=np.asarray(c.events, dtype=np.int64).reshape(-1, 4))
             for c in cases]
    for c in cases:
        _check_case(c, opts, steps, max_spikes_per_input, len(W))
    N = len(cases)
    arith = int_arithmetic(opts, formats, max_spikes_per_input=max_spikes_per_input)
    spikes: list[np.ndarray] = [np.zeros((0, 4), np.int64)] * N
    features = np.zeros((N, opts.features), dtype=np.uint8)
    S, C = opts.in_size, opts.in_channels
    for k in range(len(W)):
        idx = [i for i, c in enumerate(cases) if c.weight_set == k]
        if not idx:
            continue
        events = SpikeEvents(*ragged([cases[i].events for i in idx]), steps, (C, S, S))
        run = run_conv(events, W[k], opts, arith, record=True)
        for j, i in enumerate(idx):
            spikes[i] = run.spike_list(j)
            features[i] = run.features[j]
    images = np.zeros((N, 28, 28), dtype=np.uint8)
    for i, c in enumerate(cases):
        if c.image is not None:
            images[i] = c.image
    event_offsets, events = ragged([c.events for c in cases])
    spike_offsets, spike_rows = ragged(spikes)
    return VectorSet(
        kind=KIND,
        formats=formats,
        options={
            **layer_header(formats, opts, layer=layer, steps=steps,
                           max_spikes_per_input=max_spikes_per_input, encoder=encoder),
            "cases": [c.name for c in cases],
            "weight_sets": [name for name, _ in weight_sets],
            "sources": dict(sources or {}),
        },
        seed=seed,
        description=description,
        arrays={
            "weights": W,
            "weight_set": np.array([c.weight_set for c in cases], dtype=np.int64),
            "images": images,
            "event_offsets": event_offsets,
            "events": events,
            "spike_offsets": spike_offsets,
            "spikes": spike_rows,
            "features": features,
        },
    )


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.conv.vector_gen")


# ----- vector sets on demand (the CLI) -------------------------------------------------------------

SOURCES = ("mnist", "mnist-sample", "emnist", "adversarial")


def conv1_weights(formats: NumberFormats, *, state: str | Path | None = None,
                  train_images: int = STDP_TRAIN_IMAGES, data_dir: str | Path | None = None
                  ) -> tuple[np.ndarray, str]:
    """Integer Conv1 weights and where they come from: a state file's ``conv1_weights`` (an
    integer model with the same number formats), or STDP on the first ``train_images`` MNIST
    training images (the embedded sample holds 5,000)."""
    if state is not None:

        st = load_state(state)
        if st.model != "int":
            raise ConvVectorError(f"{state}: holds a {st.model} model; the conv core needs the "
                                  "integer model's weights")
        theirs = st.number_formats()
        if theirs.digest() != formats.digest():
            # Names alone can agree on different content (a state from before names told the
            # truth): show the content hashes too.
            raise ConvVectorError(
                f"{state}: its weights are in formats {theirs.name!r} (content "
                f"{theirs.digest()[:8]}), not {formats.name!r} (content {formats.digest()[:8]})"
                + (f"; use --config {theirs.name}" if theirs.name != formats.name else
                   "; pass the config file the state was trained with"))
        return np.asarray(st.conv1_weights, dtype=np.int64), f"state file {Path(state).name}"
    if train_images < 1:
        raise ConvVectorError(f"train images: must be >= 1, not {train_images}")
    source = "mnist-sample" if train_images <= 5000 and data_dir is None else "mnist"
    images = mnist_train_images(source, data_dir)
    if len(images) < train_images:  # never train on fewer images than the note says
        raise ConvVectorError(f"train images: {source} has {len(images)} training images, "
                              f"not {train_images}")
    images = images[:train_images]
    return stdp_weights(images, formats), f"golden train_conv1 on {source} train rows 0..{train_images - 1}"


def source_test_images(source: str, count: int, *, seed: int = 0, first: bool = True,
                       data_dir: str | Path | None = None) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """``count`` test images of ``source`` (``mnist``, ``mnist-sample``, ``emnist``): the first
    rows with ``first``, else random rows drawn with ``seed``; their case labels and a
    ``sources`` entry saying where they come from."""
    if count < 1:
        raise ConvVectorError(f"count: must be >= 1, not {count}")
    if source == "emnist":
        images, label = emnist_test_images(data_dir), "emnist-bymerge-test"
        note = {label: "EMNIST bymerge test file rows, file order, upright"}
    elif source in ("mnist", "mnist-sample"):
        images, label = mnist_test_images(source, data_dir), "mnist-test"
        note = {label: f"{source} test rows"}
    else:
        raise ConvVectorError(f"source: must be mnist, mnist-sample or emnist, not {source!r}")
    if count > len(images):
        raise ConvVectorError(f"count: {source} has {len(images)} test images, not {count}")
    rows = (np.arange(count) if first else
            np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False)))
    return images[rows], row_labels(label, rows.tolist()), note


def source_vectors(formats: NumberFormats, source: str, count: int, *, seed: int = 0,
                   first: bool = False, weights: np.ndarray | None = None, weights_note: str = "",
                   data_dir: str | Path | None = None) -> VectorSet:
    """A Conv1 ``conv-infer`` set: ``count`` test images of ``source`` (random rows drawn with
    ``seed``, or the first ``count`` rows with ``first``), or with ``adversarial`` every
    adversarial case (``count`` is then ignored). ``weights`` default to STDP weights."""
    if source not in SOURCES:
        raise ConvVectorError(f"source: must be one of {', '.join(SOURCES)}, not {source!r}")
    if weights is None:
        weights, weights_note = conv1_weights(formats, data_dir=data_dir)
    sets = {"stdp": np.asarray(weights, dtype=np.int64)}
    sources = {"stdp": weights_note}
    if source == "adversarial":
        sets.update(adversarial_weight_sets(sets["stdp"], formats.conv.weight_bits))
        names = list(sets)
        adv = adversarial_cases(CONV1, 12, seed)
        cases = [ConvCase(f"adversarial:{e}@{w}", ev, names.index(w))
                 for w in names for e, ev in adv.items()
                 if w == "stdp" or e in ("all_first_step", "borders", "dense_random")]
    else:
        images, labels, note = source_test_images(source, count, seed=seed, first=first, data_dir=data_dir)
        sources.update(note)
        cases = encode_cases(images, labels, formats)
    return make_conv_vectors(
        formats, CONV1, [(n, w) for n, w in sets.items()], cases, layer="conv1", sources=sources,
        seed=seed, description=f"conv1 of preset {formats.name}: {len(cases)} {source} cases; "
                               "expected values from golden run_conv")
