"""The hardware of one trained network: Verilog of both blocks and an end-to-end co-simulation.

Wiring only (the RTL generators, vector generators and runners do the work); used by the
Python API (:meth:`spykehw.api.Network.verilog`, :meth:`spykehw.api.Network.cosimulate`).
Amaranth and cocotb (the ``hw`` extra) are imported inside the functions, so importing this
module costs nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fusesoc import write_core
from .golden.classifier_int import IntClassifier
from .golden.errors import SpykehwError
from .golden.formats import NumberFormats
from .golden.options import ConvOptions, EncoderOptions, NetworkOptions
from .sim.framework.lint_waivers import write_vlt
from .sim.framework.toolchain import find_simulator, missing_reason

__all__ = ["HardwareError", "CosimResult", "generate_network", "cosimulate_network"]

DEFAULT_CONV_LANES = 30
DEFAULT_CLASSIFIER_LANES = 64


class HardwareError(SpykehwError):
    """The hardware cannot be built or simulated as asked (names the parameter or tool)."""


def _configs(options: NetworkOptions, formats: NumberFormats, q: IntClassifier, conv_lanes: int,
             classifier_lanes: int | None, w2_on_chip: bool = False):
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from .rtl.classifier import ClassifierConfig
    from .rtl.conv_config import ConvCoreConfig

    lanes = min(DEFAULT_CLASSIFIER_LANES, q.hidden) if classifier_lanes is None else classifier_lanes
    conv = ConvCoreConfig(options.conv, formats, steps=options.encoder.steps, parallelism=conv_lanes)
    clf = ClassifierConfig(q.features, q.hidden, q.classes, formats, lanes=lanes, w2_on_chip=w2_on_chip)
    return conv, clf


def generate_network(options: NetworkOptions, formats: NumberFormats, q: IntClassifier,
                     out_dir: str | Path, *, conv_lanes: int = DEFAULT_CONV_LANES,
                     classifier_lanes: int | None = None, w2_on_chip: bool = False) -> dict[str, Any]:
    """Verilog, JSON and RTLIL of the conv core and the classifier of one network.

    Parameters
    ----------
    options, formats : NetworkOptions, NumberFormats
        The network's options and integer formats.
    q : IntClassifier
        The quantized classifier (its shape sizes the classifier block).
    out_dir : str or Path
        Created if missing; gets ``conv_core.*`` and ``classifier.*`` (``.v``, ``.json``, ``.il``,
        ``.vlt`` Verilator waivers, ``.core`` FuseSoC CAPI2).
    conv_lanes, classifier_lanes : int
        Maps per cycle of the conv core (divides 30); hidden accumulators per cycle of the
        classifier (default ``min(64, hidden)``).
    w2_on_chip : bool
        ``W2`` in on-chip memory instead of the row memory port.

    Returns
    -------
    dict
        ``{"conv_core": GeneratedVerilog, "classifier": GeneratedVerilog}``.
    """
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from .rtl.classifier import generate_classifier
    from .rtl.conv_core import ConvCore
    from .rtl.verilog import generate

    conv_cfg, clf_cfg = _configs(options, formats, q, conv_lanes, classifier_lanes, w2_on_chip)
    out = Path(out_dir).resolve()
    core = ConvCore(conv_cfg)
    designs = {"conv_core": generate(core, "conv_core", out, core.params(), formats=formats),
               "classifier": generate_classifier(clf_cfg, out)}
    for g in designs.values():
        write_core(g, vlt=write_vlt(g.verilog_path))
    return designs


@dataclass
class CosimResult:
    """What the RTL chain (golden encoder -> conv core RTL -> classifier RTL) produced.

    Attributes
    ----------
    simulator : str
    passed : bool
        Every spike, feature, hidden bit, logit, class and softmax word equal to the golden model.
    classes : (N,) int64
    words : (N, C) int64
        Softmax words of the classifier RTL.
    features : list of (k,) int64
        The active feature indices each image's conv core RTL emitted, in its order.
    conv_cycles, classifier_cycles : int
        Cycles of each block for the batch (pipeline fill included).
    mismatches : list of dict
        The checker's mismatch records (empty when ``passed``).
    folder : Path
        Where the vectors, builds and logs are.
    waveform : Path or None
        The simulator's waveform of the run (with ``waves``; FST from either simulator).
    """

    simulator: str
    passed: bool
    classes: np.ndarray
    words: np.ndarray
    features: list[np.ndarray]
    conv_cycles: int
    classifier_cycles: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = None
    waveform: Path | None = None


def cosimulate_network(options: NetworkOptions, formats: NumberFormats, conv_weights: np.ndarray,
                       q: IntClassifier, images: np.ndarray, *, simulator: str = "verilator",
                       folder: str | Path | None = None, conv_lanes: int = DEFAULT_CONV_LANES,
                       classifier_lanes: int | None = None, waves: bool = False, netlist: bool = False,
                       progress=None, fault_weights: np.ndarray | None = None) -> CosimResult:
    """Images through the RTL of both blocks, compared with the integer golden model.

    Parameters
    ----------
    options, formats, conv_weights, q
        The trained integer network (Conv1 weights ``(M, C, K, K)`` int64, quantized classifier).
    images : (N, 28, 28) uint8
    simulator : ``"verilator"`` or ``"icarus"``
    folder : str or Path, optional
        Where vectors, builds and logs go (default: a temporary folder, removed afterwards).
    conv_lanes, classifier_lanes : int
        Parallelism of the two blocks.
    waves : bool
        Build with waveform dumping.
    netlist : bool
        Simulate both cores as their Yosys-synthesised ECP5 netlists (gate level, with Yosys's
        cell models) instead of their RTL; needs a full Yosys (the ``fpga`` extra).
    progress : callable, optional
        Told (one line) when a synthesis runs; synthesis results are cached.
    fault_weights : (M, C, K, K) int64, optional
        Conv1 weights to load into the hardware instead of ``conv_weights`` (an injected fault):
        the expectation stays the golden model of ``conv_weights``, so the testbench's mismatch
        records say where the hardware first departs from it (signal, cycle, time).

    Returns
    -------
    CosimResult
    """
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from .sim.classifier.cosim import build_chain, run_chain
    from .sim.classifier.vector_gen import chain_vectors, write_vector_set
    from .sim.conv.vector_gen import write_vector_set as write_conv_vectors

    if find_simulator(simulator) is None:
        raise HardwareError(f"simulator: {simulator} unavailable ({missing_reason(simulator)})")
    if len(images) == 0:
        raise HardwareError("images: no images to co-simulate")
    if options.encoder != EncoderOptions() or options.conv != ConvOptions():
        # the end-to-end vectors (chain_vectors) encode with the default options
        raise HardwareError("options: the end-to-end co-simulation runs the default encoder and conv "
                            "options; this network's differ")
    tmp = tempfile.TemporaryDirectory(prefix="spykehw-cosim-") if folder is None else None
    out = Path(tmp.name if tmp else folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        conv_cfg, clf_cfg = _configs(options, formats, q, conv_lanes, classifier_lanes)
        conv_vs, clf_vs = chain_vectors(formats, conv_weights, q, images, np.zeros(len(images), np.int64),
                                        source="images")
        conv_path = write_conv_vectors(out / "conv_vectors.npz", _with_fault(conv_vs, fault_weights))
        clf_path = write_vector_set(out / "classifier_vectors.npz", clf_vs)
        chain = build_chain(conv_cfg, clf_cfg, simulator, out / "build", waves=waves, netlist=netlist,
                            progress=progress)
        dump = out / "rtl_outputs.npz"
        run = run_chain(chain, conv_path, clf_path, out / "run", dump=dump, check=False)
        if not dump.is_file():
            raise HardwareError(f"{simulator}: the co-simulation did not run to the end: {run.summary()}")
        with np.load(dump) as rtl:
            counts = rtl["feature_counts"]
            flat = rtl["features"]
            features = np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []
            return CosimResult(simulator, bool(run.passed), rtl["classes"].astype(np.int64),
                               rtl["words"].astype(np.int64), features,
                               int(rtl["conv_batch_cycles"].sum()), int(rtl["clf_batch_cycles"].sum()),
                               list((run.report or {}).get("mismatches", [])),
                               None if tmp else out, None if tmp else run.waveform)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _with_fault(conv_vs, fault_weights: np.ndarray | None):
    """The conv vector set whose weights (what the testbench loads into the core) are
    ``fault_weights``, its expected spikes and features unchanged."""
    if fault_weights is None:
        return conv_vs
    w = np.asarray(fault_weights, np.int64)
    if w.shape != conv_vs["weights"].shape[1:]:
        raise HardwareError(f"fault_weights: shape {w.shape}, the Conv1 weights are {conv_vs['weights'].shape[1:]}")
    return dataclasses.replace(conv_vs, arrays={**conv_vs.arrays, "weights": w[None].astype(conv_vs["weights"].dtype)})


def simulate_network_amaranth(options: NetworkOptions, formats: NumberFormats, conv_weights: np.ndarray,
                              q: IntClassifier, images: np.ndarray, *, conv_lanes: int = DEFAULT_CONV_LANES,
                              classifier_lanes: int | None = None,
                              fault_weights: np.ndarray | None = None) -> CosimResult:
    """Images through the conv core and the classifier in the Amaranth simulator (no Verilog).

    The golden encoder's spikes go into the conv core; the feature indices it emits (in its
    order) into the classifier. ``passed`` says whether every step's spikes (as sets), the
    features, the classes and the softmax words equal the integer golden model's; the slowest
    level of the ladder (Python simulation), for a few images.

    Parameters and result as for :func:`cosimulate_network` (``folder`` is None, cycles 0).
    """
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from .sim.classifier.pysim import run_pysim
    from .sim.classifier.vector_gen import chain_vectors
    from .sim.conv.pysim import simulate_core
    from .sim.conv.vector_gen import image_events, image_spikes

    if options.encoder != EncoderOptions() or options.conv != ConvOptions():
        raise HardwareError("options: the Amaranth ladder level runs the default encoder and conv "
                            "options; this network's differ")
    conv_cfg, clf_cfg = _configs(options, formats, q, conv_lanes, classifier_lanes)
    n = len(images)
    conv_vs, clf_vs = chain_vectors(formats, conv_weights, q, images, np.zeros(n, np.int64), source="images")
    conv_run = simulate_core(conv_cfg, [np.asarray(conv_weights if fault_weights is None else fault_weights, np.int64)],
                             [image_events(conv_vs, i) for i in range(n)])
    features = [np.asarray(o.features, np.int64) for o in conv_run.outputs]
    clf = run_pysim(clf_cfg, (q.W2q, q.b2q, q.W3q, q.b3q), [f.tolist() for f in features])
    mismatches: list[dict[str, Any]] = []
    for i, out in enumerate(conv_run.outputs):
        want = image_spikes(conv_vs, i)         # rows (t, m, u, v)
        for t, got in enumerate(out.steps):
            exp = {tuple(int(x) for x in r[1:]) for r in want if r[0] == t}
            if set(got) != exp:
                mismatches.append({"image": i, "field": "conv.spikes", "step": t,
                                   "message": f"image {i} step {t}: spikes differ "
                                              f"({len(set(got) - exp)} extra, {len(exp - set(got))} missing)"})
        for p in out.problems:
            mismatches.append({"image": i, "field": "conv.protocol", "message": f"image {i}: {p}"})
    for i, p in clf.outputs.problems:
        mismatches.append({"image": int(i), "field": "classifier.protocol", "message": f"image {i}: {p}"})
    passed = (not mismatches and all(sorted(f.tolist()) == np.flatnonzero(g).tolist()
                                     for f, g in zip(features, conv_vs["features"]))
              and np.array_equal(clf.outputs.classes, clf_vs["classes"])
              and np.array_equal(clf.outputs.words, clf_vs["words"]))
    return CosimResult("amaranth", bool(passed), np.asarray(clf.outputs.classes, np.int64),
                       np.asarray(clf.outputs.words, np.int64), features, 0, int(clf.cycles), mismatches)
