"""External weight memory for simulation: the row-fetch protocol with latency and back-pressure.

Two implementations of one behaviour, for the two kinds of simulation:

:class:`MemoryModel` (hardware, an Amaranth component)
    For free-running simulations (the classifier harness, in the Amaranth simulator and in the
    generated Verilog on Verilator and Icarus): no Python runs per cycle. A row request is
    accepted into a FIFO of ``queue_depth`` entries with the cycle it arrived; it is passed to
    a :class:`~spykehw.rtl.weight_memory.RowMemory` once it has waited ``latency`` cycles, so
    the first word of a row is valid ``max(latency + 1, 3)`` cycles after its request was
    accepted when nothing queues ahead of it (3: the queue, the registered row, the read). Rows
    still stream at one word per cycle: the latency is a delay, not a gap. ``stall`` (0 .. 3) makes the port
    misbehave with probability ``stall/4`` per cycle and per side, from a 16-bit LFSR:
    ``req.ready`` low (back-pressure) and a gap before a response word. ``latency`` and
    ``stall`` are input ports, so one Verilog build serves every setting. ``requests`` and
    ``words`` count the transfers (bytes fetched = ``words * word_bits / 8``).
:class:`PyMemoryModel` (a testbench coroutine for the Amaranth simulator)
    The same protocol from Python, with a seeded random stall pattern: it drives ``req.ready``,
    ``resp.valid`` and ``resp.payload`` of a requester's port directly, so the classifier
    itself (not a harness) can be tested against a memory that misbehaves in other ways than
    the hardware model.
"""

from __future__ import annotations

import random
from collections import deque
from types import SimpleNamespace
from typing import Sequence

from amaranth import Cat, ClockSignal, Instance, Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...rtl.layouts import index_bits
from ...rtl.weight_memory import (
    RowMemory,
    RowPortSignature,
    WriteBusSignature,
    memory_storage,
)
from .stall import stall_lfsr

__all__ = ["SIM_RAM_MODULE", "SIM_RAM_VERILOG", "sim_ram_storage", "MemoryModel",
           "PyMemoryModel"]



SIM_RAM_MODULE = "spykehw_sim_ram"
SIM_RAM_VERILOG = f"""\
// Simulation-only RAM of the spykehw memory model (spykehw.sim.framework.memory_model): no initial
// contents, so that a memory of tens of megabits costs nothing to generate.
module {SIM_RAM_MODULE} #(parameter WIDTH = 8, parameter DEPTH = 2, parameter ABITS = 1) (
  input clk,
  input [ABITS-1:0] waddr, input [WIDTH-1:0] wdata, input we,
  input [ABITS-1:0] raddr, input ren, output reg [WIDTH-1:0] rdata);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    if (ren) rdata <= mem[raddr];
  end
endmodule
"""
"""Source of the black box :func:`sim_ram_storage` instantiates; simulation builds add it."""


def sim_ram_storage(m: Module, name: str, width: int, depth: int, init: Sequence[int] = ()):
    """Storage for :func:`~spykehw.rtl.weight_memory.add_row_memory` as an instance of the
    Verilog module :data:`SIM_RAM_VERILOG` (Verilog simulations only: Amaranth writes a
    ``lib.memory.Memory``'s whole initial contents into the Verilog, tens of megabytes for a
    3630-row ``W2``). It starts empty: the harnesses load it over the write port."""
    if len(init):
        raise ValueError(f"{name}: the simulation RAM has no initial contents (load it over its write port)")
    abits = max(1, ceil_log2(depth))
    wr = SimpleNamespace(addr=Signal(abits, name=f"{name}_waddr"), data=Signal(width, name=f"{name}_wdata"),
                         en=Signal(name=f"{name}_we"))
    rd = SimpleNamespace(addr=Signal(abits, name=f"{name}_raddr"), en=Signal(name=f"{name}_ren"),
                         data=Signal(width, name=f"{name}_rdata"))
    m.submodules[name] = Instance(
        SIM_RAM_MODULE, p_WIDTH=width, p_DEPTH=depth, p_ABITS=abits, i_clk=ClockSignal(),
        i_waddr=wr.addr, i_wdata=wr.data, i_we=wr.en, i_raddr=rd.addr, i_ren=rd.en, o_rdata=rd.data)
    return wr, rd


class MemoryModel(wiring.Component):
    """Row memory with a request queue, a configurable latency and random stalls.

    Parameters
    ----------
    rows, words_per_row, word_bits : int
        Shape of the stored data (see :class:`RowMemory`).
    queue_depth : int
        Requests that may wait (accepted, not yet answered).
    sim_ram : bool
        Store the words in the Verilog black box :data:`SIM_RAM_VERILOG` (generated Verilog for
        simulators) instead of a ``lib.memory.Memory`` (the Amaranth simulator).

    Members
    -------
    port : In(RowPortSignature(rows, word_bits))
        The requester's port.
    write : In(WriteBusSignature(rows * words_per_row, word_bits))
        Loads the stored words (word ``r * words_per_row + k`` = word ``k`` of row ``r``).
    latency : In(16)
        Cycles a request waits before it is served (see the module docstring).
    stall : In(2)
        Misbehaviour probability in quarters.
    requests, words : Out(32)
        Request and response transfers since reset.
    """

    def __init__(self, *, rows: int, words_per_row: int, word_bits: int, queue_depth: int = 16,
                 sim_ram: bool = False) -> None:
        if queue_depth < 2:
            raise ValueError(f"queue_depth must be >= 2, not {queue_depth}")
        self._rows, self._words, self._bits, self._depth = rows, words_per_row, word_bits, queue_depth
        self.store = RowMemory(rows=rows, words_per_row=words_per_row, word_bits=word_bits,
                               storage=sim_ram_storage if sim_ram else memory_storage)
        super().__init__({
            "port": In(RowPortSignature(rows, word_bits)),
            "write": In(WriteBusSignature(rows * words_per_row, word_bits)),
            "latency": In(16),
            "stall": In(2),
            "requests": Out(32),
            "words": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = self.store
        wiring.connect(m, wiring.flipped(self.write), store.write)
        rb = index_bits(self._rows)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=rb + 32, depth=self._depth)
        req, resp = self.port.req, self.port.resp

        lfsr = stall_lfsr(m)
        now = Signal(32)
        m.d.sync += now.eq(now + 1)
        block_req = Signal()
        gap = Signal()
        m.d.comb += [block_req.eq(lfsr[0:2] < self.stall), gap.eq(lfsr[8:10] < self.stall)]

        m.d.comb += [
            req.ready.eq(queue.w_rdy & ~block_req),
            queue.w_en.eq(req.valid & req.ready),
            queue.w_data.eq(Cat(req.payload, now)),     # the row and the cycle it arrived
        ]
        row = queue.r_data[:rb]
        stamp = queue.r_data[rb:]
        age = Signal(32)
        m.d.comb += age.eq(now - stamp)
        due = Signal()
        m.d.comb += due.eq(queue.r_rdy & (age >= self.latency))
        m.d.comb += [
            store.port.req.valid.eq(due),
            store.port.req.payload.eq(row),
            queue.r_en.eq(due & store.port.req.ready),
            resp.valid.eq(store.port.resp.valid & ~gap),
            resp.payload.eq(store.port.resp.payload),
            store.port.resp.ready.eq(resp.ready & ~gap),
        ]
        with m.If(req.valid & req.ready):
            m.d.sync += self.requests.eq(self.requests + 1)
        with m.If(resp.valid & resp.ready):
            m.d.sync += self.words.eq(self.words + 1)
        return m


class PyMemoryModel:
    """The row-fetch protocol from an Amaranth-simulator testbench (see the module docstring).

    ``rows[r]`` is the list of words of row ``r``. A request accepted at edge ``k`` makes its
    first word available from edge ``k + latency`` on (``latency >= 1``); with ``stall_prob``
    each cycle independently holds ``req.ready`` low and skips a response word. Start it with
    ``sim.add_testbench(model.run(port), background=True)``; ``requests`` and ``words`` count
    the transfers.
    """

    def __init__(self, rows: Sequence[Sequence[int]], *, latency: int = 1, stall_prob: float = 0.0,
                 seed: int = 0) -> None:
        if latency < 1:
            raise ValueError(f"latency must be >= 1, not {latency}")
        self.rows = rows
        self.latency = latency
        self.stall_prob = stall_prob
        self.rng = random.Random(seed)
        self.requests = 0
        self.words = 0

    def _stall(self) -> bool:
        return self.stall_prob > 0 and self.rng.random() < self.stall_prob

    def run(self, port):
        """The coroutine (``port`` is the requester's ``RowPortSignature`` interface)."""
        async def process(ctx):
            queue: deque[tuple[int, int]] = deque()     # (row, edge it becomes due)
            word = 0
            edge = 0
            while True:
                ready = not self._stall()
                offer = None
                if queue and queue[0][1] <= edge and not self._stall():
                    offer = self.rows[queue[0][0]][word]
                ctx.set(port.req.ready, int(ready))
                ctx.set(port.resp.valid, int(offer is not None))
                ctx.set(port.resp.payload, offer or 0)
                _, _, req_valid, req_row, resp_ready = await ctx.tick().sample(
                    port.req.valid, port.req.payload, port.resp.ready)
                edge += 1
                if ready and req_valid:
                    queue.append((int(req_row), edge - 1 + self.latency))
                    self.requests += 1
                if offer is not None and resp_ready:
                    self.words += 1
                    word += 1
                    if word == len(self.rows[queue[0][0]]):
                        queue.popleft()
                        word = 0
        return process
