"""W2 rows over an AXI4 read master: the classifier's row port served from external memory.

Why so little logic: the classifier's row port (:mod:`spykehw.rtl.weight_memory`) already is a
request stream of row indices and an in-order stream of ``G`` words per row, which is what one
AXI4 INCR burst per row gives when the data bus is one row word wide. Every accepted request is
an AR transfer at once, so as many bursts are outstanding as the classifier has rows requested
and the memory accepts (the classifier requests a row per active feature as the indices arrive):
memory latency is hidden behind the bursts in flight. All bursts use ID 0, so the data returns in
request order, as the row port requires.

Memory layout: row ``r`` at ``base + r * stride``, ``stride`` the row's bytes rounded up to a
power of two (at most 4 KiB, so no burst crosses a 4 KiB boundary, as AXI forbids); word ``g`` of
a row at ``+ g * word_bits / 8``, lane ``l`` in bits ``l*B .. l*B+B-1`` (little-endian).

A beat answered with ``rresp != OKAY`` raises ``error`` for a cycle; its data is used as it is
(the accelerator flags every later result, see :mod:`spykehw.rtl.accelerator`).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .axi import RESP_OKAY, AxiReadMasterSignature
from .packing import w2_row_stride
from .weight_memory import RowPortSignature

__all__ = ["ADDR_BITS", "check_row_layout", "W2AxiReader"]

ADDR_BITS = 32
BURST_INCR = 0b01


def check_row_layout(words_per_row: int, word_bits: int) -> int:
    """The row stride, or ``ValueError`` when a row cannot be one AXI4 burst of whole beats."""
    if word_bits < 8 or word_bits & (word_bits - 1) or word_bits > 1024:
        raise ValueError(f"the W2 word ({word_bits} bits) must be a power of two of 8 .. 1024 bits "
                         "to be one AXI4 beat")
    if not 1 <= words_per_row <= 256:
        raise ValueError(f"a W2 row of {words_per_row} words does not fit one AXI4 burst (<= 256 beats)")
    stride = w2_row_stride(words_per_row, word_bits)
    if stride > 4096:
        raise ValueError(f"a W2 row of {words_per_row * word_bits // 8} bytes would cross a 4 KiB "
                         "boundary in one burst")
    return stride


class W2AxiReader(wiring.Component):
    """See the module docstring.

    Members
    -------
    port : In(RowPortSignature(rows, word_bits))
        The classifier's ``w2`` port (requests in, words out).
    m_axi : Out(AxiReadMasterSignature(32, word_bits, 1))
    base : In(32)
        Byte address of row 0 (the ``W2_BASE`` register).
    error : Out(1)
        An R beat with an error response was taken this cycle.
    """

    def __init__(self, rows: int, words_per_row: int, word_bits: int) -> None:
        stride = check_row_layout(words_per_row, word_bits)
        self._rows, self._words, self._bits, self._stride = rows, words_per_row, word_bits, stride
        super().__init__({
            "port": In(RowPortSignature(rows, word_bits)),
            "m_axi": Out(AxiReadMasterSignature(ADDR_BITS, word_bits, 1)),
            "base": In(ADDR_BITS),
            "error": Out(1),
        })

    @property
    def stride(self) -> int:
        return self._stride

    def elaborate(self, platform):
        m = Module()
        req, resp, ax = self.port.req, self.port.resp, self.m_axi
        offset = Signal(ADDR_BITS)
        m.d.comb += [
            offset.eq(req.payload << exact_log2(self._stride)),
            ax.araddr.eq(self.base + offset),
            ax.arlen.eq(self._words - 1),
            ax.arsize.eq(exact_log2(self._bits // 8)),
            ax.arburst.eq(BURST_INCR),
            ax.arid.eq(0),
            ax.arvalid.eq(req.valid),
            req.ready.eq(ax.arready),
            resp.payload.eq(ax.rdata),
            resp.valid.eq(ax.rvalid),
            ax.rready.eq(resp.ready),
            self.error.eq(ax.rvalid & ax.rready & (ax.rresp != RESP_OKAY)),
        ]
        return m
