"""The binary-activation classifier with exp-LUT softmax: bit-exact with the golden ``forward_int``.

What it computes (:mod:`spykehw.golden.classifier_int`, the definition): for one image with
active features ``i``, ``acc2 = b2 + sum W2[i]`` (additions only, starting from the bias), the
hidden bits ``a2 = acc2 >= 0``, ``acc3 = b3 + sum W3[h]`` over the hidden units with
``a2[h] == 1``, the logits ``acc3 >> output_weight_frac`` (arithmetic shift: floor), then the
class (argmax, lowest index on ties) and the softmax words through the exp LUT, both by the
shared :class:`~spykehw.rtl.softmax.SoftmaxUnit`.

Numbers (:class:`ClassifierConfig`): weights and biases are the signed formats of
``NumberFormats.classifier``; the accumulators have exactly the widths the integer model derives
from the worst case (all ``F`` inputs, resp. all ``H`` hidden units, active with every weight
and the bias at the extreme of its format), so no addition can overflow; the logits are
``logit_bits`` wide, the range of that worst case shifted.

Input: the active feature indices
---------------------------------
``i_features`` (:func:`~spykehw.rtl.layouts.feature_layout`, the conv core's ``o_features``):
each active feature index of an image once, in any order, then one end-of-image marker
(``last``; its ``index`` is ignored); the next image may follow at once. Why indices and not a
3630-bit vector: an image has only about 90 to 170 active features of 3630, the conv core
discovers them one at a time (each once, in first-set order), and the hidden layer's work is one
weight-row fetch per active index, so the index *is* the fetch address. An image with no active
feature is just the marker. Indices must be ``< F`` and distinct (as the conv core guarantees).

Weights
-------
``W2`` (``F x H``, the big one: 3630 x 1500 x 16 bits = 10.9 MB at fpga-16) is fetched row by
row through the memory port ``w2`` (:class:`~spykehw.rtl.weight_memory.RowPortSignature`): one
request per active index, answered by ``G = ceil(H / L)`` words of ``L`` weights (lane ``l`` of
word ``g`` is hidden unit ``g*L + l``; lanes ``>= H`` of the last word are padding, ignored).
Bytes fetched per image = active features x ``G*L*hidden_weight_bits/8``. With
``w2_on_chip=True`` (small configurations) a :class:`~spykehw.rtl.weight_memory.RowMemory`
inside the classifier answers the same port and ``W2`` is loaded through ``load``.
``b2`` (``G`` words), ``W3`` (``H`` words of ``C`` weights: 1500 x 47 x 16 bits = 141 kB at
fpga-16) and ``b3`` (one register word) live on chip and are loaded through ``load``
(:class:`LoadTarget` in ``sel``, the word in ``addr``, lane/class ``k`` in bits
``k*bits .. k*bits+bits-1`` of ``data``). Load only while ``idle``.

Architecture (three stages, each busy with a different image)
--------------------------------------------------------------
A. **Hidden layer**: each index is registered as a row request (one per cycle). Each response
   word is added to ``L`` accumulators (a memory of ``G`` words of ``L x hidden_acc_bits``,
   read-modify-write, read transparent to the write so that back-to-back words of one address
   stream; with ``G = 1`` a register instead); during an image's first row the bias word is
   read instead of the accumulator, so nothing is ever cleared. After the marker and the last response, a scan of ``G`` cycles writes the hidden
   bits (``L`` per cycle, padding lanes 0) into one bank of a double-buffered bit memory and
   the ``o_hidden`` tap.
B. **Output layer**: takes a full bank, loads ``b3`` into ``C`` output accumulators (registers)
   and, for each set hidden bit (a priority encoder over one ``L``-bit word, lowest bit first;
   a word costs ``max(1, its set bits)`` cycles), reads that unit's ``W3`` row (one memory of
   ``H`` words per class, all read at once) and adds all ``C`` weights in one cycle. Then it
   streams the ``C`` logits (``acc3 >> frac``) to the softmax.
C. **Softmax** (:class:`SoftmaxUnit`): class and words, ``C * (softmax_bits + 3) + 1`` cycles.

A works on image ``n+1`` while B works on image ``n`` and the softmax on image ``n-1``, so the
throughput is one image per ``max(A, B + C, softmax)`` cycles. A usually dominates:
``active x G + G + latency + 4`` cycles (:meth:`ClassifierConfig.cycles_hidden`; ``latency``
from a request to its first word), e.g. 3630 -> 1500 -> 47 at 64 lanes (``G = 24``) with 170
active features and a 10-cycle memory: 4,118 cycles.

Taps (verification and debugging; never stall anything)
---------------------------------------------------------
``o_hidden``: ``G`` words per image, ``bits`` (lane ``l`` = hidden unit ``g*L + l``), ``last``
on the final word. ``o_logits``: the ``C`` logits of an image as they enter the softmax
(class 0 first), ``last`` on the final one.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..golden.errors import SpykehwError
from ..golden.fixed import accumulator_range, signed_width
from ..golden.formats import NumberFormats
from .layouts import feature_layout, index_bits, layout_fields
from .softmax import SoftmaxUnit, softmax_output_layout
from .verilog import generate
from .weight_memory import RowPortSignature, WriteBusSignature, add_row_memory

__all__ = [
    "ClassifierError",
    "ClassifierConfig",
    "LoadTarget",
    "LoadBusSignature",
    "TapSignature",
    "hidden_tap_layout",
    "logit_tap_layout",
    "Classifier",
    "generate_classifier",
    "DEFAULT_SHAPE",
]

MAX_LANES = 1024


class ClassifierError(SpykehwError, ValueError):
    """A classifier configuration that cannot be built (names the parameter)."""


class LoadTarget(enum.Enum, shape=2):
    """``load.sel``: which on-chip memory a load writes."""
    W2 = 0      # word r*G + g: lanes of row r (only with w2_on_chip)
    B2 = 1      # word g: lanes g*L .. g*L+L-1 of b2
    W3 = 2      # word h: W3[h, 0..C-1]
    B3 = 3      # (addr ignored) b3[0..C-1]


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that fixes a classifier: shape, number formats, lanes, where ``W2`` lives.

    Parameters
    ----------
    features, hidden, classes : int
        ``F >= 1``, ``H >= 2``, ``C`` in 2 .. 4096 (the softmax unit's range).
    formats : NumberFormats
        ``classifier`` (weight and bias formats) and ``softmax``.
    lanes : int
        ``L``, hidden accumulators updated per cycle (= weights per memory word), 1 .. 1024 and
        at most ``H``.
    w2_on_chip : bool
        Keep ``W2`` in an on-chip :class:`RowMemory` (loaded through ``load``) instead of
        exposing the memory port.
    """

    features: int
    hidden: int
    classes: int
    formats: NumberFormats
    lanes: int = 64
    w2_on_chip: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.formats, NumberFormats):
            raise TypeError(f"formats must be a NumberFormats, not {self.formats!r}")
        for name in ("features", "hidden", "classes", "lanes"):
            value = getattr(self, name)
            if isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            object.__setattr__(self, name, operator.index(value))
        object.__setattr__(self, "w2_on_chip", bool(self.w2_on_chip))
        if self.features < 1:
            raise ClassifierError(f"features: must be >= 1, not {self.features}")
        if self.hidden < 2:
            raise ClassifierError(f"hidden: must be >= 2, not {self.hidden}")
        if not 2 <= self.classes <= 4096:
            raise ClassifierError(f"classes: must be in 2..4096, not {self.classes}")
        if not 1 <= self.lanes <= min(MAX_LANES, self.hidden):
            raise ClassifierError(f"lanes: must be in 1..{min(MAX_LANES, self.hidden)} (at most the "
                                  f"hidden units), not {self.lanes}")
        if max(self.hidden_acc_bits, self.output_acc_bits) > 63:
            raise ClassifierError("formats: accumulators wider than 63 bits are not supported "
                                  "(the integer model's limit)")
        if not 2 <= self.logit_bits <= 64:
            raise ClassifierError(f"formats: logits of {self.logit_bits} bits are outside the "
                                  "softmax unit's 2..64")

    # --- shape -----------------------------------------------------------------------------

    @property
    def groups(self) -> int:
        """``G = ceil(H / L)``: words per ``W2`` row, and accumulator words."""
        return -(-self.hidden // self.lanes)

    @property
    def padding_lanes(self) -> int:
        return self.groups * self.lanes - self.hidden

    # --- number formats ---------------------------------------------------------------------

    @property
    def hidden_weight_bits(self) -> int:
        return self.formats.classifier.hidden_weight_bits

    @property
    def hidden_bias_bits(self) -> int:
        return self.formats.classifier.hidden_bias_bits

    @property
    def output_weight_bits(self) -> int:
        return self.formats.classifier.output_weight_bits

    @property
    def output_bias_bits(self) -> int:
        return self.formats.classifier.output_bias_bits

    @property
    def output_frac(self) -> int:
        return self.formats.classifier.output_weight_frac

    @property
    def hidden_acc_range(self) -> tuple[int, int]:
        return accumulator_range(self.features, self.hidden_weight_bits, self.hidden_bias_bits)

    @property
    def hidden_acc_bits(self) -> int:
        return signed_width(*self.hidden_acc_range)

    @property
    def output_acc_range(self) -> tuple[int, int]:
        return accumulator_range(self.hidden, self.output_weight_bits, self.output_bias_bits)

    @property
    def output_acc_bits(self) -> int:
        return signed_width(*self.output_acc_range)

    @property
    def logit_bits(self) -> int:
        lo, hi = self.output_acc_range
        return signed_width(lo >> self.output_frac, hi >> self.output_frac)

    # --- memories and the load bus ----------------------------------------------------------

    @property
    def w2_word_bits(self) -> int:
        """Bits of one memory-port word: ``L`` hidden weights."""
        return self.lanes * self.hidden_weight_bits

    @property
    def bytes_per_row(self) -> float:
        """Bytes one active feature fetches (padding lanes included: they cross the port)."""
        return self.groups * self.w2_word_bits / 8

    def load_depth(self, target: LoadTarget) -> int:
        return {LoadTarget.W2: self.features * self.groups, LoadTarget.B2: self.groups,
                LoadTarget.W3: self.hidden, LoadTarget.B3: 1}[target]

    def load_word_bits(self, target: LoadTarget) -> int:
        return {LoadTarget.W2: self.w2_word_bits,
                LoadTarget.B2: self.lanes * self.hidden_bias_bits,
                LoadTarget.W3: self.classes * self.output_weight_bits,
                LoadTarget.B3: self.classes * self.output_bias_bits}[target]

    def load_targets(self) -> tuple[LoadTarget, ...]:
        return tuple(t for t in LoadTarget if t is not LoadTarget.W2 or self.w2_on_chip)

    @property
    def load_addr_depth(self) -> int:
        return max(self.load_depth(t) for t in self.load_targets())

    @property
    def load_data_bits(self) -> int:
        return max(self.load_word_bits(t) for t in self.load_targets())

    def memory_bits(self) -> dict[str, int]:
        G, L = self.groups, self.lanes
        out = {
            "hidden_acc": G * L * self.hidden_acc_bits,
            "b2": G * L * self.hidden_bias_bits,
            "hidden_bits": 2 * G * L,
            "W3": self.hidden * self.classes * self.output_weight_bits,
        }
        if self.w2_on_chip:
            out["W2"] = self.features * G * self.w2_word_bits
        return out

    # --- timing model ------------------------------------------------------------------------

    @property
    def softmax_cycles(self) -> int:
        return self.classes * (self.formats.softmax.softmax_bits + 3) + 1

    def cycles_hidden(self, active: int, latency: int = 3) -> int:
        """Cycles of stage A for an image with ``active`` features, its indices waiting at the
        input, the memory taking a request at once and accepting the first response word
        ``latency`` cycles after it (then one word per cycle): one cycle to take the first index
        and one to offer it, ``latency``, the ``active * G`` words, the last word's write, one
        cycle to see that all is in, the ``G``-cycle scan and its last write. An image without
        active features: its marker, the check, the scan and its last write."""
        if not active:
            return self.groups + 3
        return active * self.groups + latency + 4 + self.groups

    def to_dict(self) -> dict[str, Any]:
        """Parameters for the JSON beside the Verilog (and checks against vector files)."""
        return {
            "features": self.features, "hidden": self.hidden, "classes": self.classes,
            "lanes": self.lanes, "w2_on_chip": self.w2_on_chip, "formats": self.formats.name,
            "groups": self.groups, "padding_lanes": self.padding_lanes,
            "hidden_weight_bits": self.hidden_weight_bits, "hidden_bias_bits": self.hidden_bias_bits,
            "output_weight_bits": self.output_weight_bits, "output_bias_bits": self.output_bias_bits,
            "output_frac": self.output_frac,
            "hidden_acc_bits": self.hidden_acc_bits, "output_acc_bits": self.output_acc_bits,
            "logit_bits": self.logit_bits,
            "w2_word_bits": self.w2_word_bits, "bytes_per_row": self.bytes_per_row,
            "load": {t.name: {"code": t.value, "depth": self.load_depth(t),
                              "word_bits": self.load_word_bits(t)} for t in self.load_targets()},
            "memory_bits": self.memory_bits(),
            "softmax_cycles": self.softmax_cycles,
            "layouts": {
                "feature": layout_fields(feature_layout(self.features)),
                "hidden_tap": layout_fields(hidden_tap_layout(self.lanes)),
                "logit_tap": [dict(f, signed=f["name"] == "logit")
                              for f in layout_fields(logit_tap_layout(self.logit_bits))],
                "output": layout_fields(softmax_output_layout(self.classes,
                                                              self.formats.softmax.softmax_bits)),
            },
        }


class LoadBusSignature(WriteBusSignature):
    """The parameter load bus, driven by the host: ``sel`` (:class:`LoadTarget`), ``addr``,
    ``data``, ``en``. Writes always succeed, one word per cycle."""

    def __init__(self, depth: int, data_bits: int) -> None:
        super().__init__(depth, data_bits, select=LoadTarget)

    def __repr__(self):
        depth, data_bits, _ = self._key
        return f"LoadBusSignature(depth={depth}, data_bits={data_bits})"


class TapSignature(wiring.Signature):
    """An observation port: ``valid`` and ``payload``, no ``ready`` (it never stalls)."""

    def __init__(self, layout: data.StructLayout) -> None:
        self._layout = layout
        super().__init__({"valid": Out(1), "payload": Out(layout)})

    def __eq__(self, other):
        return type(other) is type(self) and other._layout == self._layout

    def __repr__(self):
        return f"TapSignature({self._layout!r})"


def hidden_tap_layout(lanes: int) -> data.StructLayout:
    return data.StructLayout({"bits": unsigned(lanes), "last": unsigned(1)})


def logit_tap_layout(logit_bits: int) -> data.StructLayout:
    return data.StructLayout({"logit": signed(logit_bits), "last": unsigned(1)})


def _sign_extend(value, width: int):
    """``value`` (a signed net) sign-extended to ``width`` bits, as an unsigned bit pattern."""
    return Cat(value, value[-1].replicate(width - len(value))) if width > len(value) else value


def _lowest_set_bit(m: Module, value: Signal, name: str) -> Signal:
    """Index of the lowest set bit of ``value`` (0 when none), as a priority chain."""
    out = Signal(range(max(2, len(value))), name=name)
    for i in reversed(range(len(value))):
        with m.If(value[i]):
            m.d.comb += out.eq(i)
    return out


class Classifier(wiring.Component):
    """The classifier (see the module docstring).

    Parameters
    ----------
    config : ClassifierConfig

    Members
    -------
    i_features : In(stream.Signature(feature_layout(F)))
        Active feature indices of each image, then an end-of-image marker (``last``).
    w2 : Out(RowPortSignature(F, L * hidden_weight_bits))
        Row requests out (``w2.req``), row words in (``w2.resp``); absent with ``w2_on_chip``.
    load : In(LoadBusSignature(...))
        Parameter loads (``sel``, ``addr``, ``data``, ``en``); only while ``idle``.
    o_stream : Out(stream.Signature(softmax_output_layout(C, softmax_bits)))
        ``C`` transfers per image: softmax ``word`` of class 0 .. C-1, ``argmax`` (the class) on
        each, ``last`` on the final one.
    o_hidden : Out(TapSignature(hidden_tap_layout(L)))
        Hidden bits, ``G`` words per image (tap, never stalls).
    o_logits : Out(TapSignature(logit_tap_layout(logit_bits)))
        Logits as they enter the softmax, ``C`` per image (tap).
    idle : Out(1)
        No image in flight in the hidden or output layer (safe to load).
    """

    def __init__(self, config: ClassifierConfig) -> None:
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, not {config!r}")
        self._cfg = config
        members = {
            "i_features": In(stream.Signature(feature_layout(config.features))),
            "load": In(LoadBusSignature(config.load_addr_depth, config.load_data_bits)),
            "o_stream": Out(stream.Signature(softmax_output_layout(
                config.classes, config.formats.softmax.softmax_bits))),
            "o_hidden": Out(TapSignature(hidden_tap_layout(config.lanes))),
            "o_logits": Out(TapSignature(logit_tap_layout(config.logit_bits))),
            "idle": Out(1),
        }
        if not config.w2_on_chip:
            members["w2"] = Out(RowPortSignature(config.features, config.w2_word_bits))
        super().__init__(members)

    @property
    def config(self) -> ClassifierConfig:
        return self._cfg

    def params(self) -> dict[str, Any]:
        return self._cfg.to_dict()

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        F, H, C, L, G = cfg.features, cfg.hidden, cfg.classes, cfg.lanes, cfg.groups
        WB, BB = cfg.hidden_weight_bits, cfg.hidden_bias_bits
        WO, BO = cfg.output_weight_bits, cfg.output_bias_bits
        A, OA, LB = cfg.hidden_acc_bits, cfg.output_acc_bits, cfg.logit_bits
        ld = self.load

        def load_en(target: LoadTarget):
            return ld.en & (ld.sel == target)

        # ----- W2: the memory port, or an on-chip row memory behind the same protocol ----------
        if cfg.w2_on_chip:
            # The same protocol, served inside this module (no level of hierarchy).
            w2 = RowPortSignature(F, cfg.w2_word_bits).create(path=("w2",))
            w2_write = WriteBusSignature(cfg.load_depth(LoadTarget.W2), cfg.w2_word_bits).create(
                path=("w2_load",))
            m.d.comb += [
                w2_write.addr.eq(ld.addr),
                w2_write.data.eq(ld.data[:cfg.w2_word_bits]),
                w2_write.en.eq(load_en(LoadTarget.W2)),
            ]
            add_row_memory(m, wiring.flipped(w2), w2_write, rows=F, words_per_row=G,
                           word_bits=cfg.w2_word_bits, name="w2_mem")
        else:
            w2 = self.w2
        req, resp = w2.req, w2.resp

        # ----- stage A: hidden accumulation ---------------------------------------------------
        # The accumulators (G words of L lanes) and b2: memories, read one cycle ahead; with
        # G = 1 plain registers (a 1-word memory would have a 0-bit address).
        if G > 1:
            m.submodules.hidden_acc = acc_mem = memory.Memory(shape=unsigned(L * A), depth=G, init=[])
            acc_wr = acc_mem.write_port()
            acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
            m.submodules.b2 = b2_mem = memory.Memory(shape=unsigned(L * BB), depth=G, init=[])
            b2_wr = b2_mem.write_port()
            b2_rd = b2_mem.read_port()
            m.d.comb += [
                b2_wr.addr.eq(ld.addr), b2_wr.data.eq(ld.data[:L * BB]),
                b2_wr.en.eq(load_en(LoadTarget.B2)),
            ]
            acc_data, b2_data = acc_rd.data, b2_rd.data
        else:
            acc_data = Signal(L * A, name="hidden_acc")
            b2_data = Signal(L * BB, name="b2", reset_less=True)   # a parameter: survives soft reset
            with m.If(load_en(LoadTarget.B2)):
                m.d.sync += b2_data.eq(ld.data[:L * BB])
        # Hidden bits: two banks of G words; stage A fills one while stage B reads the other.
        m.submodules.hidden_bits = hb_mem = memory.Memory(shape=unsigned(L), depth=2 * G, init=[])
        hb_wr = hb_mem.write_port()
        hb_rd = hb_mem.read_port()
        full = Signal(2)            # bank holds an image's bits not yet taken by stage B
        a_bank = Signal()
        a_full = Signal()
        b_bank = Signal()
        b_full = Signal()
        m.d.comb += [a_full.eq(Mux(a_bank, full[1], full[0])), b_full.eq(Mux(b_bank, full[1], full[0]))]

        fe = self.i_features
        got_last = Signal()         # the image's end marker was taken
        pending = Signal(range(F + 2))      # rows requested (or registered) and not complete
        fresh = Signal(init=1)      # no row of this image is complete: the base is the bias
        accum = Signal()            # stage A takes indices and responses (not scanning)
        rq_valid = Signal()
        rq_row = Signal(index_bits(F))
        m.d.comb += [req.valid.eq(rq_valid), req.payload.eq(rq_row)]

        # Each index becomes a registered row request; the register empties into the port.
        take = Signal()             # an index token or the marker is accepted
        m.d.comb += [
            fe.ready.eq(accum & ~got_last & (~rq_valid | req.ready)),
            take.eq(fe.valid & fe.ready),
        ]
        row_new = Signal()
        m.d.comb += row_new.eq(take & ~fe.payload.last)
        with m.If(row_new):
            m.d.sync += [rq_valid.eq(1), rq_row.eq(fe.payload.index)]
        with m.Elif(req.ready):
            m.d.sync += rq_valid.eq(0)
        with m.If(take & fe.payload.last):
            m.d.sync += got_last.eq(1)

        # Responses: word g of the oldest row; one word is accumulated per cycle.
        m.d.comb += resp.ready.eq(accum)
        r_take = Signal()
        m.d.comb += r_take.eq(resp.valid & resp.ready)
        row_done = Signal()
        if G > 1:
            r_g = Signal(range(G))
            r_last = Signal()
            m.d.comb += [r_last.eq(r_g == G - 1), row_done.eq(r_take & r_last)]
            with m.If(r_take):
                m.d.sync += r_g.eq(Mux(r_last, 0, r_g + 1))
        else:
            m.d.comb += row_done.eq(r_take)
        with m.If(row_new & ~row_done):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(row_done & ~row_new):
            m.d.sync += pending.eq(pending - 1)

        # Read-modify-write: read in the response's cycle, add and write back one cycle later.
        s1_valid = Signal()
        s1_fresh = Signal()
        m.d.sync += [s1_valid.eq(r_take), s1_fresh.eq(fresh)]
        new_acc = []
        for lane in range(L):
            # Adder operands are whole nets (a register, a multiplexer): a slice as an operand
            # makes Verilator warn about the extension that Yosys leaves implicit.
            weight = Signal(signed(WB), name=f"s1_w{lane}")
            base = Signal(signed(A), name=f"acc_base{lane}")
            total = Signal(signed(A), name=f"acc_new{lane}")
            m.d.sync += weight.eq(resp.payload.word_select(lane, WB))
            m.d.comb += [
                base.eq(Mux(s1_fresh, b2_data.word_select(lane, BB).as_signed(),
                            acc_data.word_select(lane, A).as_signed())),
                # Two's complement: the unsigned sum of A-bit patterns, truncated to A bits, is the
                # signed sum, which A was derived to hold. Both operands are A bits wide (a
                # narrower signed operand makes Verilator warn about the implicit extension).
                total.eq(base.as_unsigned() + _sign_extend(weight, A)),
            ]
            new_acc.append(total)

        # Scan: read word k; one cycle later threshold its lanes into the bank (and the tap).
        sc_issue = Signal()
        sc_valid = Signal()
        sc_last = Signal()
        m.d.sync += sc_valid.eq(sc_issue)
        if G > 1:
            s1_g = Signal(range(G))
            sc_k = Signal(range(G))
            sc_g = Signal(range(G))
            m.d.sync += [s1_g.eq(r_g), sc_g.eq(sc_k), sc_last.eq(sc_issue & (sc_k == G - 1))]
            m.d.comb += [
                acc_wr.addr.eq(s1_g), acc_wr.data.eq(Cat(*new_acc)), acc_wr.en.eq(s1_valid),
                acc_rd.addr.eq(Mux(sc_issue, sc_k, r_g)),
                acc_rd.en.eq(sc_issue | r_take),
                b2_rd.addr.eq(Mux(sc_issue, sc_k, r_g)),
                b2_rd.en.eq(sc_issue | r_take),
                hb_wr.addr.eq(Mux(a_bank, G + sc_g, sc_g)),
            ]
        else:
            with m.If(s1_valid):
                m.d.sync += acc_data.eq(Cat(*new_acc))
            m.d.sync += sc_last.eq(sc_issue)
            m.d.comb += hb_wr.addr.eq(a_bank)
        bits = Signal(L)
        real_lanes = L - cfg.padding_lanes      # lanes of the last word that are hidden units
        for lane in range(L):
            neg = Signal(name=f"hid_neg{lane}")
            m.d.comb += neg.eq(Mux(fresh, b2_data[(lane + 1) * BB - 1], acc_data[(lane + 1) * A - 1]))
            if lane < real_lanes:
                m.d.comb += bits[lane].eq(~neg)
            else:
                m.d.comb += bits[lane].eq(~neg & (sc_g != G - 1))
        m.d.comb += [
            hb_wr.data.eq(bits),
            hb_wr.en.eq(sc_valid),
            self.o_hidden.valid.eq(sc_valid),
            self.o_hidden.payload.bits.eq(bits),
            self.o_hidden.payload.last.eq(sc_last),
        ]

        full_set = Signal(2)
        full_clr = Signal(2)
        m.d.sync += full.eq((full | full_set) & ~full_clr)
        a_idle = Signal()
        with m.FSM(init="ACCUM", name="hidden_fsm"):
            with m.State("ACCUM"):
                m.d.comb += [accum.eq(1),
                             a_idle.eq(fresh & ~got_last & ~rq_valid & (pending == 0) & ~s1_valid)]
                with m.If(got_last & ~rq_valid & (pending == 0) & ~s1_valid
                          & ~a_full):
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += sc_issue.eq(1)
                if G > 1:
                    m.d.sync += sc_k.eq(Mux(sc_k == G - 1, 0, sc_k + 1))
                    with m.If(sc_k == G - 1):
                        m.next = "FINISH"
                else:
                    m.next = "FINISH"
            with m.State("FINISH"):
                # The last word is written now; the bank is handed to stage B.
                m.d.comb += full_set.eq(Mux(a_bank, 0b10, 0b01))
                m.d.sync += [a_bank.eq(~a_bank), got_last.eq(0), fresh.eq(1)]
                m.next = "ACCUM"
        with m.If(row_done):
            m.d.sync += fresh.eq(0)

        # ----- stage B: output accumulation ---------------------------------------------------
        # W3: one memory per class (H words of WO bits), all read at the same address, so that
        # each class's adder takes a whole read-data net.
        w3_rd = []
        for c in range(C):
            w3_mem = memory.Memory(shape=signed(WO), depth=H, init=[])
            m.submodules[f"w3_{c}"] = w3_mem
            wr = w3_mem.write_port()
            w3_rd.append(w3_mem.read_port())
            m.d.comb += [wr.addr.eq(ld.addr), wr.data.eq(ld.data.word_select(c, WO)),
                         wr.en.eq(load_en(LoadTarget.W3))]
        b3 = Signal(C * BO, reset_less=True)    # a parameter (like the memories): survives soft reset
        with m.If(load_en(LoadTarget.B3)):
            m.d.sync += b3.eq(ld.data[:C * BO])
        acc3 = [Signal(signed(OA), name=f"acc3_{c}") for c in range(C)]

        cur_bits = Signal(L)        # hidden bits of word cur_g still to add
        cur_valid = Signal()
        wptr = Signal(range(G + 1))     # the next word to load
        have = Signal()
        single = Signal()
        load = Signal()
        m.d.comb += [
            have.eq(cur_valid & cur_bits.any()),
            single.eq((cur_bits & (cur_bits - 1)) == 0),
        ]
        h = Signal(range(H))            # the hidden unit whose W3 row is read
        if G > 1:
            cur_g = Signal(range(G))
            if L == 1:
                m.d.comb += h.eq(cur_g)
            elif L & (L - 1) == 0:
                m.d.comb += h.eq(Cat(_lowest_set_bit(m, cur_bits, "hid_low")[:ceil_log2(L)], cur_g))
            else:
                m.d.comb += h.eq(cur_g * L + _lowest_set_bit(m, cur_bits, "hid_low"))
            next_word = Signal(range(G + 1))
            rd_word = Signal(range(G + 1))     # (as wide as next_word: a whole net in the adder)
            m.d.comb += [
                next_word.eq(Mux(load, wptr + 1, wptr)),
                rd_word.eq(Mux(next_word == G, G - 1, next_word)),
                hb_rd.addr.eq(Mux(b_bank, G + rd_word, rd_word)),
            ]
        else:
            m.d.comb += [h.eq(_lowest_set_bit(m, cur_bits, "hid_low")), hb_rd.addr.eq(b_bank)]
        m.d.comb += [p.addr.eq(h) for p in w3_rd] + [p.en.eq(have) for p in w3_rd]
        s2_valid = Signal()
        m.d.sync += s2_valid.eq(have)
        with m.If(s2_valid):
            # OA holds the worst case: the two's-complement sum never wraps.
            m.d.sync += [acc3[c].eq(acc3[c].as_unsigned() + _sign_extend(w3_rd[c].data, OA))
                         for c in range(C)]

        sm = SoftmaxUnit(classes=C, logit_bits=LB, softmax_format=cfg.formats.softmax)
        m.submodules.softmax = sm
        wiring.connect(m, sm.o_stream, wiring.flipped(self.o_stream))
        cls = Signal(range(C))
        m.d.comb += [
            sm.i_stream.payload.eq(Array(acc3)[cls] >> cfg.output_frac),
            self.o_logits.payload.logit.eq(sm.i_stream.payload),
            self.o_logits.payload.last.eq(cls == C - 1),
            self.o_logits.valid.eq(sm.i_stream.valid & sm.i_stream.ready),
        ]
        b_idle = Signal()
        with m.FSM(init="IDLE", name="output_fsm"):
            with m.State("IDLE"):
                m.d.comb += b_idle.eq(1)
                # The read port presents word 0 of the bank, so it is ready when RUN starts.
                with m.If(b_full):
                    m.d.sync += cur_valid.eq(0)
                    m.d.sync += [acc3[c].eq(b3.word_select(c, BO).as_signed()) for c in range(C)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += load.eq((wptr != G) & (~cur_valid | single))
                with m.If(load):
                    m.d.sync += [cur_bits.eq(hb_rd.data), wptr.eq(wptr + 1), cur_valid.eq(1)]
                    if G > 1:
                        m.d.sync += cur_g.eq(wptr)
                    with m.If(wptr == G - 1):
                        # every word of the bank is in cur_bits or done: release it
                        m.d.comb += full_clr.eq(Mux(b_bank, 0b10, 0b01))
                        m.d.sync += b_bank.eq(~b_bank)
                with m.Elif(have):
                    m.d.sync += cur_bits.eq(cur_bits & (cur_bits - 1))
                with m.If((wptr == G) & ~have & ~s2_valid):
                    # wptr = 0: the read port presents word 0 of the next bank from now on
                    m.d.sync += [cls.eq(0), wptr.eq(0)]
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += sm.i_stream.valid.eq(1)
                with m.If(sm.i_stream.ready):
                    m.d.sync += cls.eq(Mux(cls == C - 1, 0, cls + 1))
                    with m.If(cls == C - 1):
                        m.next = "IDLE"

        m.d.comb += self.idle.eq(a_idle & b_idle & (full == 0))
        return m


def generate_classifier(config: ClassifierConfig, out_dir, *, name: str = "classifier"):
    """Write ``<name>.v``, ``.il`` and ``.json`` (:func:`spykehw.rtl.verilog.generate`)."""

    dut = Classifier(config)
    return generate(dut, name, out_dir, dut.params(), formats=config.formats)


DEFAULT_SHAPE = {"features": 3630, "hidden": 1500, "classes": 47, "lanes": 64}
"""``spykehw verilog classifier`` without options: the EMNIST-47 classifier at 64 lanes."""
