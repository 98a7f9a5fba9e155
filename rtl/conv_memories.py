"""Memories of the conv core's UP5K configuration (``ConvCoreConfig(potential_memory="spram")``):
the single-port potential RAM and the per-position flags kept in block RAM.

:class:`SinglePortRam`
    ``depth`` words of ``width`` bits behind one address: the iCE40 UltraPlus ``SB_SPRAM256KA``
    (16K x 16 bits per block; ``ceil(width / 16)`` blocks side by side), or its behavioural model
    for the simulators (the Amaranth simulator, Verilator and Icarus have no model of the
    primitive). Both behave as the primitive does (Yosys' ``ice40/cells_sim.v``): a cycle with
    ``we`` writes ``wdata`` at ``addr``; a cycle with ``re`` and not ``we`` reads, the word is
    on ``rdata`` in the next cycle and stays there until the next read or write; after a
    write ``rdata`` is undefined (the model shows all ones there, so a design that relied on
    it would fail its tests). The contents after configuration are undefined too (the model
    starts from a pattern, not zeros).
:class:`FlagMemory`
    ``rows x cols`` one-bit flags as a block RAM of ``rows`` words of ``cols`` bits with
    bit-granular writes: set one flag in a cycle, read whole rows synchronously (one read port
    per row read; Yosys gives each its own copy of the block RAM), cleared by a sweep that
    writes one row per cycle (``rows`` cycles).

Why the UP5K needs them: the block-RAM potentials of Conv1 at ``fpga-16`` (349 Kbit) are three
times the UP5K's 30 blocks of 4 Kbit, while its four 256 Kbit SPRAMs hold them; and the
flip-flop flag grids (``H*H`` flags each, with their multiplexers) take more LUTs than the
device has.
"""

from __future__ import annotations

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import decode, flag_members, member_or_zero
from .layouts import index_bits

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "spram_blocks", "SinglePortRam", "FlagMemory"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


def spram_blocks(depth: int, width: int) -> int:
    """``SB_SPRAM256KA`` blocks of one :class:`SinglePortRam` (only the width is split)."""
    if depth > SPRAM_DEPTH:
        raise ValueError(f"depth: an SPRAM holds {SPRAM_DEPTH} words, not {depth}")
    return -(-width // SPRAM_WIDTH)


def _model_init(depth: int, width: int) -> list[int]:
    # Not zeros: the core must never read a potential it has not written in this image.
    return [(a * 0x9E3779B1 >> 7) & ((1 << width) - 1) for a in range(depth)]


class SinglePortRam(wiring.Component):
    """Single-port RAM (see the module docstring).

    Parameters
    ----------
    depth, width : int
    primitive : bool
        Instantiate ``SB_SPRAM256KA`` (synthesis for the iCE40 UltraPlus) rather than the
        behavioural model (simulation).

    Members
    -------
    addr : In(index_bits(depth)); we : In(1); wdata : In(width); re : In(1)
    rdata : Out(width)
    """

    def __init__(self, *, depth: int, width: int, primitive: bool = False) -> None:
        self._depth, self._width, self._primitive = depth, width, bool(primitive)
        self._blocks = spram_blocks(depth, width)
        super().__init__({"addr": In(index_bits(depth)), "we": In(1), "wdata": In(width),
                          "re": In(1), "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if self._primitive:
            data = Signal(self._blocks * SPRAM_WIDTH)
            wdata = Signal(self._blocks * SPRAM_WIDTH)
            addr = Signal(14)
            m.d.comb += [wdata.eq(self.wdata), addr.eq(self.addr), self.rdata.eq(data)]
            for k in range(self._blocks):
                m.submodules[f"spram{k}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr, i_DATAIN=wdata.word_select(k, SPRAM_WIDTH),
                    i_MASKWREN=Const(0b1111, 4), i_WREN=self.we, i_CHIPSELECT=self.we | self.re,
                    i_CLOCK=ClockSignal(), i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1),
                    i_POWEROFF=Const(1, 1),
                    o_DATAOUT=data.word_select(k, SPRAM_WIDTH))
            return m
        m.submodules.mem = mem = memory.Memory(shape=self._width, depth=self._depth,
                                               init=_model_init(self._depth, self._width))
        wp = mem.write_port()
        rp = mem.read_port()
        wrote = Signal()        # the last access was a write: DATAOUT is undefined
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.addr), rp.en.eq(self.re & ~self.we),
                     self.rdata.eq(Mux(wrote, Const(-1, self._width), rp.data))]
        with m.If(self.we):
            m.d.sync += wrote.eq(1)
        with m.Elif(self.re):
            m.d.sync += wrote.eq(0)
        return m


class FlagMemory(wiring.Component):
    """``rows x cols`` flags in block RAM (see the module docstring).

    Members
    -------
    set_en : In(1); set_row : In(index_bits(rows)) (absent for one row); set_col : In(index_bits(cols))
        Set one flag (not while ``busy``).
    clear : In(1)
        Start the sweep: every flag reads 0 once ``busy`` is low again (``rows`` cycles).
    busy : Out(1)
        The sweep runs (no set, no read).
    row{k}_en : In(1); row{k}_idx : In (absent for one row); row{k} : Out(cols)
        Read port ``k``: the row ``row{k}_idx`` of a cycle with ``row{k}_en`` is on ``row{k}``
        in the next cycle and stays there until the next read.
    """

    def __init__(self, *, rows: int, cols: int, row_reads: int) -> None:
        self._rows, self._cols, self._reads = rows, cols, row_reads
        super().__init__({**flag_members(rows=rows, cols=cols, row_reads=row_reads, read_enables=True),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols
        m.submodules.mem = mem = memory.Memory(shape=cols, depth=rows, init=[],
                                               attrs={"ram_style": "block"})
        wp = mem.write_port(granularity=1)
        sweep_row = Signal(index_bits(rows), name="sweep_row")
        busy = self.busy
        m.d.comb += [
            wp.addr.eq(Mux(busy, sweep_row, member_or_zero(self, "set_row"))),
            wp.data.eq(Mux(busy, 0, Const(-1, cols))),
            wp.en.eq(Mux(busy, Const(-1, cols),
                         Mux(self.set_en, decode(m, self.set_col, cols, "set_hot"), 0))),
        ]
        with m.If(self.clear):
            m.d.sync += [busy.eq(1), sweep_row.eq(0)]
        with m.Elif(busy):
            m.d.sync += sweep_row.eq(sweep_row + 1)
            with m.If(sweep_row == rows - 1):
                m.d.sync += busy.eq(0)
        for k in range(self._reads):
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(member_or_zero(self, f"row{k}_idx")),
                         rp.en.eq(getattr(self, f"row{k}_en")),
                         getattr(self, f"row{k}").eq(rp.data)]
        return m
