"""Integer softmax and argmax of one image's logits, bit-exact with the golden ``softmax_int``.

The unit computes exactly what :func:`spykehw.golden.softmax_int.softmax_int` defines (see the
``Softmax`` entry of :mod:`spykehw.golden.formats`): ``d = max(z) - z``;
``e = EXP_LUT[d]`` if ``d < exp_lut_entries`` else 0; ``S = sum(e)``;
``word = min(2**softmax_bits - 1, (e << softmax_bits) // S)``; the class is the argmax of the
logits, lowest index on ties. The table comes from :mod:`spykehw.golden.exp_lut`, the one source
shared with the model.

Stream protocol
---------------
``i_stream``: one signed logit per transfer, classes ``0 .. C-1`` in order; an image is exactly
``C`` transfers (counted, no ``last`` flag), and the next image may follow at once.
``o_stream``: ``C`` transfers per image, the softmax word of class ``0 .. C-1`` in order; every
transfer also carries ``argmax`` (the image's class) and ``last`` is 1 on the final one.

Schedule (one image, partners never stall): ``C`` cycles to load the logits into a ``C``-word
memory while tracking the maximum, ``C + 1`` cycles to sum the exps (each exp is registered
before it is added: the table look-up and the adder would not fit one clock cycle at 100 MHz on
an ECP5), one cycle to load the divider for class 0, then per class ``softmax_bits``
restoring-division steps and one output cycle whose handshake also loads the divider for the
next class: ``C * (softmax_bits + 3) + 2`` cycles (:attr:`SoftmaxUnit.cycles_per_image`). Area is kept small on purpose: one subtractor serves
every division step, the logits sit in a memory rather than in registers, and the exps are looked
up again instead of being stored.

Why the divider needs only ``softmax_bits`` steps: ``e <= S``, so the quotient
``(e << P) // S`` is at most ``2**P``, reached only when ``e == S`` (one class holds all the
mass), which is exactly when the word saturates to ``2**P - 1``. The load cycle compares ``e``
with ``S`` once (the saturation bit); the ``P`` steps then produce the ``P`` quotient bits of
``((e mod S) << P) // S``, which is 0 in the saturated case.
"""

from __future__ import annotations

import operator

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..golden.exp_lut import exp_lut
from ..golden.formats import SoftmaxFormat

__all__ = ["SoftmaxUnit", "softmax_output_layout"]

MAX_CLASSES = 4096
MAX_LOGIT_BITS = 64


def softmax_output_layout(classes: int, softmax_bits: int) -> data.StructLayout:
    """Payload of ``o_stream``: ``word`` (UQ0.P), ``argmax`` (class index), ``last`` (1 bit).

    The first field sits in the least significant bits of the flat Verilog port.
    """
    return data.StructLayout({
        "word": unsigned(softmax_bits),
        "argmax": unsigned(_index_bits(classes)),
        "last": unsigned(1),
    })


def _index_bits(classes: int) -> int:
    return max(1, ceil_log2(classes))


class SoftmaxUnit(wiring.Component):
    """Sequential integer softmax + argmax over the ``C`` logits of one image.

    Parameters
    ----------
    classes : int
        ``C``, the number of logits per image (2 .. 4096).
    logit_bits : int
        Width of a signed two's complement logit (2 .. 64).
    softmax_format : SoftmaxFormat
        ``exp_lut_entries``, ``exp_lut_bits`` and ``softmax_bits`` of the number-format config
        (``NumberFormats.softmax``).

    Members
    -------
    i_stream : In(stream.Signature(signed(logit_bits)))
        Logits, class 0 first, ``C`` transfers per image.
    o_stream : Out(stream.Signature(softmax_output_layout(classes, softmax_bits)))
        Softmax words, class 0 first, ``C`` transfers per image; ``argmax`` on every transfer,
        ``last`` on the final one.

    Raises
    ------
    TypeError, ValueError
        On a parameter of the wrong type or out of range.
    """

    def __init__(self, *, classes: int, logit_bits: int, softmax_format: SoftmaxFormat) -> None:
        classes = operator.index(classes)
        logit_bits = operator.index(logit_bits)
        if not 2 <= classes <= MAX_CLASSES:
            raise ValueError(f"classes must be in 2..{MAX_CLASSES}, not {classes}")
        if not 2 <= logit_bits <= MAX_LOGIT_BITS:
            raise ValueError(f"logit_bits must be in 2..{MAX_LOGIT_BITS}, not {logit_bits}")
        if not isinstance(softmax_format, SoftmaxFormat):
            raise TypeError(f"softmax_format must be a SoftmaxFormat, not {softmax_format!r}")
        self._classes = classes
        self._logit_bits = logit_bits
        self._format = softmax_format
        self._lut = tuple(int(v) for v in exp_lut(softmax_format))
        super().__init__({
            "i_stream": In(stream.Signature(signed(logit_bits))),
            "o_stream": Out(stream.Signature(softmax_output_layout(classes, softmax_format.softmax_bits))),
        })

    # --- parameters and derived widths ----------------------------------------------------

    @property
    def classes(self) -> int:
        return self._classes

    @property
    def logit_bits(self) -> int:
        return self._logit_bits

    @property
    def softmax_format(self) -> SoftmaxFormat:
        return self._format

    @property
    def sum_bits(self) -> int:
        """Width of ``S``: its worst case is every logit equal, ``C * EXP_LUT[0]``."""
        return (self._classes * self._lut[0]).bit_length()

    @property
    def cycles_per_image(self) -> int:
        """Cycles from the first logit accepted to the last word sent, partners never stalling;
        also the initiation interval between images."""
        return self._classes * (self._format.softmax_bits + 3) + 2

    def params(self) -> dict:
        """The generator parameters, for the JSON beside the generated Verilog."""
        return {"classes": self._classes, "logit_bits": self._logit_bits,
                "softmax_format": {"exp_lut_entries": self._format.exp_lut_entries,
                                   "exp_lut_bits": self._format.exp_lut_bits,
                                   "softmax_bits": self._format.softmax_bits},
                "cycles_per_image": self.cycles_per_image}

    # --- hardware ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        C, L = self._classes, self._logit_bits
        P = self._format.softmax_bits
        E = self._format.exp_lut_entries
        SW = self.sum_bits
        i_s, o_s = self.i_stream, self.o_stream

        # Logits of the current image; written while loading, read back twice.
        m.submodules.logits = logits = memory.Memory(shape=signed(L), depth=C, init=[])
        wr = logits.write_port()
        rd = logits.read_port()  # 1-cycle latency: the address is always the *next* class
        # The exp table, read combinationally (E small: distributed RAM / LUTs).
        m.submodules.exp_lut = lut = memory.Memory(shape=unsigned(self._format.exp_lut_bits),
                                                   depth=E, init=self._lut)
        lut_rd = lut.read_port(domain="comb")

        cnt = Signal(range(C))          # input index while loading, class index afterwards
        z_max = Signal(signed(L))
        argmax = Signal(range(C))
        total = Signal(SW)              # S
        rem = Signal(SW)                # division remainder, always < S
        quo = Signal(P + 1)             # quotient bits below a one-hot marker that ends the steps
        sat = Signal()                  # e == S: the word saturates to 2**P - 1

        # Named once so that the Verilog has one comparator/incrementer, not one per use.
        last = Signal()
        nxt = Signal(range(C))
        m.d.comb += [last.eq(cnt == C - 1), nxt.eq(Mux(last, 0, cnt + 1))]

        # e for the logit on the read port: d = max - z is in 0 .. 2**L - 1.
        d = Signal(L)
        m.d.comb += d.eq(z_max - rd.data)
        m.d.comb += lut_rd.addr.eq(d)
        e = Signal(SW)
        if E > (1 << L) - 1:
            m.d.comb += e.eq(lut_rd.data)                   # every possible d has an entry
        else:
            m.d.comb += e.eq(Mux(d < E, lut_rd.data, 0))    # beyond the table, e = 0

        # e registered: the sum adds it, and the divider loads it, one cycle after the logit is
        # on the read port (the subtraction d, the table and an adder in one cycle are too slow).
        e_q = Signal(self._format.exp_lut_bits)     # (e is a table entry or 0)
        m.d.sync += e_q.eq(e)
        # The divider loads e_q, or, with one division step per class, e itself: then the next
        # class's logit is on the read port only one cycle before its load (see OUT below).
        e_div = e_q if P >= 2 else e

        # The single subtractor of the divider: operand - S, either e (load) or 2 * rem (step).
        load = Signal()
        operand = Signal(SW + 1)
        m.d.comb += operand.eq(Mux(load, e_div, Cat(0, rem)))
        # operand < 2S (e <= S; rem < S) so |operand - S| < S < 2**SW: SW + 1 bits hold the
        # difference and bit SW is its sign.
        diff_low = Signal(SW)
        diff_neg = Signal()
        m.d.comb += Cat(diff_low, diff_neg).eq(operand - total)
        ge = Signal()
        m.d.comb += ge.eq(~diff_neg)
        remainder = Signal(SW)
        m.d.comb += remainder.eq(Mux(ge, diff_low, operand[:SW]))

        m.d.comb += [
            wr.addr.eq(cnt),
            wr.data.eq(i_s.payload),
            o_s.payload.word.eq(quo[:P] | sat.replicate(P)),
            o_s.payload.argmax.eq(argmax),
            o_s.payload.last.eq(last),
        ]

        def load_divider():
            m.d.comb += load.eq(1)
            m.d.sync += [rem.eq(remainder), sat.eq(ge), quo.eq(1)]

        with m.FSM(init="LOAD"):
            with m.State("LOAD"):
                m.d.comb += [i_s.ready.eq(1), wr.en.eq(i_s.valid), rd.addr.eq(0)]
                with m.If(i_s.valid):
                    # Strictly greater: the lowest index wins a tie.
                    with m.If((cnt == 0) | (i_s.payload > z_max)):
                        m.d.sync += [z_max.eq(i_s.payload), argmax.eq(cnt)]
                    m.d.sync += cnt.eq(nxt)
                    with m.If(last):
                        m.next = "SUM"
            with m.State("SUM"):
                # rd.data holds z[cnt]: address 0 was presented during LOAD; e_q holds e of
                # z[cnt - 1] (nothing to add at cnt = 0).
                m.d.comb += rd.addr.eq(nxt)
                m.d.sync += [total.eq(Mux(cnt == 0, 0, total + e_q)), cnt.eq(nxt)]
                with m.If(last):
                    m.next = "SUM_LAST"
            with m.State("SUM_LAST"):
                # e_q holds e of z[C - 1]; z[0] stays on the read port, so that e_q holds its
                # e when the divider loads it.
                m.d.comb += rd.addr.eq(cnt)
                m.d.sync += total.eq(total + e_q)
                m.next = "DIV_LOAD"
            with m.State("DIV_LOAD"):
                m.d.comb += rd.addr.eq(nxt)
                load_divider()
                m.next = "DIV_STEP"
            with m.State("DIV_STEP"):
                m.d.comb += rd.addr.eq(nxt)
                m.d.sync += [rem.eq(remainder), quo.eq(Cat(ge, quo[:P]))]
                with m.If(quo[P - 1]):
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [rd.addr.eq(nxt), o_s.valid.eq(1)]
                with m.If(o_s.ready):
                    m.d.sync += cnt.eq(nxt)
                    with m.If(last):
                        m.next = "LOAD"
                    with m.Else():
                        # rd.data already holds z[cnt + 1] (presented since the first
                        # division step), and e_q its e (with at least two steps): load the
                        # next class's divider on the very edge that hands this word over.
                        load_divider()
                        m.next = "DIV_STEP"
        return m
