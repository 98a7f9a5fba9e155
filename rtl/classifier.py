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
   read-modify-write: read, add one cycle later and write back; with ``G >= 2`` the next read
   of a word comes after its write, so the read need not be transparent; with ``G = 1`` a
   register instead); during an image's first row the bias word is
   read instead of the accumulator, so nothing is ever cleared. After the marker and the last response, a scan of ``G`` cycles writes the hidden
   bits (``L`` per cycle, padding lanes 0) into one bank of a double-buffered bit memory and
   the ``o_hidden`` tap.
B. **Output layer**: takes a full bank, loads ``b3`` into ``C`` output accumulators (registers)
   and, for each set hidden bit (a priority encoder over one ``L``-bit word, lowest bit first;
   a word costs ``max(1, its set bits)`` cycles), reads that unit's ``W3`` row (one memory of
   ``H`` words per class, all read at once) and adds all ``C`` weights in one cycle. It is a
   pipeline (the unit picked, the row read, the row registered, the sum), so a unit is added
   three cycles after it is picked, still at one unit per cycle. Then it streams the ``C``
   logits (``acc3 >> frac``) to the softmax.
C. **Softmax** (:class:`SoftmaxUnit`): class and words, ``C * (softmax_bits + 3) + 2`` cycles.

Components: :class:`~spykehw.rtl.classifier_layers.HiddenLayer` (A, submodule ``hidden``),
:class:`~spykehw.rtl.classifier_layers.OutputLayer` (B, ``output``) and the
:class:`SoftmaxUnit` (C, ``softmax``); the classifier itself holds the hidden bits' memory and
the banks' *full* flags, and (with ``w2_on_chip``) ``W2``. :class:`ClassifierConfig` and the bus
signatures are in :mod:`spykehw.rtl.classifier_config` (re-exported here).

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

from typing import Any, Mapping, Sequence

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .classifier_config import (
    ClassifierConfig,
    ClassifierError,
    LoadBusSignature,
    LoadTarget,
    TapSignature,
    hidden_tap_layout,
    logit_tap_layout,
)
from .classifier_layers import HiddenLayer, OutputLayer
from .layouts import feature_layout
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


def _check_init(cfg: ClassifierConfig, init: Mapping) -> dict[LoadTarget, tuple[int, ...]]:
    out = {}
    for key, words in init.items():
        target = LoadTarget[key] if isinstance(key, str) else LoadTarget(key)
        if target not in cfg.load_targets():
            raise ValueError(f"init: {target.name} is not loaded on chip at this configuration")
        if len(words) != cfg.load_depth(target):
            raise ValueError(f"init: {target.name} has {len(words)} words, the memory holds {cfg.load_depth(target)}")
        bits = cfg.load_word_bits(target)
        if any(not 0 <= int(w) < 1 << bits for w in words):
            raise ValueError(f"init: a {target.name} word does not fit {bits} bits")
        out[target] = tuple(int(w) for w in words)
    return out


class Classifier(wiring.Component):
    """The classifier (see the module docstring).

    Parameters
    ----------
    config : ClassifierConfig
    init : mapping of LoadTarget to sequence of int, optional
        The memories' contents after configuration, as the load bus's words by address (an
        export's ``W2`` (on chip), ``b2``, ``W3``, ``b3``); a missing target starts at zero and
        is loaded over the bus.

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

    def __init__(self, config: ClassifierConfig, *, init: Mapping[str, Sequence[int]] | None = None) -> None:
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, not {config!r}")
        self._cfg = config
        self._init = _check_init(config, init or {})
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
        G = cfg.groups
        init = self._init
        m.submodules.hidden = hid = HiddenLayer(cfg, b2_init=init.get(LoadTarget.B2, ()))
        m.submodules.output = out = OutputLayer(cfg, w3_init=init.get(LoadTarget.W3, ()),
                                                b3_init=init.get(LoadTarget.B3, ()))
        m.submodules.softmax = sm = SoftmaxUnit(classes=cfg.classes, logit_bits=cfg.logit_bits,
                                                softmax_format=cfg.formats.softmax)
        wiring.connect(m, wiring.flipped(self.i_features), hid.i_features)
        ld = self.load
        for target, load in ((LoadTarget.B2, hid.b2_load), (LoadTarget.W3, out.w3_load),
                             (LoadTarget.B3, out.b3_load)):
            m.d.comb += [load.data.eq(ld.data[:len(load.data)]), load.en.eq(ld.en & (ld.sel == target))]
            if target is not LoadTarget.B3:         # (one word: no address)
                m.d.comb += load.addr.eq(ld.addr)
        wiring.connect(m, hid.o_hidden, wiring.flipped(self.o_hidden))
        wiring.connect(m, out.o_logits, wiring.flipped(self.o_logits))
        wiring.connect(m, out.logits, sm.i_stream)
        wiring.connect(m, sm.o_stream, wiring.flipped(self.o_stream))

        # ----- W2: the memory port, or an on-chip row memory behind the same protocol ----------
        if cfg.w2_on_chip:
            # The same protocol, served inside this module (no level of hierarchy).
            w2_write = WriteBusSignature(cfg.load_depth(LoadTarget.W2), cfg.w2_word_bits).create(
                path=("w2_load",))
            m.d.comb += [
                w2_write.addr.eq(self.load.addr),
                w2_write.data.eq(self.load.data[:cfg.w2_word_bits]),
                w2_write.en.eq(self.load.en & (self.load.sel == LoadTarget.W2)),
            ]
            add_row_memory(m, wiring.flipped(hid.w2), w2_write, rows=cfg.features, words_per_row=G,
                           word_bits=cfg.w2_word_bits, name="w2_mem", init=init.get(LoadTarget.W2, ()))
        else:
            wiring.connect(m, hid.w2, wiring.flipped(self.w2))

        # ----- hidden bits: two banks of G words; stage A fills one while stage B reads the other
        m.submodules.hidden_bits = hb_mem = memory.Memory(shape=unsigned(cfg.lanes), depth=2 * G, init=[])
        hb_wr = hb_mem.write_port()
        hb_rd = hb_mem.read_port(domain="comb")     # (stage B's address is a register)
        full = Signal(2)            # bank holds an image's bits not yet taken by stage B
        m.d.comb += [
            hb_wr.addr.eq(hid.hb_wr.addr), hb_wr.data.eq(hid.hb_wr.data), hb_wr.en.eq(hid.hb_wr.en),
            hb_rd.addr.eq(out.hb_rd.addr), out.hb_rd.data.eq(hb_rd.data),
            hid.bank_full.eq(Mux(hid.bank, full[1], full[0])),
            out.bank_full.eq(Mux(out.bank, full[1], full[0])),
        ]
        full_set = Signal(2)
        full_clr = Signal(2)
        m.d.comb += [full_set.eq(Mux(hid.handoff, Mux(hid.bank, 0b10, 0b01), 0)),
                     full_clr.eq(Mux(out.release, Mux(out.bank, 0b10, 0b01), 0))]
        m.d.sync += full.eq((full | full_set) & ~full_clr)
        m.d.comb += self.idle.eq(hid.idle & out.idle & (full == 0))
        return m


def generate_classifier(config: ClassifierConfig, out_dir, *, name: str = "classifier"):
    """Write ``<name>.v``, ``.il`` and ``.json`` (:func:`spykehw.rtl.verilog.generate`)."""

    dut = Classifier(config)
    return generate(dut, name, out_dir, dut.params(), formats=config.formats)


DEFAULT_SHAPE = {"features": 3630, "hidden": 1500, "classes": 47, "lanes": 64}
"""``spykehw verilog classifier`` without options: the EMNIST-47 classifier at 64 lanes."""
