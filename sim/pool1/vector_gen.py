"""``pool1`` vector sets: conv spikes ``(t, m, u, v, p)`` per image in, the golden Pool1 events
``(t, c, y, x)`` per image out (:func:`spykehw.golden.pool.pool_spikes`).

:func:`real_pool1_vectors` makes them from real Conv1 spikes: the golden ``run_conv`` (record)
on the real MNIST cases of the committed ``conv-infer`` set ``fpga-16`` (the embedded sample's
first test images, their input events and STDP weights stored in the file: no dataset needed).
Within a step the spikes are shuffled (seeded), as the conv core emits them in
threshold-crossing order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.conv import run_conv
from ...golden.formats import NumberFormats
from ...golden.options import CONV1
from ...golden.spikes import SpikeEvents
from ...rtl.conv_config import ConvCoreConfig
from ...rtl.pool1 import POOL1_MODES, Pool1Config
from ..conv.committed import committed_path
from ..conv.vector_gen import image_events, image_spikes
from ..framework.vectors import (
    ArraySpec,
    KindSpec,
    VectorSet,
    check_offsets,
    check_range,
    ragged,
    read_vectors,
    register_kind,
    require,
    write_vectors,
)
from .packing import golden_pool_events

__all__ = ["KIND", "pool1_config", "make_pool1_vectors", "conv1_spikes", "real_pool1_vectors",
           "write_vector_set", "image_spikes", "image_pool_events"]

KIND = "pool1"
CONFIG_KEYS = ("maps", "conv_size", "steps", "potential_bits", "mode")


def pool1_config(vs: VectorSet) -> Pool1Config:
    return Pool1Config(**{k: vs.options[k] for k in CONFIG_KEYS})


def _check(vs: VectorSet) -> None:
    require(vs.options["mode"] in POOL1_MODES, vs, f"options.mode must be one of {POOL1_MODES}")
    cfg = pool1_config(vs)
    n = len(vs["spike_offsets"]) - 1
    check_offsets(vs, "spike_offsets", n, len(vs["spikes"]))
    check_offsets(vs, "event_offsets", n, len(vs["events"]))
    check_range(vs, "spikes", 0, cfg.steps - 1, column=0, what="step")
    check_range(vs, "spikes", 0, cfg.maps - 1, column=1, what="map")
    for col in (2, 3):
        check_range(vs, "spikes", 0, cfg.conv_size - 1, column=col, what="position")
    check_range(vs, "spikes", 0, (1 << cfg.potential_bits) - 1, column=4, what="potential")


register_kind(KindSpec(
    name=KIND,
    description="Pool1 spike trains from conv spikes (golden pool_spikes); see spykehw.sim.pool1.vector_gen",
    arrays={
        "spike_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's conv spikes"),
        "spikes": ArraySpec("int64", ("NS", "Q5"), "conv spikes (t, m, u, v, p), input order"),
        "event_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's pool events"),
        "events": ArraySpec("int16", ("E", "Q"), "expected pool events (t, c, y, x), golden order"),
    },
    options=(*CONFIG_KEYS, "cases", "sources"),
    check=_check,
))


# A pool1 file uses the conv files' array names (event_offsets/events, spike_offsets/spikes), so
# the conv readers serve.
image_pool_events = image_events


def make_pool1_vectors(cfg: Pool1Config, spikes: Sequence[np.ndarray], cases: Sequence[str], *,
                       formats: NumberFormats, sources: dict[str, str] | None = None,
                       description: str = "") -> VectorSet:
    """A ``pool1`` set: ``spikes`` per image ``(k, 5)`` rows ``(t, m, u, v, p)`` in input order
    (sorted by step), the expected events from the golden model."""
    spikes = [np.asarray(s, dtype=np.int64).reshape(-1, 5) for s in spikes]
    events = golden_pool_events(cfg, spikes)
    s_off, s_rows = ragged(spikes, np.int64, 5)
    e_off, e_rows = ragged(events)
    return VectorSet(
        kind=KIND, formats=formats,
        options={**{k: getattr(cfg, k) for k in CONFIG_KEYS}, "cases": list(cases),
                 "sources": dict(sources or {})},
        seed=None, description=description,
        arrays={"spike_offsets": s_off, "spikes": s_rows, "event_offsets": e_off, "events": e_rows})


def conv1_spikes(images: Sequence[int] | None = None, *, seed: int = 0
                 ) -> tuple[list[np.ndarray], list[str], NumberFormats, ConvCoreConfig]:
    """Golden Conv1 spikes with potentials of the committed ``fpga-16`` set's real MNIST cases
    (``images``: their indices, default all), each step's spikes shuffled with ``seed``; also
    the case labels, the formats and the Conv1 core's configuration (30 lanes)."""
    vs = read_vectors(committed_path("fpga-16"))
    cases = list(vs.options["cases"])
    rows = [n for n, c in enumerate(cases) if c.startswith("mnist")] if images is None else list(images)
    steps = int(vs.options["steps"])
    ev = SpikeEvents(*ragged([image_events(vs, n) for n in rows]), steps, (2, 27, 27))
    run = run_conv(ev, np.asarray(vs["weights"][0]), CONV1, int_arithmetic(CONV1, vs.formats), record=True)
    rng = np.random.default_rng(seed)
    out = []
    for n in range(len(rows)):
        k = int(run.spike_counts[n])
        s = np.stack([run.spikes[f][n, :k] for f in ("t", "m", "u", "v", "p")], axis=1).astype(np.int64)
        s = s[rng.permutation(k)]
        out.append(s[np.argsort(s[:, 0], kind="stable")])
    core = ConvCoreConfig(options=CONV1, formats=vs.formats, steps=steps, parallelism=CONV1.maps)
    return out, [cases[n] for n in rows], vs.formats, core


def real_pool1_vectors(mode: str, images: Sequence[int] | None = None, *, seed: int = 0) -> VectorSet:
    """A ``pool1`` set of ``mode`` on real Conv1 spikes (:func:`conv1_spikes`)."""
    spikes, cases, fmt, core = conv1_spikes(images, seed=seed)
    cfg = Pool1Config(maps=core.maps, conv_size=core.out_size, steps=core.steps,
                      potential_bits=core.potential_bits, mode=mode)
    return make_pool1_vectors(
        cfg, spikes, cases, formats=fmt,
        sources={"spikes": "golden run_conv (record) on the real cases of vectors/conv/fpga-16.npz "
                           f"(weight set 0), each step shuffled with seed {seed}"},
        description=f"Pool1 ({mode}) of golden Conv1 spikes on {len(cases)} MNIST test images; "
                    "expected events from golden pool_spikes")


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.pool1.vector_gen")
