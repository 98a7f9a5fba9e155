"""The pieces of the gate-level level (spykehw.sim.framework.netlist) that need no synthesis:
splitting a Yosys-written Verilog text into modules, and choosing Yosys's ECP5 cell models a
netlist uses (refusing a black-box model: it would simulate as undriven outputs)."""

from __future__ import annotations

import pytest
from spykehw.sim.framework.netlist import NetlistError, ecp5_cell_models, netlist_missing_reason, verilog_modules

TEXT = """/* header */
(* top = 1 *)
(* generator = "Amaranth" *)
module top(a, y);
  input a; output y;
  \\top.core  core (.a(a), .y(y));
endmodule

(* generator = "Amaranth" *)
module \\top.core (a, y);
  input a; output y;
  assign y = ~a;
endmodule
module \\top.core.sub (a);
  input a;
endmodule
"""


def test_modules_with_their_attributes():
    spans = verilog_modules(TEXT)
    assert list(spans) == ["top", "top.core", "top.core.sub"]
    core = TEXT[slice(*spans["top.core"])]
    assert core.startswith('(* generator = "Amaranth" *)\nmodule \\top.core (') and core.endswith("endmodule\n")
    top = TEXT[slice(*spans["top"])]
    assert top.startswith("(* top = 1 *)") and "assign" not in top


needs_models = pytest.mark.skipif(bool(netlist_missing_reason()), reason="no Yosys ECP5 cell models")


@needs_models
def test_only_the_models_a_netlist_uses():
    netlist = "module m(a, z);\n  LUT4 #(.INIT(16'h5555)) l (.A(a), .B(1'b0), .C(1'b0), .D(1'b0), .Z(z));\nendmodule\n"
    models = ecp5_cell_models(netlist)
    assert list(verilog_modules(models)) == ["LUT4"]


@needs_models
def test_a_black_box_cell_is_refused():
    with pytest.raises(NetlistError, match="DP16KD.*black box"):
        ecp5_cell_models("module m;\n  DP16KD #(.DATA_WIDTH_A(18)) r (.CLKA(1'b0));\nendmodule\n")
