"""cocotb testbench: the generated classifier (inside :class:`ClassifierHarness`) against a
``classifier`` vector file.

Environment (set by :func:`spykehw.sim.classifier.cosim.run_cosim`, through
:func:`spykehw.sim.framework.runners.run_tests`): ``SPYKEHW_VECTORS`` (the vector file), ``SPYKEHW_PORTS``
(the harness's JSON, beside its Verilog), ``SPYKEHW_WAVEFORM`` (named in mismatch reports),
``SPYKEHW_REPORT`` (JSON mismatch report), optional ``SPYKEHW_STALL`` (``"p[:seed]"``: the
harness and its memory model misbehave with probability ``round(4p)/4``),
``SPYKEHW_CLF_LATENCY`` (the memory model's latency, default 8) and ``SPYKEHW_CLF_DUMP`` (an
``.npz`` to write every captured output and the cycle counts into).

No Python runs per clock cycle while images flow: the parameters go in through the load ports
(one word per cycle), then each batch of images is written into the harness's feature memory
through VPI, the harness runs until ``done``, and the capture memories are read back through
VPI. Every image's hidden bits, logits, class and softmax words are compared with the vector
file; a mismatch names the vector, the image (and its case), the field with its index, the
expected and the found value, and the waveform.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge, with_timeout

from ...golden.formats import NumberFormats
from ...rtl.classifier import ClassifierConfig
from ...rtl.layouts import pack
from ...rtl.verilog import GeneratedVerilog
from ..conv.packing import compare_image, image_tokens, pack_tokens, weight_words
from ..conv.packing import split_outputs as split_conv
from ..conv.tb import check_design_matches, plan_conv_batches
from ..conv.vector_gen import image_events, image_spikes
from ..framework.batches import plan_batches
from ..framework.cocotb_support import (
    ENV_REPORT,
    ENV_VECTORS,
    ENV_WAVEFORM,
    CaptureTimes,
    Checker,
    Mismatch,
    env_path,
    load_design,
    reset,
    stall_from_env,
    start_clock,
)
from ..framework.vectors import read_vectors
from .packing import compare_outputs, feature_tokens, load_words, split_outputs, w2_rows
from .vector_gen import image_indices

__all__ = ["classifier_matches_vectors", "chain_matches_golden", "ENV_LATENCY", "ENV_DUMP", "config_from_design",
           "ClassifierPorts", "write_bus", "load_parameters", "run_batch", "BatchResult",
           "report_mismatches"]

ENV_LATENCY = "SPYKEHW_CLF_LATENCY"
ENV_DUMP = "SPYKEHW_CLF_DUMP"
DEFAULT_LATENCY = 8


def config_from_design(design_json):
    """The :class:`ClassifierConfig` a harness was generated from (its JSON description)."""

    doc = json.loads(Path(design_json).read_text())
    p = doc["params"]
    return ClassifierConfig(p["features"], p["hidden"], p["classes"], NumberFormats.from_dict(doc["formats"]),
                            lanes=p["lanes"], w2_on_chip=p["w2_on_chip"]), p["harness"]


def _check_design_matches(cfg, vs) -> None:
    """Refuse to compare a design built for another shape or other formats than the vectors'."""
    want = {"features": vs.options["features"], "hidden": vs.options["hidden"],
            "classes": vs.options["classes"], "classifier": vs.formats.to_dict()["classifier"],
            "softmax": vs.formats.to_dict()["softmax"]}
    got = {"features": cfg.features, "hidden": cfg.hidden, "classes": cfg.classes,
           "classifier": cfg.formats.to_dict()["classifier"], "softmax": cfg.formats.to_dict()["softmax"]}
    assert got == want, f"the design was built for {got}, vector {vs.name} needs {want}"


def _batches(images, ev_depth: int, image_depth: int):
    """Consecutive runs ``(start, stop)`` of images that fit the harness's memories (an image's
    active feature indices and its end marker)."""
    for batch in plan_batches([(len(idx) + 1,) for idx in images], (ev_depth,), names=("events",),
                              max_images=image_depth):
        yield batch[0], batch[-1] + 1


def _read(mem, n: int) -> list[int]:
    return [int(mem[i].value.to_unsigned()) for i in range(n)]


def _fields(raw: int, layout) -> dict[str, int]:
    out = {}
    for f in layout:
        v = (raw >> f["offset"]) & ((1 << f["width"]) - 1)
        if f.get("signed") and v >> (f["width"] - 1):
            v -= 1 << f["width"]
        out[f["name"]] = v
    return out


class ClassifierPorts:
    """The harness seen from the testbench: its ports (``<prefix><name>`` on ``dut``) and its
    memories (on the instance ``inst``, or on ``dut`` itself for a bare harness)."""

    def __init__(self, dut, inst=None, prefix: str = "") -> None:
        self.dut, self.prefix = dut, prefix
        self.mems = inst if inst is not None else dut
        self.clk = dut.clk

    def __getattr__(self, name: str):
        return getattr(self.dut, self.prefix + name)

    def idle_inputs(self, cfg) -> dict[str, int]:
        names = ["start", "load__en", "stall", "latency", "n_tokens", "n_images"]
        if not cfg.w2_on_chip:
            names.append("w2_write__en")
        return {self.prefix + n: 0 for n in names}


async def write_bus(ports: ClassifierPorts, prefix: str, writes) -> None:
    """One write per cycle on a plain write bus (``<prefix>__addr/data/en``, ``sel`` if the
    writes carry a target)."""
    addr, data, en = (getattr(ports, f"{prefix}__{n}") for n in ("addr", "data", "en"))
    sel = getattr(ports, f"{prefix}__sel") if prefix == "load" else None
    for w in writes:
        await FallingEdge(ports.clk)
        if sel is not None:
            sel.value = int(w[0].value)
        addr.value, data.value, en.value = int(w[-2]), int(w[-1]), 1
    await FallingEdge(ports.clk)
    en.value = 0


def _sim_ram(ports: ClassifierPorts):
    """The memory model's storage array (``memory.store.row_mem.mem``), or None."""
    try:
        return ports.mems.memory.store.row_mem.mem
    except AttributeError:
        return None


async def load_parameters(ports: ClassifierPorts, cfg, w2, b2, w3, b3) -> None:
    """``b2``, ``W3``, ``b3`` (and on chip ``W2``) through ``load``, one word per cycle; else
    ``W2`` straight into the memory model's storage through VPI (tens of thousands of words:
    cycle by cycle from Python would take minutes), or through its ``w2_write`` port when the
    storage is not reachable."""
    await write_bus(ports, "load", load_words(cfg, w2, b2, w3, b3))
    if not cfg.w2_on_chip:
        words = [w for row in w2_rows(cfg, w2) for w in row]
        ram = _sim_ram(ports)
        cocotb.log.info(f"W2: {len(words)} words into the memory model "
                        f"{'through VPI' if ram is not None else 'through its write port'}")
        if ram is not None:
            for addr, w in enumerate(words):
                ram[addr].value = w
            await FallingEdge(ports.clk)
        else:
            await write_bus(ports, "w2_write", list(enumerate(words)))


@dataclass
class BatchResult:
    hidden: list
    logits: list
    outputs: list
    stamps: list
    cycles: int
    requests: int
    words: int


async def run_batch(ports: ClassifierPorts, cfg, layouts, images, *, latency: int) -> BatchResult:
    """Stream ``images`` (lists of feature indices, or of ready-made feature-stream words with
    ``words=True``) through the harness; returns the decoded captures."""
    G, C = cfg.groups, cfg.classes
    tokens = feature_tokens(images)
    mem = ports.mems.ev_mem
    for i, tok in enumerate(tokens):
        mem[i].value = pack(layouts["feature"], tok)
    await FallingEdge(ports.clk)
    ports.n_tokens.value = len(tokens)
    ports.n_images.value = len(images)
    ports.start.value = 1
    await FallingEdge(ports.clk)
    ports.start.value = 0
    # Generous bound: every feature of every image active, the memory stalling.
    bound = len(images) * (cfg.features * G * 4 + 4 * cfg.softmax_cycles + latency + 100) + 1000
    await with_timeout(RisingEdge(ports.done), bound * 10, "ns")
    await FallingEdge(ports.clk)
    k = len(images)
    m = ports.mems
    return BatchResult(
        hidden=[_fields(r, layouts["hidden_tap"]) for r in _read(m.hid_cap, k * G)],
        logits=[_fields(r, layouts["logit_tap"]) for r in _read(m.logit_cap, k * C)],
        outputs=[_fields(r, layouts["output"]) for r in _read(m.out_cap, k * C)],
        stamps=_read(m.stamp_cap, k), cycles=int(ports.cycles.value.to_unsigned()),
        requests=0 if cfg.w2_on_chip else int(ports.requests.value.to_unsigned()),
        words=0 if cfg.w2_on_chip else int(ports.words.value.to_unsigned()))


def report_mismatches(checker: Checker, mismatches, *, image_map=None, where=None) -> None:
    """Into ``checker``; ``where(mismatch)``: a dict of :class:`Mismatch`'s ``signal``, ``cycle``."""
    for mm in mismatches:
        i = mm.image if image_map is None else image_map[mm.image]
        checker.check(i, mm.field if mm.index is None else f"{mm.field}[{mm.index}]", mm.expected, mm.found,
                      **(where(mm) if where is not None else {}))


# The classifier core's output stream that carries each compared field (in the harness: ``core``).
CLASSIFIER_SIGNALS = {"hidden": "o_hidden__payload", "logits": "o_logits__payload",
                      "classes": "o_stream__payload", "words": "o_stream__payload",
                      "protocol": "o_stream__payload"}


@cocotb.test()
async def classifier_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind="classifier")
    design = load_design()
    cfg, depths = config_from_design(design.json_path)
    _check_design_matches(cfg, vs)
    images = image_indices(vs)
    n = len(images)
    prob, _seed = stall_from_env()
    stall = min(3, int(round(4 * prob)))
    latency = int(os.environ.get(ENV_LATENCY, "") or DEFAULT_LATENCY)
    layouts = design.params["layouts"]

    inst = getattr(dut, "harness", None) if hasattr(dut, "harness") else None
    ports = ClassifierPorts(dut, inst)
    if inst is None:            # the bare harness: cocotb drives the clock
        start_clock(dut)        # (under the simulation top the clock runs by itself)
    await reset(dut, idle=ports.idle_inputs(cfg))
    ports.stall.value = stall
    ports.latency.value = latency
    t0 = time.perf_counter()
    await load_parameters(ports, cfg, vs["w2"], vs["b2"], vs["w3"], vs["b3"])
    t_load = time.perf_counter() - t0

    hidden, logits, outputs, stamps, batch_cycles = [], [], [], [], []
    requests = words = 0
    t0 = time.perf_counter()
    for a, b in _batches(images, depths["ev_depth"], depths["image_depth"]):
        r = await run_batch(ports, cfg, layouts, images[a:b], latency=latency)
        hidden += r.hidden
        logits += r.logits
        outputs += r.outputs
        stamps += r.stamps
        batch_cycles.append(r.cycles)
        requests, words = r.requests, r.words
    t_run = time.perf_counter() - t0

    got = split_outputs(cfg, n, hidden, logits, outputs)
    dump = env_path(ENV_DUMP, required=False)
    if dump is not None:
        np.savez(dump, hidden=got.hidden, logits=got.logits, classes=got.classes, words=got.words,
                 stamps=np.array(stamps, np.int64), batch_cycles=np.array(batch_cycles, np.int64),
                 requests=requests, words_fetched=words, latency=latency, stall=stall,
                 load_seconds=t_load, run_seconds=t_run)
    cases = list(vs.options.get("cases", []))
    checker = Checker(vector=vs.name, waveform=env_path(ENV_WAVEFORM, required=False),
                      report_path=env_path(ENV_REPORT, required=False),
                      item_label=lambda i: cases[i] if i < len(cases) else "")
    core = f"{dut._name}.harness.core" if inst is not None else f"{dut._name}.core"
    report_mismatches(checker, compare_outputs(got, hidden=vs["hidden"], logits=vs["logits"],
                                               classes=vs["classes"], words=vs["words"]),
                      where=lambda mm: {"signal": f"{core}.{CLASSIFIER_SIGNALS[mm.field]}",
                                        "cycle": stamps[mm.image] if mm.image < len(stamps) else None})
    checker.checked = n * (cfg.hidden + 2 * cfg.classes + 1)
    checker.finish()


# ----- end to end: conv core -> classifier ----------------------------------------------------------

ENV_CHAIN_CONV_VECTORS = "SPYKEHW_CHAIN_CONV_VECTORS"
ENV_CHAIN_CONV_PORTS = "SPYKEHW_CHAIN_CONV_PORTS"


async def _reset_all(dut, names, idle) -> None:
    for name, value in idle.items():
        getattr(dut, name).value = value
    for rst in names:
        getattr(dut, rst).value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    for rst in names:
        getattr(dut, rst).value = 0


def _at(words: list[int], k: int | None) -> int | None:
    return words[k] if k is not None and 0 <= k < len(words) else None


@cocotb.test()
async def chain_matches_golden(dut):
    """The simulation top holds ``conv`` (a ConvHarness) and ``clf`` (a ClassifierHarness).

    Per batch: the images' input spikes go through the conv core; its spikes and Pool1
    features are compared with the ``conv-infer`` file; the feature words it emitted, in its
    order and with its end-of-image markers, are streamed into the classifier, whose outputs are
    compared with the ``classifier`` file (computed from the golden features)."""

    vs = read_vectors(env_path(ENV_VECTORS), kind="classifier")
    conv_vs = read_vectors(env_path(ENV_CHAIN_CONV_VECTORS), kind="conv-infer")
    design = load_design()
    conv_design = GeneratedVerilog.load(env_path(ENV_CHAIN_CONV_PORTS))
    cfg, depths = config_from_design(design.json_path)
    _check_design_matches(cfg, vs)
    cp = dict(conv_design.params)
    check_design_matches(cp, conv_vs)
    n = len(vs["counts"])
    assert len(conv_vs.options["cases"]) == n, "the two vector files must hold the same images"
    latency = int(os.environ.get(ENV_LATENCY, "") or DEFAULT_LATENCY)
    layouts = design.params["layouts"]
    cases = list(vs.options.get("cases", []))
    checker = Checker(vector=f"{conv_vs.name}+{vs.name}", waveform=env_path(ENV_WAVEFORM, required=False),
                      report_path=env_path(ENV_REPORT, required=False),
                      item_label=lambda i: cases[i] if i < len(cases) else "")

    clf = ClassifierPorts(dut, dut.clf, "clf__")
    conv_idle = {f"conv__{k}": 0 for k in ("start", "stall", "weights__w_en", "weights__r_en",
                                           "n_tokens", "n_images", "cap_addr")}
    await _reset_all(dut, ("conv__rst", "clf__rst"), {**conv_idle, **clf.idle_inputs(cfg)})
    clf.latency.value = latency
    # Conv1 weights (one weight set) through the conv core's weight bus, one word per cycle.
    dut.conv__weights__w_en.value = (1 << cp["parallelism"]) - 1
    for addr, word in enumerate(weight_words(cp, conv_vs["weights"][0])):
        dut.conv__weights__addr.value = addr
        dut.conv__weights__w_data.value = word
        await FallingEdge(dut.clk)
    dut.conv__weights__w_en.value = 0
    await load_parameters(clf, cfg, vs["w2"], vs["b2"], vs["w3"], vs["b3"])

    # When each captured word arrived, to say where in the waveform a difference shows: the
    # end of the step (or of the image's features) whose output differs, on the core's stream.
    spike_times = CaptureTimes(dut.conv__spike_count, dut.conv__cycles)
    feature_times = CaptureTimes(dut.conv__feature_count, dut.conv__cycles)
    core = f"{dut._name}.conv.core"
    tokens = {i: pack_tokens(cp, image_tokens(image_events(conv_vs, i), cp["steps"])) for i in range(n)}
    batches = plan_conv_batches(cp, list(range(n)), [int(w) for w in conv_vs["weight_set"]],
                           {i: len(t) for i, t in tokens.items()})
    hidden, logits, outputs = [], [], []
    rtl_features: list[list[int]] = []
    conv_cycles, clf_cycles = [], []
    clf_stamps: dict[int, int] = {}     # image -> the classifier harness's cycle of its last output
    t0 = time.perf_counter()
    for batch in batches:
        flat = [w for i in batch for w in tokens[i]]
        mem = dut.conv.ev_mem
        for k, w in enumerate(flat):
            mem[k].value = w
        await FallingEdge(dut.clk)
        dut.conv__n_tokens.value = len(flat)
        dut.conv__n_images.value = len(batch)
        dut.conv__start.value = 1
        await FallingEdge(dut.clk)
        dut.conv__start.value = 0
        await RisingEdge(dut.conv__done)
        await FallingEdge(dut.clk)
        n_spk, n_ft = int(dut.conv__spike_count.value), int(dut.conv__feature_count.value)
        spike_words = _read(dut.conv.spike_cap, n_spk)
        feature_words = _read(dut.conv.feature_cap, n_ft)
        conv_cycles.append(int(dut.conv__cycles.value))
        outs = split_conv(cp, spike_words, feature_words, len(batch))
        for i, out in zip(batch, outs):
            if int(dut.conv__overflow.value):
                out.problems.append("a capture memory overflowed")
            feats = conv_vs["features"][i]
            checker.checked += len(image_spikes(conv_vs, i)) + int(feats.sum()) + cp["steps"]
            for mm in compare_image(i, out, image_spikes(conv_vs, i), feats):
                if mm.what == "spike":
                    signal, word = f"{core}.o_spikes__payload", _at(out.step_end_words, mm.step)
                else:
                    signal, word = f"{core}.o_features__payload", out.feature_end_word
                cycle, time_ns = (spike_times if mm.what == "spike" else feature_times).at(word)
                checker.mismatches.append(Mismatch(checker.vector, i, "conv " + mm.field(), mm.expected,
                                                   mm.found, cases[i] if i < len(cases) else "",
                                                   signal, cycle, time_ns))
            rtl_features.append(list(out.features))
        # The classifier gets exactly what the conv core emitted, image by image.
        for a, b in _batches([rtl_features[i] for i in batch], depths["ev_depth"], depths["image_depth"]):
            r = await run_batch(clf, cfg, layouts, [rtl_features[i] for i in batch[a:b]], latency=latency)
            clf_stamps.update(zip(batch[a:b], r.stamps))
            hidden += r.hidden
            logits += r.logits
            outputs += r.outputs
            clf_cycles.append(r.cycles)
    wall = time.perf_counter() - t0
    spike_times.stop()
    feature_times.stop()

    got = split_outputs(cfg, n, hidden, logits, outputs)
    dump = env_path(ENV_DUMP, required=False)
    if dump is not None:
        counts = np.array([len(f) for f in rtl_features], np.int64)
        np.savez(dump, hidden=got.hidden, logits=got.logits, classes=got.classes, words=got.words,
                 feature_counts=counts, features=np.concatenate([np.array(f, np.int64) for f in rtl_features])
                 if n else np.zeros(0, np.int64),
                 conv_batch_cycles=np.array(conv_cycles, np.int64),
                 clf_batch_cycles=np.array(clf_cycles, np.int64), run_seconds=wall,
                 conv_mismatches=sum(m.field.startswith("conv") for m in checker.mismatches))
    report_mismatches(checker, compare_outputs(got, hidden=vs["hidden"], logits=vs["logits"],
                                               classes=vs["classes"], words=vs["words"]),
                      where=lambda mm: {"signal": f"{dut._name}.clf.core.{CLASSIFIER_SIGNALS[mm.field]}",
                                        "cycle": clf_stamps.get(mm.image)})
    checker.checked += n * (cfg.hidden + 2 * cfg.classes + 1)
    checker.finish()
