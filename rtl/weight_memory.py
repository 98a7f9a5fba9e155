"""The row-fetch memory port of the classifier, and an on-chip memory that serves it.

Port protocol (``RowPortSignature``, seen from the requester, i.e. the classifier)
-----------------------------------------------------------------------------------
``req``
    A stream of row indices ``0 .. rows-1``. One transfer asks for one whole row.
``resp``
    The words of the requested rows, in request order, ``words_per_row`` transfers per row,
    word ``0`` first; a word is ``word_bits`` wide. There is no ``last`` flag: the requester
    counts words (every row has the same length).

Both are ordinary valid/ready streams, so the memory may stall requests (``req.ready`` low)
and insert gaps between response words (``resp.valid`` low) for any number of cycles; the
requester may stall responses (``resp.ready`` low). Nothing else is assumed: no latency bound,
no minimum throughput.

:class:`RowMemory` implements the protocol with one synchronous memory of
``rows * words_per_row`` words (word ``r * words_per_row + k`` is word ``k`` of row ``r``): a
request is taken when no row is being read or on the cycle the last word of the current row is
read, so back-to-back rows stream at one word per cycle; the first word of a row is valid two
cycles after its request was accepted (one cycle to register the row, one read cycle). It is
loaded through a plain write port (``WriteBusSignature``). The classifier instantiates it when
``W2`` is kept on chip; the simulation memory model (:mod:`spykehw.sim.framework.memory_model`) wraps it
with latency and back-pressure.
"""

from __future__ import annotations

import operator
from typing import Sequence

from amaranth import Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import index_bits

__all__ = ["RowPortSignature", "WriteBusSignature", "RowMemory", "lane_init", "memory_storage", "add_row_memory"]


class RowPortSignature(wiring.Signature):
    """The memory port (see the module docstring) from the requester's side: ``req`` goes out,
    ``resp`` comes in. The requester has ``Out(RowPortSignature(...))``, the memory
    ``In(RowPortSignature(...))``."""

    def __init__(self, rows: int, word_bits: int) -> None:
        self._rows = rows
        self._word_bits = word_bits
        super().__init__({
            "req": Out(stream.Signature(unsigned(index_bits(rows)))),
            "resp": In(stream.Signature(unsigned(word_bits))),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other._rows == self._rows
                and other._word_bits == self._word_bits)

    def __repr__(self):
        return f"RowPortSignature(rows={self._rows}, word_bits={self._word_bits})"


class WriteBusSignature(wiring.Signature):
    """A plain write port, driven by the host: ``addr``, ``data``, ``en`` (writes always succeed,
    one per cycle); with ``select`` (a shape, e.g. an enum of targets) also ``sel``, which says
    which memory behind the port the write is for."""

    def __init__(self, depth: int, data_bits: int, *, select=None) -> None:
        self._key = (depth, data_bits, select)
        members = {} if select is None else {"sel": Out(select)}
        super().__init__({
            **members,
            "addr": Out(range(max(2, depth))),
            "data": Out(data_bits),
            "en": Out(1),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other._key == self._key

    def __repr__(self):
        depth, data_bits, select = self._key
        sel = "" if select is None else f", select={getattr(select, '__name__', select)}"
        return f"{type(self).__name__}(depth={depth}, data_bits={data_bits}{sel})"


def lane_init(words: Sequence[int] | None, lane: int, bits: int, *, signed: bool = False) -> list[int]:
    """Lane ``lane`` (bits ``lane*bits ..``) of each packed word: a lane memory's initial
    contents (two's complement read back as negative values when ``signed``)."""
    out = []
    for w in words or ():
        v = (int(w) >> (lane * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if signed and v >> (bits - 1) else v)
    return out


def memory_storage(m: Module, name: str, width: int, depth: int, init: Sequence[int] = ()):
    """``(write_port, read_port)`` of a new ``lib.memory.Memory`` (synchronous read, holding
    its data while ``en`` is low, holding ``init`` after configuration): the storage
    :func:`add_row_memory` uses by default."""
    mem = memory.Memory(shape=unsigned(width), depth=depth, init=list(init))
    m.submodules[name] = mem
    return mem.write_port(), mem.read_port()


class RowMemory(wiring.Component):
    """On-chip row store answering the row-fetch protocol.

    Parameters
    ----------
    rows, words_per_row, word_bits : int
        ``rows * words_per_row`` words of ``word_bits`` bits.
    storage : callable
        Makes the storage (see :func:`add_row_memory`); a ``lib.memory.Memory`` by default.

    Members
    -------
    port : In(RowPortSignature(rows, word_bits))
        ``port.req`` (row index, in), ``port.resp`` (words, out).
    write : In(WriteBusSignature(rows * words_per_row, word_bits))
        Loads word ``addr``; do not load while rows are being read.
    """

    def __init__(self, *, rows: int, words_per_row: int, word_bits: int, storage=memory_storage) -> None:
        rows, words_per_row, word_bits = (operator.index(v) for v in (rows, words_per_row, word_bits))
        for name, v in (("rows", rows), ("words_per_row", words_per_row), ("word_bits", word_bits)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, not {v}")
        self._rows, self._words, self._bits = rows, words_per_row, word_bits
        self._storage = storage
        super().__init__({
            "port": In(RowPortSignature(rows, word_bits)),
            "write": In(WriteBusSignature(rows * words_per_row, word_bits)),
        })

    @property
    def depth(self) -> int:
        return self._rows * self._words

    def elaborate(self, platform):
        m = Module()
        add_row_memory(m, self.port, self.write, rows=self._rows, words_per_row=self._words,
                       word_bits=self._bits, storage=self._storage)
        return m


def add_row_memory(m: Module, port, write, *, rows: int, words_per_row: int, word_bits: int,
                   name: str = "row_mem", storage=memory_storage, init: Sequence[int] = ()) -> None:
    """Add the logic of a :class:`RowMemory` to ``m``, serving ``port`` (the memory's side of a
    :class:`RowPortSignature` interface) and loaded through ``write``.

    The classifier uses this to keep ``W2`` on chip without a level of hierarchy (a flat
    Verilog module). ``storage(m, name, width, depth, init)`` makes the words' storage and returns a
    write port (``addr``, ``data``, ``en``) and a synchronous read port (``addr``, ``en``,
    ``data``, holding its data while ``en`` is low); the simulation memory model replaces it.
    """
    G = words_per_row
    depth = rows * G
    req, resp = port.req, port.resp

    wr, rd = storage(m, name, word_bits, max(2, depth), init)     # (2 words: a 1-bit address)

    addr = Signal(range(max(2, depth)), name=f"{name}_addr")    # the next word to read
    busy = Signal(name=f"{name}_busy")                          # words of a row are left
    stall = Signal(name=f"{name}_stall")
    issue = Signal(name=f"{name}_issue")
    if G > 1:
        word = Signal(range(G), name=f"{name}_word")
        last_word = Signal(name=f"{name}_last_word")
        m.d.comb += last_word.eq(word == G - 1)
    else:
        last_word = 1       # every word is a row's last
    m.d.comb += [
        stall.eq(resp.valid & ~resp.ready),
        issue.eq(busy & ~stall),
        req.ready.eq(~busy | (issue & last_word)),
        rd.addr.eq(addr),
        rd.en.eq(issue),
        resp.payload.eq(rd.data),
        wr.addr.eq(write.addr),
        wr.data.eq(write.data),
        wr.en.eq(write.en),
    ]
    with m.If(~stall):
        m.d.sync += resp.valid.eq(issue)
    with m.If(issue):
        m.d.sync += addr.eq(addr + 1)
        if G > 1:
            m.d.sync += word.eq(word + 1)
        if G > 1:
            with m.If(last_word):
                m.d.sync += [busy.eq(0), word.eq(0)]
        else:
            m.d.sync += busy.eq(0)
    with m.If(req.valid & req.ready):
        m.d.sync += [busy.eq(1), addr.eq(req.payload * G if G > 1 else req.payload)]
        if G > 1:
            m.d.sync += word.eq(0)
