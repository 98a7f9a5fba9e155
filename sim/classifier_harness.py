"""Driving and checking the classifier: word packing, output decoding, comparison, the harness.

Shared by the Amaranth-simulator tests, the cocotb testbench, the benchmark, the long runs and
the hardware stage of the main job, so that every one of them packs the weights, decodes the
outputs and names a mismatch the same way.

Packing (plain Python ints, lane ``k`` of a word in bits ``k*bits .. k*bits+bits-1``, two's
complement): :func:`load_words` (the ``load`` bus words of ``b2``, ``W3``, ``b3`` and, on chip,
``W2``), :func:`w2_rows` (the memory's words of each ``W2`` row), :func:`feature_tokens` (the
``i_features`` stream of a batch).

Decoding and checking: :func:`split_outputs` turns the three output streams (hidden tap, logit
tap, softmax output) into per-image arrays, reporting protocol errors (a ``last`` flag out of
place, a class that differs between the transfers of one image); :func:`compare_outputs` lists
every difference from the expectation as :class:`ClassifierMismatch` (vector, image, field,
index, expected, found).

:class:`ClassifierHarness` wraps a classifier and a :class:`~spykehw.sim.memory_model.MemoryModel`
so that a simulator runs a whole batch without Python stepping the clock (see its docstring).
:func:`run_pysim` runs the bare classifier in the Amaranth simulator with a Python memory model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..rtl.classifier import Classifier, ClassifierConfig, LoadBusSignature, LoadTarget
from ..rtl.layouts import feature_layout
from ..rtl.weight_memory import WriteBusSignature
from .memory_model import LFSR_TAPS, SIM_RAM_MODULE, SIM_RAM_VERILOG, MemoryModel, PyMemoryModel

__all__ = [
    "write_bus",
    "pack_lanes",
    "unpack_lanes",
    "load_words",
    "w2_rows",
    "feature_tokens",
    "ClassifierOutputs",
    "split_outputs",
    "ClassifierMismatch",
    "compare_outputs",
    "run_pysim",
    "ClassifierHarness",
    "HARNESS_DEFAULTS",
    "TB_MODULE",
    "generate_harness",
    "SIM_TOP",
    "sim_top_verilog",
    "build_top",
    "run_cosim",
    "ChainCosim",
    "build_chain",
    "run_chain",
    "long_run_classifier",
    "long_run_chain",
]


# ----- packing ------------------------------------------------------------------------------

async def write_bus(ctx, bus, writes, *, before_each=None) -> None:
    """Drive a write bus (``WriteBusSignature``: ``addr``, ``data``, ``en``, and ``sel`` when
    ``writes`` yields ``(sel, addr, data)`` triples instead of ``(addr, data)`` pairs) in the
    Amaranth simulator, one write per cycle; ``before_each(ctx)`` runs before every write."""
    for w in writes:
        if before_each is not None:
            before_each(ctx)
        if len(w) == 3:
            ctx.set(bus.sel, w[0])
        ctx.set(bus.addr, w[-2])
        ctx.set(bus.data, w[-1])
        ctx.set(bus.en, 1)
        await ctx.tick()
    ctx.set(bus.en, 0)


def pack_lanes(values: Iterable[int], bits: int) -> int:
    """Lane ``k`` of the result holds ``values[k]`` in ``bits``-bit two's complement."""
    mask = (1 << bits) - 1
    word = 0
    for k, v in enumerate(values):
        v = int(v)
        if not -(1 << (bits - 1)) <= v < (1 << bits):
            raise ValueError(f"lane {k}: {v} does not fit {bits} bits")
        word |= (v & mask) << (k * bits)
    return word


def unpack_lanes(word: int, lanes: int, bits: int, *, signed: bool = True) -> list[int]:
    out = []
    for k in range(lanes):
        v = (int(word) >> (k * bits)) & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


def _padded(cfg: ClassifierConfig, row: np.ndarray) -> np.ndarray:
    """A length-H vector padded with zeros to G*L lanes."""
    out = np.zeros(cfg.groups * cfg.lanes, dtype=np.int64)
    out[:cfg.hidden] = row
    return out


def w2_rows(cfg: ClassifierConfig, W2q: np.ndarray) -> list[list[int]]:
    """``rows[r]``: the ``G`` memory words of row ``r`` of ``W2`` (padding lanes 0)."""
    W2q = np.asarray(W2q)
    if W2q.shape != (cfg.features, cfg.hidden):
        raise ValueError(f"W2q has shape {W2q.shape}, the classifier needs {(cfg.features, cfg.hidden)}")
    L, WB = cfg.lanes, cfg.hidden_weight_bits
    rows = []
    for r in range(cfg.features):
        lanes = _padded(cfg, W2q[r])
        rows.append([pack_lanes(lanes[g * L:(g + 1) * L], WB) for g in range(cfg.groups)])
    return rows


def load_words(cfg: ClassifierConfig, W2q: np.ndarray, b2q: np.ndarray, W3q: np.ndarray,
               b3q: np.ndarray) -> list[tuple[LoadTarget, int, int]]:
    """``(target, addr, data)`` writes of the ``load`` bus that hold the classifier's
    parameters (``W2`` only when it is on chip; otherwise see :func:`w2_rows`)."""
    L = cfg.lanes
    out: list[tuple[LoadTarget, int, int]] = []
    b2 = _padded(cfg, np.asarray(b2q))
    out += [(LoadTarget.B2, g, pack_lanes(b2[g * L:(g + 1) * L], cfg.hidden_bias_bits))
            for g in range(cfg.groups)]
    W3q = np.asarray(W3q)
    out += [(LoadTarget.W3, h, pack_lanes(W3q[h], cfg.output_weight_bits)) for h in range(cfg.hidden)]
    out.append((LoadTarget.B3, 0, pack_lanes(np.asarray(b3q), cfg.output_bias_bits)))
    if cfg.w2_on_chip:
        for r, words in enumerate(w2_rows(cfg, W2q)):
            out += [(LoadTarget.W2, r * cfg.groups + g, w) for g, w in enumerate(words)]
    return out


def feature_tokens(images: Sequence[Sequence[int]]) -> list[dict[str, int]]:
    """The ``i_features`` transfers of a batch: each image's indices, then its marker."""
    out: list[dict[str, int]] = []
    for idx in images:
        out += [{"index": int(i), "last": 0} for i in idx]
        out.append({"index": 0, "last": 1})
    return out


# ----- decoding and checking ------------------------------------------------------------------

@dataclass
class ClassifierOutputs:
    """What the classifier produced for a batch of ``N`` images."""

    hidden: np.ndarray          # (N, H) uint8
    logits: np.ndarray          # (N, C) int64
    classes: np.ndarray         # (N,) int64
    words: np.ndarray           # (N, C) int64
    problems: list[tuple[int, str]] = field(default_factory=list)    # (image, message)


def split_outputs(cfg: ClassifierConfig, n_images: int, hidden: Sequence[Mapping[str, int]],
                  logits: Sequence[Mapping[str, int]], outputs: Sequence[Mapping[str, int]]
                  ) -> ClassifierOutputs:
    """Per-image arrays from the decoded transfers of the three output streams.

    ``hidden``: ``{bits, last}`` (``G`` per image); ``logits``: ``{logit, last}`` (``C`` per
    image); ``outputs``: ``{word, argmax, last}`` (``C`` per image). Missing transfers leave
    ``-1`` and are reported as problems, like misplaced ``last`` flags.
    """
    G, H, C, L = cfg.groups, cfg.hidden, cfg.classes, cfg.lanes
    res = ClassifierOutputs(np.full((n_images, H), 255, np.uint8), np.full((n_images, C), -1, np.int64),
                            np.full(n_images, -1, np.int64), np.full((n_images, C), -1, np.int64))

    def per_image(stream: str, items: Sequence[Mapping[str, int]], per: int):
        if len(items) != n_images * per:
            res.problems.append((min(len(items) // per, n_images - 1) if n_images else 0,
                                 f"{stream}: {len(items)} transfers, expected {n_images} x {per}"))
        for k, item in enumerate(items[:n_images * per]):
            i, j = divmod(k, per)
            if int(item["last"]) != int(j == per - 1):
                res.problems.append((i, f"{stream}[{j}]: last = {item['last']}"))
            yield i, j, item

    for i, g, item in per_image("hidden", hidden, G):
        bits = [(int(item["bits"]) >> lane) & 1 for lane in range(L)]
        lo = g * L
        n = min(L, H - lo)
        res.hidden[i, lo:lo + n] = bits[:n]
        if any(bits[n:]):
            res.problems.append((i, f"hidden[{g}]: padding lanes {n}..{L - 1} are not 0"))
    for i, c, item in per_image("logits", logits, C):
        res.logits[i, c] = int(item["logit"])
    for i, c, item in per_image("output", outputs, C):
        res.words[i, c] = int(item["word"])
        if c == 0:
            res.classes[i] = int(item["argmax"])
        elif int(item["argmax"]) != res.classes[i]:
            res.problems.append((i, f"output[{c}]: argmax {item['argmax']} differs from "
                                    f"output[0]'s {res.classes[i]}"))
    return res


@dataclass(frozen=True)
class ClassifierMismatch:
    """One difference: ``field`` is hidden, logits, classes, words or protocol."""

    image: int
    field: str
    index: int | None
    expected: Any
    found: Any

    def message(self, vector: str, label: str = "") -> str:
        item = f"image {self.image}" + (f" ({label})" if label else "")
        where = f"{self.field}[{self.index}]" if self.index is not None else self.field
        return f"vector {vector} {item} field {where}: expected {self.expected}, found {self.found}"


def compare_outputs(got: ClassifierOutputs, *, hidden: np.ndarray | None, logits: np.ndarray,
                    classes: np.ndarray, words: np.ndarray) -> list[ClassifierMismatch]:
    """Every difference from the expectation, image by image (hidden bits, logits, class,
    words, in that order); ``hidden=None`` skips the hidden bits."""
    out: list[ClassifierMismatch] = []
    probs: dict[int, list[str]] = {}
    for i, msg in got.problems:
        probs.setdefault(i, []).append(msg)
    for i in range(len(classes)):
        out += [ClassifierMismatch(i, "protocol", None, "well-formed streams", m) for m in probs.get(i, [])]
        if hidden is not None:
            for h in np.flatnonzero(got.hidden[i] != hidden[i]):
                out.append(ClassifierMismatch(i, "hidden", int(h), int(hidden[i, h]), int(got.hidden[i, h])))
        for name, want, have in (("logits", logits, got.logits), ("words", words, got.words)):
            for c in np.flatnonzero(have[i] != want[i]):
                out.append(ClassifierMismatch(i, name, int(c), int(want[i, c]), int(have[i, c])))
        if got.classes[i] != classes[i]:
            out.append(ClassifierMismatch(i, "classes", None, int(classes[i]), int(got.classes[i])))
    order = {"protocol": 0, "hidden": 1, "logits": 2, "classes": 3, "words": 4}
    out.sort(key=lambda m: (m.image, order[m.field], -1 if m.index is None else m.index))
    return out


# ----- the bare classifier in the Amaranth simulator -----------------------------------------

@dataclass
class PysimRun:
    outputs: ClassifierOutputs
    cycles: int                 # from the first feature offered to the last output word
    requests: int
    words: int
    output_edges: list[int]     # edge of the last output transfer of each image
    hidden_edges: list[int]     # edge of the last hidden-tap word of each image (stage A done)


def run_pysim(cfg: ClassifierConfig, params: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
              images: Sequence[Sequence[int]], *, latency: int = 1, stall: float = 0.0, seed: int = 0,
              vcd: str | Path | None = None) -> PysimRun:
    """Load ``params`` (W2q, b2q, W3q, b3q), stream ``images`` (lists of active indices) and
    collect every output, in the Amaranth simulator.

    ``W2`` is served by a :class:`PyMemoryModel` (``latency``, ``stall`` probability) unless
    the configuration keeps it on chip; ``stall`` also inserts gaps in the feature stream and
    holds the output's ``ready`` low at random.
    """
    from amaranth.sim import Simulator

    from .streams import stream_get, stream_put

    dut = Classifier(cfg)
    W2q, b2q, W3q, b3q = params
    writes = load_words(cfg, W2q, b2q, W3q, b3q)
    tokens = feature_tokens(images)
    n = len(images)
    rng_in, rng_out = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    hidden_items: list[dict] = []
    logit_items: list[dict] = []
    out_items: list[dict] = []
    out_edges: list[int] = []
    hidden_edges: list[int] = []
    mem = None if cfg.w2_on_chip else PyMemoryModel(w2_rows(cfg, W2q), latency=latency,
                                                    stall_prob=stall, seed=seed)
    state = {"start": 0, "edge": 0}

    async def loader_and_producer(ctx):
        await write_bus(ctx, dut.load, writes)
        state["start"] = state["edge"]
        for tok in tokens:
            while stall and rng_in.random() < stall:
                await ctx.tick()
            await stream_put(ctx, dut.i_features, tok)

    async def consumer(ctx):
        for _ in range(n * cfg.classes):
            while stall and rng_out.random() < stall:
                await ctx.tick()
            p = await stream_get(ctx, dut.o_stream)
            out_items.append({"word": p.word, "argmax": p.argmax, "last": p.last})
            if p.last:
                out_edges.append(state["edge"])

    async def taps(ctx):
        async for _clk, _rst, hv, hp, lv, lp in ctx.tick().sample(
                dut.o_hidden.valid, dut.o_hidden.payload, dut.o_logits.valid, dut.o_logits.payload):
            state["edge"] += 1
            if hv:
                hidden_items.append({"bits": hp.bits, "last": hp.last})
                if hp.last:
                    hidden_edges.append(state["edge"])
            if lv:
                logit_items.append({"logit": lp.logit, "last": lp.last})

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(loader_and_producer)
    sim.add_testbench(consumer)
    sim.add_process(taps)
    if mem is not None:
        sim.add_testbench(mem.run(dut.w2), background=True)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    outputs = split_outputs(cfg, n, hidden_items, logit_items, out_items)
    return PysimRun(outputs, state["edge"] - state["start"], mem.requests if mem else 0,
                    mem.words if mem else 0, [e - state["start"] for e in out_edges],
                    [e - state["start"] for e in hidden_edges])


# ----- the free-running harness ---------------------------------------------------------------

HARNESS_DEFAULTS = {"ev_depth": 1 << 12, "image_depth": 64}


class ClassifierHarness(wiring.Component):
    """A classifier, its external ``W2`` memory and capture memories: a batch runs free.

    The testbench loads the parameters (``load``; ``w2_write`` for the memory model), fills
    the feature memory ``ev_mem`` (one :func:`~spykehw.rtl.layouts.feature_layout` word per
    transfer of :func:`feature_tokens`) and pulses ``start``. The harness streams the words into
    the classifier and writes every transfer of the three outputs into ``hid_cap`` (hidden tap,
    ``G`` words per image: ``bits | last << L``), ``logit_cap`` (logit tap, ``C`` per image:
    ``logit | last << logit_bits``), ``out_cap`` (softmax output, ``C`` per image, its payload)
    and, per image, the cycle of its last output transfer into ``stamp_cap``, until
    ``n_images`` images are out; then ``done`` rises (until the next ``start``). A cocotb
    testbench reads and writes the memories directly through VPI (``dut.ev_mem[i]``), the
    Amaranth simulator through ``harness.ev_mem.data[i]``.

    ``stall`` (0 .. 3) inserts idle cycles into the feature stream and holds the output's
    ``ready`` low, each with probability ``stall/4`` per cycle (16-bit LFSR), and is passed to
    the memory model together with ``latency``.

    Parameters
    ----------
    config : ClassifierConfig
    ev_depth : int
        Feature-stream words per batch.
    image_depth : int
        Images per batch (sizes the capture memories).
    queue_depth : int
        The memory model's request queue.
    sim_ram : bool
        The memory model stores ``W2`` in a Verilog black box (for Verilog simulation; see
        :class:`~spykehw.sim.memory_model.MemoryModel`).
    """

    def __init__(self, config: ClassifierConfig, *, ev_depth: int = HARNESS_DEFAULTS["ev_depth"],
                 image_depth: int = HARNESS_DEFAULTS["image_depth"], queue_depth: int = 16,
                 sim_ram: bool = False) -> None:
        for name, v in (("ev_depth", ev_depth), ("image_depth", image_depth)):
            if not isinstance(v, int) or v < 2:
                raise ValueError(f"{name} must be an integer >= 2, not {v!r}")
        self._cfg = config
        self._depths = {"ev_depth": ev_depth, "image_depth": image_depth, "queue_depth": queue_depth,
                        "sim_ram": sim_ram}
        self.core = Classifier(config)
        G, C, L, LB = config.groups, config.classes, config.lanes, config.logit_bits
        self._feature = feature_layout(config.features)
        out_bits = self.core.o_stream.payload.shape().size
        self.ev_mem = memory.Memory(shape=self._feature.size, depth=ev_depth, init=[])
        self.hid_cap = memory.Memory(shape=L + 1, depth=image_depth * G, init=[])
        self.logit_cap = memory.Memory(shape=LB + 1, depth=image_depth * C, init=[])
        self.out_cap = memory.Memory(shape=out_bits, depth=image_depth * C, init=[])
        self.stamp_cap = memory.Memory(shape=32, depth=image_depth, init=[])
        # Ports are made once, here: elaborate() runs once per output (Verilog, RTLIL).
        self._ports = (self.ev_mem.read_port(), self.hid_cap.write_port(), self.logit_cap.write_port(),
                       self.out_cap.write_port(), self.stamp_cap.write_port())
        self.model = None
        members = {
            "load": In(LoadBusSignature(config.load_addr_depth, config.load_data_bits)),
            "start": In(1),
            "n_tokens": In(range(ev_depth + 1)),
            "n_images": In(range(image_depth + 1)),
            "stall": In(2),
            "latency": In(16),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
            "idle": Out(1),
            "requests": Out(32),
            "words": Out(32),
        }
        if not config.w2_on_chip:
            self.model = MemoryModel(rows=config.features, words_per_row=G,
                                     word_bits=config.w2_word_bits, queue_depth=queue_depth,
                                     sim_ram=sim_ram)
            members["w2_write"] = In(WriteBusSignature(config.features * G, config.w2_word_bits))
        super().__init__(members)

    @property
    def config(self) -> ClassifierConfig:
        return self._cfg

    def params(self) -> dict[str, Any]:
        return {**self._cfg.to_dict(), "harness": dict(self._depths)}

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        G, C, L = cfg.groups, cfg.classes, cfg.lanes
        m.submodules.core = core = self.core
        for name in ("ev_mem", "hid_cap", "logit_cap", "out_cap", "stamp_cap"):
            m.submodules[name] = getattr(self, name)
        wiring.connect(m, wiring.flipped(self.load), core.load)
        m.d.comb += self.idle.eq(core.idle)
        if self.model is not None:
            m.submodules.memory = model = self.model
            wiring.connect(m, core.w2, model.port)
            wiring.connect(m, wiring.flipped(self.w2_write), model.write)
            m.d.comb += [model.latency.eq(self.latency), model.stall.eq(self.stall),
                         self.requests.eq(model.requests), self.words.eq(model.words)]

        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq((lfsr >> 1) ^ (lfsr[0].replicate(16) & LFSR_TAPS))
        gap_in = Signal()
        hold_out = Signal()
        m.d.comb += [gap_in.eq(lfsr[3:5] < self.stall), hold_out.eq(lfsr[11:13] < self.stall)]

        ev_rd, hid_wr, logit_wr, out_wr, stamp_wr = self._ports

        n_tokens = Signal.like(self.n_tokens)
        n_images = Signal.like(self.n_images)
        ptr = Signal.like(self.n_tokens)         # the word on ev_rd.data (once primed)
        primed = Signal()
        busy, done = self.busy, self.done

        # --- input: words ptr .. n_tokens-1, valid held until taken ----------------------------
        fe = core.i_features
        have = Signal()
        offering = Signal()
        valid = Signal()
        xfer = Signal()
        m.d.comb += [
            have.eq(busy & primed & (ptr < n_tokens)),
            valid.eq(have & (offering | ~gap_in)),
            fe.valid.eq(valid),
            fe.payload.eq(ev_rd.data),
            xfer.eq(valid & fe.ready),
            ev_rd.addr.eq(Mux(self.start, 0, ptr + xfer)),
        ]
        m.d.sync += offering.eq(valid & ~fe.ready)
        with m.If(xfer):
            m.d.sync += ptr.eq(ptr + 1)

        # --- outputs: every transfer into its capture memory ------------------------------------
        hid_n = Signal(range(self.hid_cap.depth + 1))
        logit_n = Signal(range(self.logit_cap.depth + 1))
        out_n = Signal(range(self.out_cap.depth + 1))
        img_n = Signal(range(self.stamp_cap.depth + 1))
        o = core.o_stream
        out_x = Signal()
        m.d.comb += [
            o.ready.eq(busy & ~hold_out),
            out_x.eq(o.valid & o.ready),
            hid_wr.addr.eq(hid_n), hid_wr.data.eq(core.o_hidden.payload),
            hid_wr.en.eq(core.o_hidden.valid & (hid_n < self.hid_cap.depth)),
            logit_wr.addr.eq(logit_n), logit_wr.data.eq(core.o_logits.payload),
            logit_wr.en.eq(core.o_logits.valid & (logit_n < self.logit_cap.depth)),
            out_wr.addr.eq(out_n), out_wr.data.eq(o.payload),
            out_wr.en.eq(out_x & (out_n < self.out_cap.depth)),
            stamp_wr.addr.eq(img_n), stamp_wr.data.eq(self.cycles),
            stamp_wr.en.eq(out_x & o.payload.last & (img_n < self.stamp_cap.depth)),
        ]
        with m.If(hid_wr.en):
            m.d.sync += hid_n.eq(hid_n + 1)
        with m.If(logit_wr.en):
            m.d.sync += logit_n.eq(logit_n + 1)
        with m.If(out_wr.en):
            m.d.sync += out_n.eq(out_n + 1)
        with m.If(out_x & o.payload.last):
            m.d.sync += img_n.eq(img_n + 1)

        # --- control --------------------------------------------------------------------------
        with m.If(busy):
            m.d.sync += [self.cycles.eq(self.cycles + 1), primed.eq(1)]
            with m.If((img_n == n_images) & (ptr == n_tokens)):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(self.start & ~busy):
            m.d.sync += [
                busy.eq(1), done.eq(0), primed.eq(0), ptr.eq(0),
                n_tokens.eq(self.n_tokens), n_images.eq(self.n_images),
                hid_n.eq(0), logit_n.eq(0), out_n.eq(0), img_n.eq(0), self.cycles.eq(0),
            ]
        return m


# ----- co-simulation of the generated Verilog -------------------------------------------------

TB_MODULE = "spykehw.sim.tb_classifier"


def generate_harness(cfg: ClassifierConfig, out_dir: str | Path, *, name: str = "classifier_harness",
                     **depths):
    """The harness's Verilog + JSON (+ RTLIL) in ``out_dir``."""
    from ..rtl.verilog import generate

    h = ClassifierHarness(cfg, sim_ram=True, **depths)
    return generate(h, name, out_dir, h.params(), formats=cfg.formats)


def _top_memories(text: str, name: str) -> list[str]:
    """Names of the memories (``reg [..] x [..];``) of module ``name`` in a Verilog text."""
    import re

    m = re.search(rf"^module {re.escape(name)}\(.*?^endmodule", text, re.M | re.S)
    body = m.group(0) if m else ""
    return sorted(set(re.findall(r"^\s*reg\s+(?:\[[^\]]*\]\s*)?\\?(\S+?)\s*\[[^\]]*\]\s*;", body, re.M)))


SIM_TOP = "classifier_sim_top"
CLOCK_HALF_PERIOD_NS = 5


def sim_top_verilog(instances: Mapping[str, Any], *, name: str = SIM_TOP,
                    half_period_ns: int = CLOCK_HALF_PERIOD_NS) -> str:
    """A simulation-only top: each design of ``instances`` (instance name -> GeneratedVerilog)
    with all its ports but ``clk`` brought out (named ``<instance>__<port>`` when there are
    several instances, unchanged for one), and a free-running clock made inside the simulator.

    The same idea as :func:`spykehw.sim.conv_harness.sim_top_verilog`, for several designs:
    a cocotb clock costs a callback into Python's scheduler every half period, a clock inside
    the simulation costs nothing (Verilator needs ``--timing``); the testbench still waits on
    ``clk`` edges where it drives a design cycle by cycle (reset, loading).
    """
    single = len(instances) == 1
    decls, regs, conns = [], [], {}
    for inst, design in instances.items():
        conns[inst] = []
        for p in design.ports:
            if p.name == "clk":
                continue
            outer = p.name if single else f"{inst}__{p.name}"
            rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
            decls.append((outer, f"  {p.direction} {rng}{outer};"))
            inner = outer
            if p.direction == "input":
                inner = f"{outer}__q"
                regs += [f"  reg {rng}{inner} = 0;", f"  always @(posedge clk) {inner} <= {outer};"]
            conns[inst].append(f"    .{p.name}({inner})")
    lines = ["`timescale 1ns/1ps",
             "// Generated by spykehw.sim.classifier_harness.sim_top_verilog: simulation only.",
             f"module {name}({', '.join(n for n, _ in decls)});", *(d for _, d in decls),
             "  reg clk = 1'b0;", f"  always #{half_period_ns} clk = ~clk;",
             "  // Inputs are registered: Verilator evaluates the logic that top-level inputs (which",
             "  // VPI may change at any time) drive on every evaluation, twice a cycle; behind a",
             "  // register that logic is evaluated at clock edges only. Everything the testbench",
             "  // drives reaches the designs one cycle later.",
             *regs]
    for inst, design in instances.items():
        lines += [f"  {design.name} {inst} (", "    .clk(clk),", ",\n".join(conns[inst]), "  );"]
    lines += ["endmodule", ""]
    return "\n".join(lines)


VERILATOR_BUILD_ARGS = ("--timing",)
"""The simulation top's clock is a Verilog delay loop, which Verilator runs with ``--timing``."""


def build_top(simulator: str, instances: Mapping[str, Any], *, waves: bool = False, optimize: bool = False,
              root: str | Path | None = None):
    """Build :func:`sim_top_verilog` of ``instances`` for ``simulator``, reusing an earlier
    build of the same sources and options (across runs and processes).

    Builds live under ``<spykehw cache>/sim-builds/<simulator>-<hash>`` (or ``root``); a
    folder with a ``.complete`` marker is taken as it is (deleting it is always safe).
    ``optimize`` compiles Verilator's C++ with ``-O2`` (slower to build, several times faster to
    run: long runs) instead of the runners' ``-O0``. For Verilator only the top's and the
    harnesses' own signals and memories are public (VPI), so the cores are optimized.
    """
    import hashlib

    from .objcache import cache_root
    from .runners import SimBuild, build_sim

    texts = [Path(d.verilog_path).read_text() for d in instances.values()]
    sim_ram = any(SIM_RAM_MODULE in t for t in texts)
    args: list[str] = []
    vlt = ""
    if simulator == "verilator":
        args += VERILATOR_BUILD_ARGS
        if optimize:
            args += ["-CFLAGS", "-O2"]      # USER flags come after the runners' -O0: they win
        args.append("--no-public-flat-rw")
        # Public: the top's signals and the harnesses' memories (VPI reads and writes), nothing
        # else. A public signal counts as an input that VPI may change, so every VPI write
        # re-evaluates the logic that depends on it: with every signal of a harness public
        # that is most of the design, and loading W2 word by word took minutes.
        # (Of the top only its ports and clock: not the registers behind the inputs.)
        top_names = ["clk"] + [n if len(instances) == 1 else f"{i}__{n}" for i, d in instances.items()
                               for n in (p.name for p in d.ports) if n != "clk"]
        vlt = "`verilator_config\n" + "".join(f'public_flat_rw -module "{SIM_TOP}" -var "{n}"\n'
                                              for n in top_names)
        for d, text in zip(instances.values(), texts):
            for mem in _top_memories(text, d.name):
                vlt += f'public_flat_rw -module "{d.name}" -var "{mem}"\n'
        if sim_ram:     # the memory model's storage, loaded through VPI
            vlt += f'public_flat_rw -module "{SIM_RAM_MODULE}" -var "mem"\n'
    top = sim_top_verilog(instances)
    if sim_ram:
        top += SIM_RAM_VERILOG
    h = hashlib.sha256("\0".join([top, vlt, *texts, simulator, str(waves), str(args)]).encode())
    folder = Path(root) if root is not None else cache_root() / "sim-builds"
    build_dir = (folder / f"{simulator}-{SIM_TOP}-{h.hexdigest()[:20]}").resolve()
    marker = build_dir / ".complete"
    sources = [build_dir / f"{d.name}.v" for d in instances.values()] + [build_dir / f"{SIM_TOP}.v"]
    if vlt:
        sources.insert(0, build_dir / "public.vlt")
    if marker.is_file():
        return SimBuild(simulator, SIM_TOP, build_dir, tuple(sources), waves, {})
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    # One build per folder at a time: parallel test workers wanting the same build wait for the
    # first one and then reuse it.
    with open(folder / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return SimBuild(simulator, SIM_TOP, build_dir, tuple(sources), waves, {})
        build_dir.mkdir(parents=True, exist_ok=True)
        for d, text in zip(instances.values(), texts):
            (build_dir / f"{d.name}.v").write_text(text)
        (build_dir / f"{SIM_TOP}.v").write_text(top)
        if vlt:
            (build_dir / "public.vlt").write_text(vlt)
        build = build_sim(simulator, sources, SIM_TOP, build_dir, waves=waves, build_args=args)
        marker.write_text("ok\n")
    return build


def _env(stall: float, latency: int | None, dump) -> dict[str, str]:
    extra: dict[str, str] = {}
    if stall:
        extra["SPYKEHW_STALL"] = str(stall)
    if latency is not None:
        extra["SPYKEHW_CLF_LATENCY"] = str(latency)
    if dump is not None:
        extra["SPYKEHW_CLF_DUMP"] = str(Path(dump).resolve())
    return extra


def run_cosim(build, design, vectors: str | Path, test_dir: str | Path, *, stall: float = 0.0,
              latency: int | None = None, dump: str | Path | None = None, check: bool = True):
    """Run the cocotb test ``classifier_matches_vectors`` (:mod:`spykehw.sim.tb_classifier`)
    on a harness build (:func:`build_top` of ``{"harness": design}``)."""
    from .runners import run_tests, tb_env

    env = tb_env(vectors=vectors, ports=design.json_path, **_env(stall, latency, dump))
    return run_tests(build, TB_MODULE, test_dir, extra_env=env, check=check,
                     testcase="classifier_matches_vectors")


# ----- end to end: the conv core's features into the classifier ---------------------------------

@dataclass
class ChainCosim:
    """Both harnesses under one simulation top (instances ``conv`` and ``clf``, one clock)."""

    conv_config: Any
    config: ClassifierConfig
    simulator: str
    conv_design: Any
    design: Any
    build: Any


CHAIN_CONV_DEPTHS = {"ev_depth": 1 << 14, "spike_depth": 1 << 14, "feature_depth": 1 << 13}


def build_chain(conv_config, config: ClassifierConfig, simulator: str, folder: str | Path, *,
                waves: bool = False, optimize: bool = False) -> ChainCosim:
    """Generate the conv core's harness (:class:`~spykehw.sim.conv_harness.ConvHarness`) and
    the classifier's into ``folder`` and build them under one top (cached, see
    :func:`build_top`). The classifier harness holds a whole conv batch: its feature memory is
    as deep as the conv harness's feature capture."""
    from ..rtl.verilog import generate
    from .conv_harness import ConvHarness

    folder = Path(folder)
    conv_h = ConvHarness(conv_config, **CHAIN_CONV_DEPTHS)
    conv_design = generate(conv_h, "conv_harness", folder, conv_h.params(), formats=conv_config.formats)
    design = generate_harness(config, folder, ev_depth=CHAIN_CONV_DEPTHS["feature_depth"], image_depth=64)
    build = build_top(simulator, {"conv": conv_design, "clf": design}, waves=waves, optimize=optimize)
    return ChainCosim(conv_config, config, simulator, conv_design, design, build)


def run_chain(chain: ChainCosim, conv_vectors: str | Path, vectors: str | Path, test_dir: str | Path, *,
              latency: int | None = None, dump: str | Path | None = None, check: bool = True):
    """Run the cocotb test ``chain_matches_golden``: each image's encoding through the conv core
    RTL, the features it emits (in its order) through the classifier RTL; spikes, features,
    hidden bits, logits, class and words compared with the two vector files
    (:func:`~spykehw.sim.vector_gen_classifier.chain_vectors`)."""
    from .runners import run_tests, tb_env

    extra = _env(0.0, latency, dump)
    extra["SPYKEHW_CHAIN_CONV_VECTORS"] = str(Path(conv_vectors).resolve())
    extra["SPYKEHW_CHAIN_CONV_PORTS"] = str(Path(chain.conv_design.json_path).resolve())
    env = tb_env(vectors=vectors, ports=chain.design.json_path, **extra)
    return run_tests(chain.build, TB_MODULE, test_dir, extra_env=env, check=check,
                     testcase="chain_matches_golden")


# ----- long runs ------------------------------------------------------------------------------

def long_run_classifier(dataset: str = "mnist", images: int = 10000, *, lanes: int = 64, latency: int = 16,
                        folder: str | Path | None = None, simulator: str = "verilator",
                        epochs: int = 10, hidden: int = 1000, data_dir=None) -> dict[str, Any]:
    """Every one of ``images`` test images of ``dataset`` through the classifier RTL (features
    from the integer golden pipeline, a classifier trained on the full training set: see
    :func:`~spykehw.sim.vector_gen_classifier.real_classifier`), checked value by value.

    Returns a summary (mismatches, accuracy of the RTL's classes, cycles, times).
    """
    import tempfile
    import time

    from ..golden.formats import preset
    from .vector_gen_classifier import real_classifier, real_vectors, write_vector_set

    fmt = preset("fpga-16")
    t0 = time.perf_counter()
    rc = real_classifier(dataset, fmt, hidden=hidden, epochs=epochs, data_dir=data_dir)
    n = min(images, len(rc.test_y))
    vs = real_vectors(rc, n)
    t_golden = time.perf_counter() - t0
    work = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="spykehw-long-"))
    cfg = ClassifierConfig(rc.q.features, rc.q.hidden, rc.q.classes, fmt, lanes=lanes)
    design = generate_harness(cfg, work / "rtl", ev_depth=1 << 15, image_depth=256)
    t0 = time.perf_counter()
    build = build_top(simulator, {"harness": design}, optimize=True)
    t_build = time.perf_counter() - t0
    vectors = write_vector_set(work / f"{dataset}-{n}.npz", vs)
    t0 = time.perf_counter()
    result = run_cosim(build, design, vectors, work / "run", latency=latency, dump=work / "out.npz", check=False)
    t_run = time.perf_counter() - t0
    out = dict(np.load(work / "out.npz"))
    report = result.report or {}
    compared = int(len(out["classes"]))
    if compared != n:   # a short run must fail, never pass on the images it did compare
        out["classes"] = np.full(n, -1, np.int64)
    return {
        "dataset": dataset, "images": n, "images_compared": compared, "simulator": simulator,
        "shape": [cfg.features, cfg.hidden, cfg.classes],
        "lanes": lanes, "passed": bool(result.passed and compared == n), "checked": report.get("checked"),
        "mismatches": len(report.get("mismatches", [])),
        "first_mismatches": [m["message"] for m in report.get("mismatches", [])[:5]],
        "rtl_accuracy": float(np.mean(out["classes"] == vs["labels"])),
        "golden_accuracy": float(np.mean(vs["classes"] == vs["labels"])),
        "float_classifier_test_accuracy": rc.float_test_acc,
        "rtl_classes_equal_golden": int(np.sum(out["classes"] == vs["classes"])),
        "cycles": int(out["batch_cycles"].sum()), "cycles_per_image": float(out["batch_cycles"].sum()) / n,
        "bytes_fetched_per_image": int(out["words_fetched"]) * cfg.w2_word_bits / 8 / n,
        "seconds": {"golden": round(t_golden, 1), "build": round(t_build, 1), "cosim": round(t_run, 1),
                    "sim_run": round(float(out["run_seconds"]), 1)},
        "images_per_s_sim": n / float(out["run_seconds"]), "folder": str(work),
    }


def long_run_chain(dataset: str = "emnist", images: int = 1000, *, lanes: int = 64,
                   conv_parallelism: int = 30, folder: str | Path | None = None,
                   simulator: str = "verilator", epochs: int = 8, hidden: int = 1500,
                   data_dir=None) -> dict[str, Any]:
    """``images`` test images end to end: golden integer encoder -> conv core RTL -> classifier
    RTL (:func:`run_chain`), every spike, feature and classifier output checked; the chain's
    class must equal the golden model's for every image."""
    import tempfile
    import time

    from ..golden.formats import preset
    from ..golden.options import ConvOptions
    from ..rtl.conv_core import ConvCoreConfig
    from .vector_gen_classifier import chain_vectors, real_classifier, write_vector_set
    from .vector_gen_conv import write_vector_set as write_conv_vectors

    fmt = preset("fpga-16")
    t0 = time.perf_counter()
    rc = real_classifier(dataset, fmt, hidden=hidden, epochs=epochs, data_dir=data_dir)
    n = min(images, len(rc.test_y))
    conv_vs, clf_vs = chain_vectors(fmt, rc.conv_weights, rc.q, rc.test_images[:n], rc.test_y[:n],
                                    source=dataset, rows=range(n))
    t_golden = time.perf_counter() - t0
    work = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="spykehw-chain-"))
    conv_path = write_conv_vectors(work / "conv.npz", conv_vs)
    clf_path = write_vector_set(work / "classifier.npz", clf_vs)
    conv_cfg = ConvCoreConfig(ConvOptions(), fmt, steps=12, parallelism=conv_parallelism)
    cfg = ClassifierConfig(rc.q.features, rc.q.hidden, rc.q.classes, fmt, lanes=lanes)
    t0 = time.perf_counter()
    chain = build_chain(conv_cfg, cfg, simulator, work / "rtl", optimize=True)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_chain(chain, conv_path, clf_path, work / "run", dump=work / "out.npz", check=False)
    t_run = time.perf_counter() - t0
    out = np.load(work / "out.npz")
    report = result.report or {}
    return {
        "dataset": dataset, "images": n, "simulator": simulator,
        "shape": [cfg.features, cfg.hidden, cfg.classes], "lanes": lanes, "conv_parallelism": conv_parallelism,
        "passed": result.passed, "checked": report.get("checked"),
        "mismatches": len(report.get("mismatches", [])), "conv_mismatches": int(out["conv_mismatches"]),
        "first_mismatches": [m["message"] for m in report.get("mismatches", [])[:5]],
        "chain_class_equals_golden": int(np.sum(out["classes"] == clf_vs["classes"])),
        "rtl_accuracy": float(np.mean(out["classes"] == clf_vs["labels"])),
        "golden_accuracy": float(np.mean(clf_vs["classes"] == clf_vs["labels"])),
        "float_classifier_test_accuracy": rc.float_test_acc,
        "conv_cycles_per_image": float(out["conv_batch_cycles"].sum()) / n,
        "classifier_cycles_per_image": float(out["clf_batch_cycles"].sum()) / n,
        "active_features_per_image": float(out["feature_counts"].mean()),
        "seconds": {"golden": round(t_golden, 1), "build": round(t_build, 1), "cosim": round(t_run, 1),
                    "sim_run": round(float(out["run_seconds"]), 1)},
        "folder": str(work),
    }


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m spykehw.sim.classifier_harness long-mnist|long-chain [N]``: a long run, JSON."""
    import json
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("long-mnist", "long-chain"):
        print("usage: python -m spykehw.sim.classifier_harness long-mnist|long-chain [images]", file=sys.stderr)
        return 2
    n = int(argv[1]) if len(argv) > 1 else None
    if argv[0] == "long-mnist":
        summary = long_run_classifier("mnist", n or 10000)
    else:
        summary = long_run_chain("emnist", n or 1000)
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(_main())
