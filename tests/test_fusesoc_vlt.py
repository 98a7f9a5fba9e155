"""``spykehw verilog`` writes a FuseSoC core (CAPI2) and a Verilator waiver file (``.vlt``); the
Verilog lints clean with ``verilator --lint-only -Wall file.vlt file.v`` alone (run here directly,
not through spykehw's lint), the same Verilog without the ``.vlt`` does not, and the waivers stay
narrow: a real width mismatch and a named unused signal still warn.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from spykehw.sim.framework.lint_waivers import WAIVERS, anonymous_patterns, vlt_text

from spykehw.cli import main

pytestmark = pytest.mark.sim


def verilator_lint(*files: Path) -> list[str]:
    from spykehw.sim.framework.toolchain import find_verilator
    tool = find_verilator()
    out = subprocess.run([str(tool.executable), "--lint-only", "-Wall", "-Wno-fatal", *map(str, files)],
                         capture_output=True, text=True, env=tool.environ(), timeout=300)
    text = out.stdout + out.stderr
    assert "%Error" not in text.replace("%Error: Exiting due to", ""), text
    return re.findall(r"^%Warning-\S+.*$", text, re.M)


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    from spykehw.sim.framework.toolchain import require_simulator
    require_simulator("verilator")
    root = tmp_path_factory.mktemp("verilog")
    assert main(["verilog", "classifier", "--features", "64", "--hidden", "16", "--classes", "10",
                 "--lanes", "8", "--out", str(root / "clf"), "--quiet"]) == 0
    assert main(["verilog", "conv", "--parallelism", "10", "--out", str(root / "conv"), "--quiet"]) == 0
    return {"classifier": root / "clf", "conv_core": root / "conv"}


@pytest.mark.parametrize("name", ["classifier", "conv_core"])
def test_verilog_lints_clean_with_the_vlt_alone(designs, name):
    folder = designs[name]
    v, vlt = folder / f"{name}.v", folder / f"{name}.vlt"
    assert vlt.read_text().startswith("`verilator_config\n")
    assert verilator_lint(vlt, v) == []
    assert len(verilator_lint(v)) > 10       # the waivers do something


@pytest.mark.parametrize("name", ["classifier", "conv_core"])
def test_fusesoc_core(designs, name):
    folder = designs[name]
    text = (folder / f"{name}.core").read_text()
    assert text.startswith("CAPI=2:\n")
    core = yaml.safe_load(text)
    assert core["name"].split(":")[:3] == ["spykehw", "spykehw", name]
    assert core["filesets"]["rtl"] == {"files": [f"{name}.v"], "file_type": "verilogSource"}
    assert core["filesets"]["waivers"] == {"files": [f"{name}.vlt"], "file_type": "vlt"}
    assert core["targets"]["default"]["toplevel"] == name
    lint = core["targets"]["lint"]
    assert lint["toplevel"] == name and lint["filesets"] == ["rtl", "waivers"]
    assert lint["tools"]["verilator"]["mode"] == "lint-only"
    for fs in core["filesets"].values():
        assert all((folder / f).is_file() for f in fs["files"])
    assert re.search(r"^#   lanes: 8$" if name == "classifier" else r"^#   parallelism: 10$", text, re.M)
    manifest = (folder / "manifest.json").read_text()
    assert f'"{name}.core"' in manifest and f'"{name}.vlt"' in manifest


SLOPPY = """module sloppy(clk, a, y, z);
  input clk;
  input [7:0] a;
  output [3:0] y;
  output [3:0] z;
  wire [7:0] named;
  wire [7:0] \\$7 ;
  assign \\$7 = a + 8'h01;
  assign named = a ^ 8'h55;
  assign y = a;
  assign z = \\$7 [3:0];
endmodule
"""


def test_the_vlt_does_not_hide_real_problems(tmp_path):
    from spykehw.sim.framework.toolchain import require_simulator
    require_simulator("verilator")
    v = tmp_path / "sloppy.v"
    v.write_text(SLOPPY)
    vlt = tmp_path / "sloppy.vlt"
    vlt.write_text(vlt_text(SLOPPY, "sloppy.v"))
    found = "\n".join(verilator_lint(vlt, v))
    assert "Operator ASSIGNW expects 4 bits on the Assign RHS" in found     # assignment width
    assert "Signal is not used: 'named'" in found                          # named, computed
    assert "'$7'" not in found                                              # anonymous: waived


def test_anonymous_patterns_by_hand():
    text = "wire \\$3 ;\nwire \\$12 ;\nwire \\$45 ;\nwire \\$signal ;\n"
    assert anonymous_patterns(text) == ["$?", "$??"]
    # a named signal as long as the two-digit nets: those are listed one by one
    assert anonymous_patterns(text + "wire \\$ab ;\n") == ["$?", "$12", "$45"]


def test_every_waiver_is_a_line_with_its_reason():
    text = vlt_text("module m; endmodule\n", "m.v")
    for w in WAIVERS:
        assert w.justification
        if w.names is None:
            for m in w.match:
                assert f'lint_off -rule {w.code} -file "*m.v" -match "{m.replace("{stem}", "m")}"' in text
