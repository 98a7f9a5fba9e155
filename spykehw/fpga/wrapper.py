"""A resource/timing-study top level: the block behind a 4-pin wrapper (clk, rst, si, so).

A block such as the conv core has about a thousand port bits (the weight bus alone is
``2 * L * B`` bits), far more than any package has pins, and nextpnr needs a pin for every
top-level port. Driving the ports from constants or leaving outputs open would let Yosys delete
most of the design. The wrapper keeps every port bit alive and every path register-bounded:

* **Inputs** come from one shift register of ``N_in`` flip-flops (one per input bit, in port
  order), shifted in from pin ``si``. Each input bit is driven by its own flip-flop, so Yosys
  can neither propagate a constant nor merge two inputs, and no logic sits between the
  flip-flop and the block: input paths start at a register, as they would behind a real host
  interface.
* **Outputs** go into a multiple-input signature register (MISR) of ``N_out`` flip-flops:
  ``misr[i] <= misr[i-1] ^ out[i]``, and ``so`` is its last bit. Every output bit reaches the pin
  through the chain, so none can be optimised away, and an output path is at most one LUT (the
  XOR) longer than in a real design that registers the block's outputs.

Cost of the method (counted in the report: the blocks are kept as modules of their own while
mapping, so Yosys reports their cells apart from the wrapper's): ``N_in + N_out`` flip-flops and
about ``N_out`` LUT4s (the XORs; Conv1 at L=30: 532 + 520 flip-flops, 519 LUT4), no memory, no
DSP. The blocks' own figures exclude it; the fit check and place and route use the whole design.
Effects on the numbers: (1) the wrapper's flip-flops take fabric, and on ECP5 nextpnr's packer
adds a route-through LUT for many flip-flops fed straight from another flip-flop (the input
chain) or from a RAM output, so the placed LUT total exceeds block + wrapper from Yosys (Conv1
at L=30: 17,391 placed vs 15,482 + 519); (2) the block boundary is kept during mapping
(``keep_hierarchy``), so no logic is optimised across it; (3) Fmax includes the wrapper's
register-to-register paths, which are at most one LUT deep and never critical for a real block.

The wrapper instantiates each block *by module name* (``Instance``), so the block is the design
:func:`spykehw.rtl.verilog.generate` writes; synthesis reads the same RTLIL written with
Amaranth's ``src`` attributes (``rtl/<module>.src.il``), so that the critical path names the
Python source lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from amaranth import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..rtl.verilog import PortInfo

__all__ = ["TOP_NAME", "PINS", "WrapperCost", "StudyWrapper"]

TOP_NAME = "fpga_top"
PINS = ("clk", "rst", "si", "so")
_CLOCK_PORTS = ("clk", "rst")


@dataclass(frozen=True)
class WrapperCost:
    """Bits the wrapper adds: one flip-flop per block input and output bit."""

    input_bits: int
    output_bits: int

    @property
    def flip_flops(self) -> int:
        return self.input_bits + self.output_bits


class StudyWrapper(wiring.Component):
    """Top level of a resource/timing study (see the module docstring).

    Parameters
    ----------
    blocks : sequence of (str, sequence of PortInfo)
        Each block's Verilog module name and its ports as
        :func:`spykehw.rtl.verilog.generate` describes them. ``clk`` and ``rst`` connect to the
        wrapper's ``sync`` domain; every other port to the chains (all blocks share one input
        chain and one signature register, in the order given).

    Members
    -------
    si : In(1)
        Serial input of the input shift register.
    so : Out(1)
        Last bit of the output signature register.
    """

    def __init__(self, blocks: Sequence[tuple[str, Sequence[PortInfo]]]) -> None:
        self._blocks = tuple((name, tuple(ports)) for name, ports in blocks)
        if not self._blocks:
            raise ValueError("a study wrapper needs at least one block")
        for name, ports in self._blocks:
            if not any(p.direction == "output" for p in ports):
                raise ValueError(f"{name}: a block without outputs would be optimised away")
        super().__init__({"si": In(1), "so": Out(1)})

    @property
    def cost(self) -> WrapperCost:
        data = [p for _, ports in self._blocks for p in ports if p.name not in _CLOCK_PORTS]
        return WrapperCost(sum(p.width for p in data if p.direction == "input"),
                           sum(p.width for p in data if p.direction == "output"))

    def elaborate(self, platform):
        m = Module()
        cost = self.cost
        # reset_less: the chains need no reset, and a reset would add a control set.
        chain = Signal(max(1, cost.input_bits), reset_less=True)
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        outputs = []
        for name, ports in self._blocks:
            conns = {}
            names = {p.name for p in ports}
            if "clk" in names:
                conns["i_clk"] = ClockSignal()
            if "rst" in names:
                conns["i_rst"] = ResetSignal()
            for p in ports:
                if p.name in _CLOCK_PORTS:
                    continue
                if p.direction == "input":
                    conns[f"i_{p.name}"] = chain[offset:offset + p.width]
                    offset += p.width
                else:
                    sig = Signal(p.width, name=f"{name}_{p.name}")
                    conns[f"o_{p.name}"] = sig
                    outputs.append(sig)
            m.submodules[name] = Instance(name, **conns)

        misr = Signal(cost.output_bits, reset_less=True)
        m.d.sync += misr.eq(Cat(0, misr[:-1]) ^ Cat(*outputs))
        m.d.comb += self.so.eq(misr[-1])
        return m
