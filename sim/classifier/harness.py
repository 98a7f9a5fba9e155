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

:class:`ClassifierHarness` wraps a classifier and a :class:`~spykehw.sim.framework.memory_model.MemoryModel`
so that a simulator runs a whole batch without Python stepping the clock (see its docstring).
:func:`run_pysim` runs the bare classifier in the Amaranth simulator with a Python memory model.
"""

from __future__ import annotations

from typing import Any

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ...rtl.classifier import Classifier, ClassifierConfig, LoadBusSignature
from ...rtl.layouts import feature_layout
from ...rtl.weight_memory import WriteBusSignature
from ..framework.memory_model import (
    MemoryModel,
)
from ..framework.stall import stall_lfsr

__all__ = [
    "ClassifierHarness",
    "HARNESS_DEFAULTS",
]


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
        :class:`~spykehw.sim.framework.memory_model.MemoryModel`).
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

        lfsr = stall_lfsr(m, seed=0xACE1)
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


