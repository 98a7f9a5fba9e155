"""The result formatter: the classifier's softmax stream and the image's error flags -> AXI4-Stream.

Why a header beat: the host needs the class and whether the image was well formed before it
reads the words, and a sequence number lets it notice a lost frame. One frame per image, ``C + 1``
beats of 32 bits, ``tlast`` on the last:

beat 0 (header)
    ``[15:0]`` class (argmax of the logits, lowest index on ties), or ``0xFFFF`` when the image's
    event frame was malformed; ``[23:16]`` the image's error flags
    (:class:`~spykehw.rtl.event_checker.ErrorFlag`, 0 = none); ``[31:24]`` sequence number (images
    since reset, modulo 256).
beat 1 + k, k = 0 .. C-1
    ``[15:0]`` the softmax word of class ``k`` (UQ0.P, zero-extended); ``[31:16]`` ``k``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AxiStreamSignature
from .event_checker import ERROR_BITS
from .softmax import softmax_output_layout

__all__ = ["RESULT_BEAT_BITS", "NO_CLASS", "ResultFormatter"]

RESULT_BEAT_BITS = 32
NO_CLASS = 0xFFFF


class ResultFormatter(wiring.Component):
    """See the module docstring.

    Members
    -------
    i_result : In(stream.Signature(softmax_output_layout(C, P)))
        The classifier's ``o_stream``: ``C`` transfers per image.
    i_flags : In(stream.Signature(ERROR_BITS))
        One transfer per image, in image order (from the event checker, through a FIFO).
    m_axis : Out(AxiStreamSignature(32))
    done : Out(1)
        A frame's last beat was taken this cycle.
    """

    def __init__(self, classes: int, softmax_bits: int) -> None:
        if softmax_bits > 16 or classes > NO_CLASS:
            raise ValueError(f"the result beat holds softmax words up to 16 bits and up to {NO_CLASS} "
                             f"classes, not {softmax_bits} bits / {classes} classes")
        self._C, self._P = classes, softmax_bits
        super().__init__({
            "i_result": In(stream.Signature(softmax_output_layout(classes, softmax_bits))),
            "i_flags": In(stream.Signature(ERROR_BITS)),
            "m_axis": Out(AxiStreamSignature(RESULT_BEAT_BITS)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        res, flags, ax = self.i_result, self.i_flags, self.m_axis
        k = Signal(16)
        seq = Signal(8)
        cls = Signal(16)
        m.d.comb += cls.eq(Mux(flags.payload.any(), NO_CLASS, res.payload.argmax))
        with m.FSM(name="result_fsm"):
            with m.State("HEAD"):
                m.d.comb += [
                    ax.tvalid.eq(res.valid & flags.valid),
                    ax.tdata.eq(Cat(cls, flags.payload, seq)),
                    flags.ready.eq(ax.tready & res.valid),
                ]
                with m.If(ax.tvalid & ax.tready):
                    m.d.sync += k.eq(0)
                    m.next = "WORDS"
            with m.State("WORDS"):
                m.d.comb += [
                    ax.tvalid.eq(res.valid),
                    ax.tdata.eq(Cat(res.payload.word, Const(0, 16 - self._P), k)),
                    ax.tlast.eq(res.payload.last),
                    res.ready.eq(ax.tready),
                ]
                with m.If(ax.tvalid & ax.tready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(res.payload.last):
                        m.d.comb += self.done.eq(1)
                        m.d.sync += seq.eq(seq + 1)
                        m.next = "HEAD"
        return m
