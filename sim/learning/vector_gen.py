"""Learning conv-core test vectors (kind ``conv-learn``) from the golden integer ``train_conv``.

A ``conv-learn`` file is one training *sequence*: images trained in order from ``weights0``,
with the learning state (global step, learning-rate level, homeostasis window, LFSR) starting
fresh at the first image, as after a reset of the core. The sequence is ``N / epoch_images``
epochs of the same ``epoch_images`` images (listed again for every epoch): the testbench pulses
the core's ``new_epoch`` before each epoch's first image.

``weights0`` int64 (M, C, K, K)
    The initial weights, unsigned ``UQ0.B`` integers.
``images`` uint8 (N, 28, 28)
    The source image of each step of the sequence (the events are its integer encoding, or for
    a Conv2-shaped file its Pool1 spikes); zeros for hand-made event lists.
``event_offsets`` int64 (N+1,), ``events`` int16 (E, 4)
    Image ``n``'s input spikes ``(t, c, y, x)`` are rows ``event_offsets[n] ..
    event_offsets[n+1]-1``, by step and row-major within a step.
``winner_offsets`` int64 (N+1,), ``winners`` int16 (NW, 4)
    The expected STDP winners ``(t, m, r, c)`` of image ``n`` (``t`` the step within the
    image), by step and then ascending map: the order in which the golden model applies them
    and the core emits them.
``weights`` int64 (N, M, C, K, K)
    The expected weights after each image.
``snapshots`` int64 (N, M, C, K, K)
    The expected snapshot copy after each image: the last snapshot the golden ``train_conv``
    took by then (``last_snapshot_weights``: the inference weights if training ended there).

Options: ``layer`` (``conv1``, ``conv2-shaped`` or ``custom``), ``conv`` (the ConvOptions:
schedule, homeostasis, window), ``encoder``, ``steps``, ``max_spikes_per_input``, ``threshold``
and ``potential_bits`` (derived), ``cases`` (a label per image), ``sources``, ``epoch_images``
(images per epoch), and the facts the
file is meant to exercise, computed by the golden model when it is made: ``final_level`` (the
learning-rate doublings after the sequence), ``homeostasis_matters`` (the final weights differ
from a run with homeostasis off, i.e. some map was suppressed) and ``rounding``.

The committed sets ``vectors/conv-learn/<name>.npz`` (:data:`COMMITTED`) are made by
:func:`write_committed`; a test regenerates them from the source images stored in the files and
checks they equal the files. Regenerate with::

    .venv/bin/python -m spykehw.sim.learning.vector_gen
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.conv import run_conv
from ...golden.errors import SpykehwError
from ...golden.formats import NumberFormats, preset
from ...golden.options import CONV1, CONV2, TIME_STEPS, ConvOptions, EncoderOptions, NetworkOptions
from ...golden.pipeline import initial_conv1_weights
from ...golden.pipeline2 import initial_conv2_weights
from ...golden.spikes import SpikeEvents
from ..conv.cases import (
    STDP_TRAIN_IMAGES,
    canonical_events,
    encode_cases,
    pool_events,
    stdp_weights,
)
from ..conv.layer2 import conv2_max_spikes, pool1_events
from ..conv.vector_gen import LAYER_OPTIONS, layer_header
from ..framework.images import mnist_train_images
from ..framework.vector_checks import check_conv_learn
from ..framework.vectors import (
    VECTORS_DIR,
    ArraySpec,
    KindSpec,
    VectorSet,
    ragged,
    read_vectors,
    register_kind,
    write_vectors,
)
from .expected import golden_training

__all__ = [
    "KIND",
    "CONV_LEARN",
    "LearnVectorError",
    "COMMITTED",
    "VECTORS_DIR",
    "committed_path",
    "read_learn_vectors",
    "image_winners",
    "make_learn_vectors",
    "committed_set",
    "write_committed",
    "initial_weights",
    "conv2_learn_vectors",
]

KIND = "conv-learn"
CONV_LEARN = register_kind(KindSpec(
    name=KIND,
    description="conv layer STDP training, one sequence: winners per step and weights after "
                "every image (golden integer train_conv); see spykehw.sim.learning.vector_gen",
    arrays={
        "weights0": ArraySpec("int64", ("M", "C", "K", "K"), "initial weights, unsigned UQ0.B"),
        "images": ArraySpec("uint8", ("N", "R", "R"), "source image of a real case, else zeros"),
        "event_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's events"),
        "events": ArraySpec("int16", ("E", "Q"), "input spikes (t, c, y, x)"),
        "winner_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's winners"),
        "winners": ArraySpec("int16", ("NW", "Q"), "expected STDP winners (t, m, r, c), golden order"),
        "weights": ArraySpec("int64", ("N", "M", "C", "K", "K"), "expected weights after each image"),
        "snapshots": ArraySpec("int64", ("N", "M", "C", "K", "K"),
                               "expected last snapshot after each image"),
    },
    options=(*LAYER_OPTIONS, "cases", "sources", "epoch_images", "final_level", "homeostasis_matters",
             "rounding"),
    check=check_conv_learn,
))

COMMITTED_SEED = 20240607


class LearnVectorError(SpykehwError, ValueError):
    """A conv-learn vector set that cannot be made or used as asked."""


def read_learn_vectors(path: str | Path) -> VectorSet:
    return read_vectors(path, kind=KIND)


def image_winners(vs: VectorSet, n: int) -> np.ndarray:
    o = vs["winner_offsets"]
    return np.asarray(vs["winners"][o[n]:o[n + 1]], dtype=np.int64)


def initial_weights(opts: ConvOptions, formats: NumberFormats) -> np.ndarray:
    """The authors' initialisation quantized to ``UQ0.B`` (golden ``initial_conv1_weights``,
    which serves any layer's options)."""

    return np.asarray(initial_conv1_weights(opts, formats), dtype=np.int64)


def make_learn_vectors(formats: NumberFormats, opts: ConvOptions, weights0: np.ndarray,
                       events: Sequence[np.ndarray], labels: Sequence[str], *, steps: int = TIME_STEPS,
                       max_spikes_per_input: int = 1, layer: str = "custom",
                       images: np.ndarray | None = None, encoder: EncoderOptions | None = None,
                       sources: dict[str, Any] | None = None, seed: int | None = None,
                       description: str = "", epochs: int = 1) -> VectorSet:
    """Train ``events`` in order, ``epochs`` times, with the golden model; a ``conv-learn`` set
    (the images listed once per epoch, labels ``"<label> epoch <e>"`` after the first)."""

    w0 = np.asarray(weights0, dtype=np.int64)
    shape = (opts.maps, opts.in_channels, opts.kernel, opts.kernel)
    if w0.shape != shape:
        raise LearnVectorError(f"weights0 must be (M, C, K, K) = {shape}, not {w0.shape}")
    top = (1 << formats.conv.weight_bits) - 1
    if w0.min() < 0 or w0.max() > top:
        raise LearnVectorError(f"weights0 must be in 0..{top} ({formats.conv.weight_bits} bits)")
    ev = [canonical_events(e) for e in events]
    if len(labels) != len(ev):
        raise LearnVectorError(f"{len(labels)} labels for {len(ev)} images")
    if epochs < 1:
        raise LearnVectorError(f"epochs must be >= 1, not {epochs}")
    exp = golden_training(ev, w0, opts, formats, steps=steps, max_spikes_per_input=max_spikes_per_input,
                          epochs=epochs)
    level = exp.level
    matters = False
    if opts.homeostasis:
        off = golden_training(ev, w0, dataclasses.replace(opts, homeostasis=False), formats,
                              steps=steps, max_spikes_per_input=max_spikes_per_input, epochs=epochs)
        matters = bool(len(ev)) and not np.array_equal(off.weights[-1], exp.weights[-1])
    N = len(ev)
    imgs = np.zeros((N, 28, 28), dtype=np.uint8) if images is None else np.asarray(images, np.uint8)
    imgs = np.concatenate([imgs] * epochs) if N else imgs
    labels = [*labels] + [f"{lab} epoch {e}" for e in range(1, epochs) for lab in labels]
    event_offsets, events = ragged(ev * epochs)
    winner_offsets, winners = ragged(exp.winners)
    return VectorSet(
        kind=KIND, formats=formats,
        options={
            **layer_header(formats, opts, layer=layer, steps=steps,
                           max_spikes_per_input=max_spikes_per_input, encoder=encoder),
            "cases": list(labels),
            "sources": dict(sources or {}),
            "epoch_images": N,
            "final_level": level,
            "homeostasis_matters": matters,
            "rounding": formats.stdp.rounding,
        },
        seed=seed, description=description,
        arrays={
            "weights0": w0,
            "images": imgs,
            "event_offsets": event_offsets,
            "events": events,
            "winner_offsets": winner_offsets,
            "winners": winners,
            "weights": exp.weights,
            "snapshots": exp.snapshots,
        },
    )


def conv2_learn_vectors(images: np.ndarray, labels: Sequence[str], conv1_weights: np.ndarray,
                        opts: NetworkOptions, fmt: NumberFormats, *, epochs: int = 1,
                        sources: dict[str, Any] | None = None, description: str = "") -> VectorSet:
    """A ``conv-learn`` set of layer ``conv2``: golden Conv2 STDP on the real Pool1 spike trains
    of ``images`` (:func:`spykehw.sim.conv.layer2.pool1_events`) from the authors' initial Conv2
    weights, with what :func:`spykehw.golden.pipeline2.train_conv2` trains with (the ``conv2``
    options, ``conv2_formats``, the Pool1 input bound), for ``epochs`` epochs."""
    images = np.asarray(images, dtype=np.uint8)
    events = pool1_events(images, conv1_weights, opts, fmt)
    return make_learn_vectors(
        fmt.conv2_formats(), opts.conv2, initial_conv2_weights(opts, fmt), events, list(labels),
        steps=opts.encoder.steps, max_spikes_per_input=conv2_max_spikes(opts), layer="conv2",
        images=images, encoder=opts.encoder, sources=sources, epochs=epochs, description=description)


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.learning.vector_gen")


# ----- the committed sets ------------------------------------------------------------------------

@dataclass(frozen=True)
class CommittedSpec:
    """A committed sequence: a layer (Conv1, or a Conv2-shaped layer fed by Conv1's pool),
    number formats, option changes and the MNIST training rows (embedded sample)."""

    preset: str
    layer: str
    rows: tuple[int, ...]
    changes: tuple[tuple[str, Any], ...] = ()       # ConvOptions fields
    format_changes: tuple[tuple[str, Any], ...] = ()   # dotted NumberFormats keys
    purpose: str = ""


COMMITTED: dict[str, CommittedSpec] = {
    # Default options (authors' code) and the default formats: half_up rounding; homeostasis
    # (5-image window) triggers within these images.
    "conv1-fpga-16": CommittedSpec("fpga-16", "conv1", tuple(range(8)),
                                   purpose="default options, fpga-16 (half_up), homeostasis"),
    # Stochastic rounding (fpga-8) and a learning-rate period of 11 steps: the level rises
    # almost every image and reaches the cap (stdp_shift_min) within the sequence.
    "conv1-fpga-8-lr": CommittedSpec("fpga-8", "conv1", tuple(range(8, 14)), (("lr_inc_rate", 1),),
                                     purpose="stochastic rounding, lr levels up to the cap"),
    # Truncation, with a 3-image homeostasis window and a limit of 1 win.
    "conv1-truncate-homeo": CommittedSpec(
        "fpga-16", "conv1", tuple(range(14, 20)), (("homeostasis_const", 3), ("lr_inc_rate", 2)),
        (("stdp.rounding", "truncate"),), purpose="truncate rounding, small homeostasis window"),
    # Conv2-shaped: 30x11x11 Pool1 spikes (inputs spiking up to 4 times), 5x5 kernel, 3x3
    # inhibition window, 7x7 output; 10 maps instead of 200 so that the file stays small.
    "conv2-fpga-16": CommittedSpec("fpga-16", "conv2", tuple(range(20, 24)),
                                   (("maps", 10), ("lr_inc_rate", 1)),
                                   purpose="Conv2 shape (3x3 window, 30 channels), 10 maps"),
}


def committed_path(name: str) -> Path:
    return VECTORS_DIR / "conv-learn" / f"{name}.npz"


def committed_set(name: str, *, images: np.ndarray | None = None) -> VectorSet:
    """The committed sequence ``name`` (see :data:`COMMITTED`), from ``images`` (the stored
    source images) or from the embedded MNIST sample's training rows."""

    spec = COMMITTED[name]
    fmt = preset(spec.preset)
    if spec.format_changes:
        fmt = fmt.replace(**dict(spec.format_changes))
    if images is None:
        images = mnist_train_images()[list(spec.rows)]
    images = np.asarray(images, dtype=np.uint8)
    labels = [f"mnist-train[{r}]" for r in spec.rows]
    sources = {"mnist-train": "rows of the MNIST training set (the embedded mnist-sample holds "
                              "the first 5,000)"}
    cases = encode_cases(images, labels, fmt)
    if spec.layer == "conv1":
        opts = dataclasses.replace(CONV1, **dict(spec.changes))
        events = [c.events for c in cases]
        max_spikes = 1
    else:

        opts = dataclasses.replace(CONV2, **dict(spec.changes))
        conv1_w = stdp_weights(mnist_train_images()[:STDP_TRAIN_IMAGES], fmt)
        ev = SpikeEvents(*ragged([c.events for c in cases]), 12, (2, 27, 27))
        run = run_conv(ev, conv1_w, CONV1, int_arithmetic(CONV1, fmt), record=True)
        events = pool_events([run.spike_list(i) for i in range(len(cases))], CONV1, 12)
        max_spikes = 4
        sources["events"] = (f"Pool1 spikes of golden Conv1 (weights: golden train_conv1 on "
                             f"mnist-sample train rows 0..{STDP_TRAIN_IMAGES - 1}) on the images")
    sources["weights0"] = "the authors' initialisation (seed 0) quantized round-half-up"
    return make_learn_vectors(
        fmt, opts, initial_weights(opts, fmt), events, labels, steps=TIME_STEPS,
        max_spikes_per_input=max_spikes, layer="conv1" if spec.layer == "conv1" else "conv2-shaped",
        images=images, sources=sources, seed=COMMITTED_SEED,
        description=f"{name}: {spec.purpose}; {len(labels)} MNIST training images trained in "
                    "order; expected values from golden train_conv (integer)")


def write_committed(name: str, folder: Path | None = None, *, images: np.ndarray | None = None) -> Path:
    """(Re)write the committed set ``name`` (into ``folder`` instead, for tests)."""
    vs = committed_set(name, images=images)
    path = committed_path(name) if folder is None else Path(folder) / f"{name}.npz"
    return write_vector_set(path, vs)


def _main() -> None:
    for name in COMMITTED:
        path = write_committed(name)
        vs = read_learn_vectors(path)
        print(f"{path}: {len(vs['weights'])} images, {len(vs['winners'])} winners, "
              f"level {vs.options['final_level']}, homeostasis matters "
              f"{vs.options['homeostasis_matters']}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    _main()
