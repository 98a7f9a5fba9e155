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

Adversarial cases (:func:`adversarial_cases`, :func:`adversarial_weight_sets`): no input at
all; every input at the first step, or at the last; only the border rings (corner clipping);
dense random input; one input per step; and with special weight sets: maps in identical triples
(ties: the lowest map must win), every weight ``2**B - 1`` (the worst-case potential; every map
ties), every weight ``2**B - 2`` but the last map's ``2**B - 1`` (the worst case must not wrap),
and a map that crosses the threshold first during a step but is overtaken by the end of it.

The committed sets ``vectors/conv/<name>.npz`` are made by :func:`write_committed`; a test
regenerates them (from the source images stored in the files, so no dataset is needed) and
checks they equal the files. Regenerate with::

    .venv/bin/python -m spykehw.sim.conv.vector_gen
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
from ...golden.options import (
    CONV1,
    CONV2,
    TIME_STEPS,
    ConvOptions,
    EncoderOptions,
    NetworkOptions,
)
from ...golden.pipeline import encode_events, train_conv1
from ...golden.spikes import SpikeEvents
from ...golden.state import load_state
from ...rtl.conv_config import ConvCoreConfig
from ..framework.images import emnist_test_images, mnist_test_images, mnist_train_images
from ..framework.vector_checks import check_conv_infer
from ..framework.vectors import (
    VECTORS_DIR,
    ArraySpec,
    KindSpec,
    VectorSet,
    read_vectors,
    register_kind,
    write_vectors,
)

__all__ = [
    "KIND",
    "CONV_INFER",
    "ConvCase",
    "ConvVectorError",
    "committed_path",
    "image_events",
    "image_spikes",
    "layer_options",
    "core_config",
    "check_drives",
    "canonical_events",
    "adversarial_cases",
    "adversarial_weight_sets",
    "pool_events",
    "pattern_weights",
    "stdp_weights",
    "make_conv_vectors",
    "write_vector_set",
    "committed_set",
    "write_committed",
    "SOURCES",
    "conv1_weights",
    "source_vectors",
]

KIND = "conv-infer"


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
    options=("layer", "conv", "encoder", "steps", "max_spikes_per_input", "threshold",
             "potential_bits", "cases", "weight_sets", "sources"),
    check=check_conv_infer,
))

COMMITTED_SEED = 20240607
STDP_TRAIN_IMAGES = 300


class ConvVectorError(SpykehwError, ValueError):
    """A conv vector set that cannot be made or used as asked."""


@dataclass(frozen=True)
class ConvCase:
    """One image of a vector set: its label, events ``(k, 4)`` and weight set (and source image)."""

    name: str
    events: np.ndarray
    weight_set: int = 0
    image: np.ndarray | None = None


# ----- reading -----------------------------------------------------------------------------------

def image_events(vs: VectorSet, n: int) -> np.ndarray:
    o = vs["event_offsets"]
    return np.asarray(vs["events"][o[n]:o[n + 1]], dtype=np.int64)


def image_spikes(vs: VectorSet, n: int) -> np.ndarray:
    o = vs["spike_offsets"]
    return np.asarray(vs["spikes"][o[n]:o[n + 1]], dtype=np.int64)


def layer_options(vs: VectorSet) -> ConvOptions:
    return ConvOptions(**vs.options["conv"])


def core_config(vs: VectorSet, parallelism: int | None = None):
    """The :class:`~spykehw.rtl.conv_core.ConvCoreConfig` a vector set needs (``parallelism``
    defaults to all maps)."""

    opts = layer_options(vs)
    return ConvCoreConfig(options=opts, formats=vs.formats, steps=int(vs.options["steps"]),
                          parallelism=opts.maps if parallelism is None else parallelism,
                          max_spikes_per_input=int(vs.options["max_spikes_per_input"]))


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


# ----- events ------------------------------------------------------------------------------------

def canonical_events(rows: Any) -> np.ndarray:
    """``(k, 4)`` int64 rows ``(t, c, y, x)`` sorted by step, then row-major (the golden order)."""
    ev = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((ev[:, 3], ev[:, 2], ev[:, 1], ev[:, 0]))
    return ev[order]


def _grid(C: int, S: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(C), np.arange(S), np.arange(S), indexing="ij")


def _from_latencies(lat: np.ndarray) -> np.ndarray:
    c, y, x = np.nonzero(lat >= 0)
    return canonical_events(np.stack([lat[c, y, x], c, y, x], axis=1))


def adversarial_cases(opts: ConvOptions, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Named hand-made event lists (each input spikes at most once).

    ``empty`` (no input spike), ``all_first_step`` / ``all_last_step`` (every input at step 0
    / ``T-1``), ``borders`` (only the three outer rings, ring ``r`` at step ``r``: output
    positions at the corners and edges, where the receptive fields are clipped),
    ``dense_random`` (70 % of the inputs at random steps of the first ten: many positions cross
    in several maps within one step), ``one_per_step`` (a single input per step, at the corners
    and then one pixel further in).
    """
    C, S = opts.in_channels, opts.in_size
    rng = np.random.default_rng(seed)
    c, y, x = _grid(C, S)
    cases: dict[str, np.ndarray] = {"empty": canonical_events([])}
    cases["all_first_step"] = _from_latencies(np.zeros((C, S, S), dtype=np.int64))
    cases["all_last_step"] = _from_latencies(np.full((C, S, S), steps - 1, dtype=np.int64))
    ring = np.minimum(np.minimum(y, x), np.minimum(S - 1 - y, S - 1 - x))
    cases["borders"] = _from_latencies(np.where(ring < min(3, steps), ring, -1))
    lat = rng.integers(0, min(10, steps), size=(C, S, S))
    cases["dense_random"] = _from_latencies(np.where(rng.random((C, S, S)) < 0.7, lat, -1))
    def corner(t: int) -> tuple[int, int]:
        k = (t // 4) % S            # the corners first, then one step further in each round
        return [(k, k), (k, S - 1 - k), (S - 1 - k, k), (S - 1 - k, S - 1 - k)][t % 4]
    cases["one_per_step"] = canonical_events([(t, t % C, *corner(t)) for t in range(steps)])
    return cases


def pool_events(spike_lists: Sequence[np.ndarray], conv: ConvOptions, steps: int) -> list[np.ndarray]:
    """The Pool1 spikes of each image as the next layer's input events.

    Pool neuron ``(m, i, j)`` spikes at step ``t`` if a conv neuron of map ``m`` in rows
    ``2i, 2i+1`` and columns ``2j, 2j+1`` fired at ``t`` (spec section 5.1; not accumulated), so
    an input of the next layer spikes at most 4 times per image.
    """
    P = conv.pool_size
    out = []
    for sl in spike_lists:
        sl = np.asarray(sl, dtype=np.int64).reshape(-1, 4)
        keep = (sl[:, 2] < 2 * P) & (sl[:, 3] < 2 * P)
        rows = {(int(t), int(m), int(u) // 2, int(v) // 2) for t, m, u, v in sl[keep]}
        out.append(canonical_events(sorted(rows)))
    return out


# ----- weights -----------------------------------------------------------------------------------

def adversarial_weight_sets(base: np.ndarray, weight_bits: int) -> dict[str, np.ndarray]:
    """Weight sets derived from ``base`` (M, C, K, K) or made by hand (see the module docstring).

    ``ties``: map ``m`` gets the weights of map ``3*(m//3)``; ``max``: every weight
    ``2**B - 1``; ``max_last``: ``2**B - 2`` everywhere but ``2**B - 1`` in the last map;
    ``overtake``: map 0 has ``2**B - 1`` on channel 0 and 0 on the others, map 1 has
    ``0.8 * (2**B - 1)`` on every channel, the rest 0.
    """
    base = np.asarray(base, dtype=np.int64)
    top = (1 << weight_bits) - 1
    M = base.shape[0]
    ties = base[(np.arange(M) // 3) * 3]
    maxed = np.full_like(base, top)
    max_last = np.full_like(base, top - 1)
    max_last[-1] = top
    overtake = np.zeros_like(base)
    overtake[0, 0] = top
    if M > 1:
        overtake[1] = (top * 4) // 5
    return {"ties": ties, "max": maxed, "max_last": max_last, "overtake": overtake}


def pattern_weights(opts: ConvOptions, weight_bits: int) -> np.ndarray:
    """Deterministic weights in ``[0.75, 0.95)`` of full scale, different per map:
    ``top*3//4 + ((37m + 11c + 5kr + 3kc) mod 17) * (top // 80)``. Unlike trained or random
    weights they compress well, which keeps a committed Conv2 file (150,000 weights) small."""
    top = (1 << weight_bits) - 1
    m, c, kr, kc = np.meshgrid(*(np.arange(n) for n in (opts.maps, opts.in_channels, opts.kernel,
                                                        opts.kernel)), indexing="ij")
    return (top * 3 // 4 + ((37 * m + 11 * c + 5 * kr + 3 * kc) % 17) * (top // 80)).astype(np.int64)


def stdp_weights(images: np.ndarray, formats: NumberFormats) -> np.ndarray:
    """Integer Conv1 weights after STDP on ``images`` (golden ``train_conv1``, default options)."""

    return np.asarray(train_conv1(images, NetworkOptions(), formats).weights, dtype=np.int64)


# ----- generation ----------------------------------------------------------------------------------

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
        counts = [len(cases[i].events) for i in idx]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        ev = np.concatenate([cases[i].events for i in idx]).astype(np.int16).reshape(-1, 4)
        run = run_conv(SpikeEvents(offsets, ev, steps, (C, S, S)), W[k], opts, arith, record=True)
        for j, i in enumerate(idx):
            spikes[i] = run.spike_list(j)
            features[i] = run.features[j]
    images = np.zeros((N, 28, 28), dtype=np.uint8)
    for i, c in enumerate(cases):
        if c.image is not None:
            images[i] = c.image
    ev_counts = [len(c.events) for c in cases]
    sp_counts = [len(s) for s in spikes]
    return VectorSet(
        kind=KIND,
        formats=formats,
        options={
            "layer": layer,
            "conv": dataclasses.asdict(opts),
            "encoder": dataclasses.asdict(encoder or EncoderOptions()),
            "steps": steps,
            "max_spikes_per_input": max_spikes_per_input,
            "threshold": formats.threshold_int(opts.threshold),
            "potential_bits": formats.potential_bits(opts.in_channels, opts.kernel, max_spikes_per_input),
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
            "event_offsets": np.concatenate([[0], np.cumsum(ev_counts)]).astype(np.int64),
            "events": (np.concatenate([c.events for c in cases]) if N else np.zeros((0, 4))).astype(np.int16),
            "spike_offsets": np.concatenate([[0], np.cumsum(sp_counts)]).astype(np.int64),
            "spikes": (np.concatenate(spikes) if N else np.zeros((0, 4))).astype(np.int16),
            "features": features,
        },
    )


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.conv.vector_gen")


def encode_cases(images: np.ndarray, labels: Sequence[str], formats: NumberFormats,
                 encoder: EncoderOptions | None = None, weight_set: int = 0) -> list[ConvCase]:
    """Real cases: the integer encoding of ``images`` (golden ``encode_events``)."""

    encoder = encoder or EncoderOptions()
    images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
    ev = encode_events(images, encoder, formats)
    return [ConvCase(label, canonical_events(ev.image(i)), weight_set, images[i])
            for i, label in enumerate(labels)]


# ----- the committed sets ------------------------------------------------------------------------

@dataclass(frozen=True)
class CommittedSpec:
    """What a committed file holds: Conv1 (or Conv2 fed by Conv1's pool) for one preset."""

    preset: str
    layer: str
    mnist: tuple[int, ...]          # rows of the MNIST test set
    emnist: tuple[int, ...]         # rows of the EMNIST bymerge test file
    adversarial: tuple[tuple[str, str], ...]    # (weight set, event case)


_ALL_ADV = (("stdp", "empty"), ("stdp", "all_first_step"), ("stdp", "all_last_step"),
            ("stdp", "borders"), ("stdp", "dense_random"), ("stdp", "one_per_step"),
            ("ties", "all_first_step"), ("ties", "dense_random"), ("max", "all_first_step"),
            ("max", "borders"), ("max_last", "all_first_step"), ("overtake", "all_first_step"),
            ("overtake", "borders"))

COMMITTED: dict[str, CommittedSpec] = {
    "fpga-16": CommittedSpec("fpga-16", "conv1", tuple(range(8)), tuple(range(4)), _ALL_ADV),
    "fpga-8": CommittedSpec("fpga-8", "conv1", (0, 1, 2), (0,),
                            (("stdp", "empty"), ("stdp", "all_first_step"), ("stdp", "borders"),
                             ("ties", "all_first_step"), ("max_last", "all_first_step"))),
    "conv2-fpga-16": CommittedSpec("fpga-16", "conv2", (0, 1), (),
                                   (("pattern", "all_first_step"), ("pattern", "pool_repeat"),
                                    ("max_last", "pool_repeat"))),
}


def committed_path(name: str) -> Path:
    return VECTORS_DIR / "conv" / f"{name}.npz"


def _labels(source: str, rows: Sequence[int]) -> list[str]:
    return [f"{source}[{r}]" for r in rows]


def committed_set(name: str, *, images: np.ndarray | None = None) -> VectorSet:
    """The committed set ``name`` (see :data:`COMMITTED`).

    The real cases are encoded from ``images`` (the stored source images, in case order) when
    given, else loaded from the datasets (MNIST from the embedded sample, EMNIST from the data
    folders). The Conv1 weights are STDP-trained on the first 300 images of the embedded MNIST
    training sample.
    """
    spec = COMMITTED[name]
    fmt = preset(spec.preset)
    n_real = len(spec.mnist) + len(spec.emnist)
    if images is None:
        real = [mnist_test_images()[list(spec.mnist)]]
        if spec.emnist:
            real.append(emnist_test_images()[list(spec.emnist)])
        images = np.concatenate(real)
    images = np.asarray(images)[:n_real]
    labels = _labels("mnist-test", spec.mnist) + _labels("emnist-bymerge-test", spec.emnist)
    conv1_w = stdp_weights(mnist_train_images()[:STDP_TRAIN_IMAGES], fmt)
    sources = {"mnist-test": "MNIST t10k rows (the embedded mnist-sample has the first 1,000)",
               "emnist-bymerge-test": "EMNIST bymerge test file rows, file order, upright",
               "stdp": f"golden train_conv1 on mnist-sample train rows 0..{STDP_TRAIN_IMAGES - 1}"}
    if spec.layer == "conv1":
        opts, steps, max_spikes = CONV1, 12, 1
        base = conv1_w
        sets = {"stdp": base}
        cases = encode_cases(images, labels, fmt)
    else:

        opts, steps, max_spikes = CONV2, 12, 4
        base = pattern_weights(CONV2, fmt.conv.weight_bits)
        sets = {"pattern": base}
        sources["pattern"] = "pattern_weights(CONV2): structured, so that the file stays small"
        sources["events"] = "Pool1 spikes of golden Conv1 (stdp weights) on the real images"
        c1 = encode_cases(images, labels, fmt)
        counts = [len(c.events) for c in c1]
        ev = SpikeEvents(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                         np.concatenate([c.events for c in c1]).astype(np.int16).reshape(-1, 4),
                         steps, (2, 27, 27))
        run = run_conv(ev, conv1_w, CONV1, int_arithmetic(CONV1, fmt), record=True)
        pooled = pool_events([run.spike_list(i) for i in range(len(c1))], CONV1, steps)
        cases = [ConvCase(c.name, p, 0, c.image) for c, p in zip(c1, pooled)]
    sets.update(adversarial_weight_sets(base, fmt.conv.weight_bits))
    adv = adversarial_cases(opts, steps, COMMITTED_SEED)
    if spec.layer == "conv2":
        # The receptive field of the centre output, every input spiking 4 times (steps 0, 3,
        # 6, 9): the worst-case potential of Pool1 inputs, reached at the end of step 9.
        h = opts.out_size // 2
        c, y, x = (a.reshape(-1) for a in _grid(opts.in_channels, opts.kernel))
        adv["pool_repeat"] = canonical_events(
            [(t, ci, h + yi, h + xi) for t in (0, 3, 6, 9) for ci, yi, xi in zip(c, y, x)])
    # Weight set 0 is the base (the real cases use it), then those the adversarial cases name.
    used = {w for w, _ in spec.adversarial}
    order = [n for k, n in enumerate(sets) if k == 0 or n in used]
    index = {n: k for k, n in enumerate(order)}
    for wname, ename in spec.adversarial:
        cases.append(ConvCase(f"adversarial:{ename}@{wname}", adv[ename], index[wname]))
    return make_conv_vectors(
        fmt, opts, [(n, sets[n]) for n in order], cases, steps=steps,
        max_spikes_per_input=max_spikes, layer=spec.layer, sources=sources, seed=COMMITTED_SEED,
        description=(f"{spec.layer} of preset {spec.preset}: {len(spec.mnist)} MNIST and "
                     f"{len(spec.emnist)} EMNIST test images, then {len(spec.adversarial)} "
                     "adversarial cases (options.cases); expected values from golden run_conv"))


def write_committed(name: str, folder: Path | None = None, *, images: np.ndarray | None = None) -> Path:
    """(Re)write the committed set ``name`` (into ``folder`` instead, for tests)."""
    vs = committed_set(name, images=images)
    path = committed_path(name) if folder is None else Path(folder) / f"{name}.npz"
    return write_vector_set(path, vs)


def _main() -> None:
    for name in COMMITTED:
        path = write_committed(name)
        vs = read_vectors(path, kind=KIND)
        print(f"{path}: {len(vs['weight_set'])} images, {len(vs['spikes'])} spikes, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    _main()


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
        if count < 1:
            raise ConvVectorError(f"count: must be >= 1, not {count}")
        if source == "emnist":
            images, label = emnist_test_images(data_dir), "emnist-bymerge-test"
            sources[label] = "EMNIST bymerge test file rows, file order, upright"
        else:
            images, label = mnist_test_images(source, data_dir), "mnist-test"
            sources[label] = f"{source} test rows"
        if count > len(images):
            raise ConvVectorError(f"count: {source} has {len(images)} test images, not {count}")
        rows = (np.arange(count) if first else
                np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False)))
        cases = encode_cases(images[rows], _labels(label, rows.tolist()), formats)
    return make_conv_vectors(
        formats, CONV1, [(n, w) for n, w in sets.items()], cases, layer="conv1", sources=sources,
        seed=seed, description=f"conv1 of preset {formats.name}: {len(cases)} {source} cases; "
                               "expected values from golden run_conv")
