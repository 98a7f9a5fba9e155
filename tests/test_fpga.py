# amaranth: UnusedElaboratable=no
"""spykehw.fpga without the tools: devices, log parsing, fit check, wrapper, sweep store, CLI input.

Oracles: the vendors' data-sheet figures written out here, log excerpts in the tools' documented
formats, and arithmetic done by hand in the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.back import rtlil
from spykehw.golden.formats import preset
from spykehw.rtl.verilog import PortInfo

from spykehw.cli import main
from spykehw.fpga import parse
from spykehw.fpga.blocks import (
    BlockSettings,
    BlockUnavailable,
    build_blocks,
    conv_cycles_bound,
)
from spykehw.fpga.devices import DEVICES, DeviceError, device
from spykehw.fpga.flow import fit_check
from spykehw.fpga.reports import render_sweep_csv, sweep_row
from spykehw.fpga.sweep import (
    AccuracyError,
    SweepPoint,
    point_key,
    read_accuracy,
    run_points,
)
from spykehw.fpga.wrapper import StudyWrapper

# --- devices --------------------------------------------------------------------------------

def test_device_capacities_match_the_data_sheets():
    # ECP5 data sheet Table 1.1: 56/108/208 sysMEM blocks of 18 Kb (1,008/1,944/3,744 Kb),
    # 28/72/156 18x18 multipliers; LUTs rounded to 24K/44K/84K.
    for name, blocks, kb, mults, kluts in (("ecp5-25k", 56, 1008, 28, 24), ("ecp5-45k", 108, 1944, 72, 44),
                                          ("ecp5-85k", 208, 3744, 156, 84)):
        d = device(name)
        assert d.bram_blocks == blocks and d.bram_bits == kb * 1024 and d.dsps == mults
        assert round(d.luts / 1000) == kluts and d.ffs == d.luts
    # iCE40 UltraPlus data sheet Table 1.1: 5,280 LUTs, 30 x 4 Kb EBR = 120 Kb, 4 x 256 Kb SPRAM,
    # 8 DSP, 39 I/O in SG48.
    up = device("ice40-up5k")
    assert (up.luts, up.ffs, up.bram_blocks, up.bram_bits, up.spram_blocks, up.spram_bits, up.dsps,
            up.io) == \
        (5280, 5280, 30, 120 * 1024, 4, 1024 * 1024, 8, 39)


def test_unknown_device_names_the_known_ones():
    with pytest.raises(DeviceError, match="ice40-up5k"):
        device("ecp5-12k")


def test_nextpnr_arguments():
    assert DEVICES["ecp5-45k"].nextpnr_args()[:5] == ["--45k", "--package", "CABGA381", "--speed", "6"]
    assert DEVICES["ice40-up5k"].nextpnr_args()[:3] == ["--up5k", "--package", "sg48"]


# --- parsing ----------------------------------------------------------------------------------

NEXTPNR_LOG = """\
Info: Device utilisation:
Info: \t          TRELLIS_IO:       4/    365     1%
Info: \t                DCCA:       1/     56     1%
Info: \t              DP16KD:      41/    208    19%
Info: \t        TRELLIS_COMB:   16618/  83640    19%

Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 18.27 MHz (FAIL at 100.00 MHz)
Warning: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 21.16 MHz (FAIL at 100.00 MHz)
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_RAM'
"""


def test_nextpnr_log_parsing_takes_the_routed_fmax():
    fmax = parse.nextpnr_log_fmax(NEXTPNR_LOG)
    assert fmax == {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 21.16, "constraint": 100.0, "passed": False}}
    util = parse.nextpnr_log_utilisation(NEXTPNR_LOG)
    assert util["DP16KD"] == {"used": 41, "available": 208}
    assert util["TRELLIS_COMB"] == {"used": 16618, "available": 83640}
    assert parse.nextpnr_errors(NEXTPNR_LOG) == [
        "Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_RAM'"]


def test_memory_mapping_lines():
    log = ("mapping memory conv_core.pot_mem via $__DP16KD_\n"
           "mapping memory conv_core.weight_mem0 via $__TRELLIS_DPR16X4_\n"
           "Mapping memory \\exp_lut in module \\softmax:\n")
    got = parse.memory_mapping(log)
    assert [(m["module"], m["memory"]) for m in got] == [
        ("conv_core", "pot_mem"), ("conv_core", "weight_mem0"), ("softmax", "exp_lut")]
    assert got[0]["mapped_to"].startswith("block RAM") and got[1]["mapped_to"].startswith("LUT RAM")
    assert got[2]["mapped_to"].startswith("soft logic")


def test_ecp5_lut_equivalents():
    # A CCU2C holds two LUT4s, a 16x4 LUT RAM four.
    cells = {"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 2, "TRELLIS_FF": 7, "DP16KD": 1, "PFUMX": 5}
    assert parse.resources_from_cells("ecp5", cells) == {
        "lut4": 10 + 6 + 8, "ff": 7, "bram": 1, "dsp": 0, "lutram": 2}
    ice = {"SB_LUT4": 9, "SB_DFF": 2, "SB_DFFESR": 3, "SB_RAM40_4K": 1, "SB_SPRAM256KA": 1, "SB_CARRY": 4}
    assert parse.resources_from_cells("ice40", ice) == {"lut4": 9, "ff": 5, "bram": 1, "spram": 1, "dsp": 0}


def test_critical_path_summary():
    path = {"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "delay": 1.0, "from": {"cell": "conv_core.a"}, "to": {"cell": "conv_core.a"}},
        {"type": "routing", "delay": 0.5, "net": "conv_core.a_LUT4_Z_1",
         "sources": ["/x/rtl/conv_core.py:10"],
         "from": {"cell": "conv_core.a"}, "to": {"cell": "conv_core.b"}},
        {"type": "logic", "delay": 0.25, "from": {"cell": "conv_core.b"}, "to": {"cell": "conv_core.b"},
         "sources": ["/share/lattice/cells_map_trellis.v:108.23-108.24"]},
        {"type": "routing", "delay": 0.75, "net": "conv_core.c", "sources": ["/x/rtl/conv_core.py:12.3-12.9"],
         "from": {"cell": "conv_core.b"}, "to": {"cell": "conv_core.c_reg"}},
        {"type": "setup", "delay": 0.5, "from": {"cell": "conv_core.c_reg"},
         "to": {"cell": "conv_core.c_reg"}},
    ]}
    s = parse.critical_path_summary(path, ("conv_core.",))
    assert (s["delay_ns"], s["logic_ns"], s["routing_ns"], s["logic_levels"]) == (3.0, 1.75, 1.25, 1)
    assert s["signals"] == ["a", "c"]
    assert s["source_lines"] == ["rtl/conv_core.py:10", "rtl/conv_core.py:12"]
    assert (s["start_cell"], s["end_cell"]) == ("a", "c_reg")


def test_cell_types_of_packed_names():
    types = {"conv_core.pot_mem.0.1": "DP16KD", "x_CCU2C_S0": "CCU2C"}
    assert parse.cell_type("conv_core.pot_mem.0.1", types) == "DP16KD"
    assert parse.cell_type("x_CCU2C_S0$CCU2_COMB1", types) == "CCU2C"          # split by the packer
    assert parse.cell_type("$nextpnr_CCU2C_5$CCU2_COMB0", types) == "CCU2C"    # inserted by it
    assert parse.cell_type("$nextpnr_ICESTORM_LC_1", types) == "ICESTORM_LC"
    assert parse.cell_type("a_SB_LUT4_O_LC", types) == "ICESTORM_LC"
    assert parse.cell_type("softmax.logits.0.0_RAM", {"softmax.logits.0.0": "SB_RAM40_4K"}) == "SB_RAM40_4K"
    assert parse.cell_type("unknown", types) == "?"
    path = {"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "delay": 5.0, "from": {"cell": "conv_core.pot_mem.0.1"}, "to": {"cell": "y"}},
        {"type": "logic", "delay": 0.5, "from": {"cell": "x_CCU2C_S0$CCU2_COMB1"}, "to": {"cell": "y"}},
        {"type": "logic", "delay": 0.25, "from": {"cell": "$nextpnr_CCU2C_5$CCU2_COMB0"},
         "to": {"cell": "y"}}]}
    by_type = parse.critical_path_summary(path, (), types)["by_type"]
    assert by_type == {"DP16KD (clock to output)": {"cells": 1, "ns": 5.0}, "CCU2C": {"cells": 2, "ns": 0.75}}


# --- fit check --------------------------------------------------------------------------------

def test_fit_check_names_what_is_over():
    fit = fit_check(device("ice40-up5k"), {"lut4": 9812, "ff": 100, "bram": 40, "dsp": 0}, "synthesis")
    assert not fit["fits"]
    assert fit["message"] == ("does not fit ice40-up5k: 9,812 LUT4 needed, 5,280 available (186%); "
                              "40 block RAM needed, 30 available (133%)")
    assert fit_check(device("ecp5-25k"), {"lut4": 24288, "ff": 1}, "synthesis")["fits"]


# --- blocks -----------------------------------------------------------------------------------

def test_conv_cycle_bound_by_hand():
    from spykehw.golden.options import CONV1
    from spykehw.rtl.conv_config import ConvCoreConfig

    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-16"), parallelism=30)
    # Conv1: 2 channels, 23x23 outputs, K=5: every row index covers sum_y |{kr}| = 23*5 rows,
    # so 2 * 115**2 = 26,450 (input, position) pairs; the 4 corner inputs of each channel have
    # one position but spend 2 cycles in the token register (+ 2*4); plus 529 firings and 12
    # step ends of 13 + ceil(log2 30) = 18 cycles (one group).
    assert conv_cycles_bound(cfg) == 26450 + 2 * 4 + 529 + 12 * 18
    cfg6 = ConvCoreConfig(options=CONV1, formats=preset("fpga-16"), parallelism=6)
    # 5 groups: every input costs >= 5 cycles (no corner term); 13 + ceil(log2 6) + 1 = 17 per step.
    assert conv_cycles_bound(cfg6) == 5 * (26450 + 529) + 12 * 17


def test_conv2_block_by_hand():
    """``--layer conv2``'s block: 200 maps at L = 40 (5 groups), inputs spiking 4 times: 30
    channels x (7*5)**2 (input, position) pairs x 4 = 147,000, plus 49 firings, per group;
    12 step ends of 13 + ceil(log2 40) + 1 = 20 cycles."""
    from spykehw.golden.options import CONV2

    s = BlockSettings(formats=preset("fpga-16").conv2_formats(), parallelism=40, conv_options=CONV2,
                      max_spikes_per_input=4)
    (c,) = build_blocks("conv", s).blocks
    assert c.cycles.value == 5 * (147000 + 49) + 12 * 20 and c.cycles.kind == "bound"
    assert s.to_dict()["max_spikes_per_input"] == 4


def test_block_figures():
    s = BlockSettings(formats=preset("fpga-8"), lanes=64)
    (b,) = build_blocks("softmax", s).blocks
    # fpga-8: softmax_bits 8, 10 classes: C * (P + 3) + 2.
    assert b.cycles.value == 10 * (8 + 3) + 2 and b.cycles.kind == "exact"
    (c,) = build_blocks("classifier", s).blocks
    # 1000 hidden units at 64 lanes: G = 16 words of 64 x 8 bits = 1,024 bytes per W2 row;
    # 170 active features fetch 170 rows.
    assert c.external_bytes.value == 170 * 16 * 64 * 8 / 8
    # Stage A: 170 rows x 16 words + (latency 2 + 1) + 16 scan + 4 = 2,743 cycles, more than the
    # output layer (<= 1000 + 16 + 10 + 2) and the softmax (111).
    assert c.cycles.value == 170 * 16 + 3 + 16 + 4
    everything = build_blocks("all", s)
    assert [x.kind for x in everything.blocks] == ["conv", "classifier"] and not everything.missing


def test_unavailable_block_is_reported(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spykehw.rtl.classifier", None)   # import raises
    s = BlockSettings(formats=preset("fpga-8"))
    with pytest.raises(BlockUnavailable, match="classifier"):
        build_blocks("classifier", s)
    everything = build_blocks("all", s)
    assert "classifier" in everything.missing
    assert [x.kind for x in everything.blocks] == ["conv", "softmax"]


# --- wrapper ----------------------------------------------------------------------------------

def test_wrapper_connects_every_port_bit():
    ports = [PortInfo("clk", "input", 1, False), PortInfo("rst", "input", 1, False),
             PortInfo("a", "input", 5, False), PortInfo("b", "input", 3, True),
             PortInfo("y", "output", 4, False), PortInfo("z", "output", 2, False)]
    w = StudyWrapper([("blk", ports)])
    assert (w.cost.input_bits, w.cost.output_bits, w.cost.flip_flops) == (8, 6, 14)
    text = rtlil.convert(w, name="fpga_top", emit_src=False)
    assert "cell \\blk \\blk" in text
    for port in ("clk", "rst", "a", "b", "y", "z"):
        assert f"connect \\{port} " in text
    with pytest.raises(ValueError, match="optimised away"):
        StudyWrapper([("blk", ports[:4])])


# --- sweep store and accuracy -----------------------------------------------------------------

def test_accuracy_plain_csv(tmp_path: Path):
    f = tmp_path / "acc.csv"
    f.write_text("preset,seed,test_accuracy\nfpga-16,0,0.97\nfpga-16,1,0.95\nedge-4,0,91.5\n")
    acc = read_accuracy(f)
    assert acc.lookup("fpga-16", preset("fpga-16")) == pytest.approx(0.96)
    assert acc.lookup("edge-4", preset("edge-4")) == pytest.approx(0.915)
    assert acc.lookup("fpga-8", preset("fpga-8")) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(AccuracyError, match="accuracy column"):
        read_accuracy(bad)


def test_accuracy_from_quant_results_csv(tmp_path: Path):
    # spykehw quant's results.csv: integer rows matched on their twelve format columns.
    cols = ["dataset", "repeat", "label", "model", "conv_bits", "stdp_rounding", "dog_frac_bits",
            "hidden_weight_bits", "hidden_weight_frac", "hidden_bias_bits", "output_weight_bits",
            "output_weight_frac", "output_bias_bits", "exp_lut_entries", "exp_lut_bits", "softmax_bits",
            "acc_pct"]
    f8 = ["8", "stochastic", "6", "8", "7", "12", "8", "5", "12", "16", "10", "8"]     # fpga-8
    f16 = ["16", "half_up", "14", "16", "14", "16", "16", "10", "16", "32", "16", "16"]  # fpga-16
    lines = [",".join(cols),
             ",".join(["mnist", "0", "base fpga-8", "int", *f8, "96.0"]),
             ",".join(["mnist", "1", "base fpga-8", "int", *f8, "97.0"]),
             ",".join(["mnist", "0", "float", "float", *[""] * 12, "98.0"]),
             ",".join(["emnist", "0", "base fpga-8", "int", *f8, "80.0"]),
             ",".join(["mnist", "0", "conv 16 half_up", "int", *f16, "97.5"])]
    f = tmp_path / "results.csv"
    f.write_text("\n".join(lines) + "\n")
    acc = read_accuracy(f)
    assert acc.lookup("fpga-8", preset("fpga-8")) == pytest.approx(0.965)
    assert acc.lookup("fpga-16", preset("fpga-16")) == pytest.approx(0.975)
    assert acc.lookup("edge-4", preset("edge-4")) is None
    assert "mnist" in acc.note and "emnist" in acc.note


def test_sweep_store_resumes(tmp_path: Path):
    from spykehw.quant.store import Store

    points = [SweepPoint("softmax", "ecp5-25k", c, 1, 1) for c in ("fpga-8", "fpga-16")]
    keys = {p: point_key(p, {"freq_mhz": 100}, "code0") for p in points}
    ran, seen = [], []

    def runner(spec):
        ran.append(spec["point"]["config"])
        return {"status": "ok", "config": spec["point"]["config"]}

    store = Store(tmp_path / "store")
    spec = lambda p: {"point": p.to_dict()}  # noqa: E731
    got = run_points(points, store, keys, spec, lambda p, r, stored: seen.append(stored), runner=runner)
    assert ran == ["fpga-8", "fpga-16"] and seen == [False, False]
    assert [r["config"] for r in got] == ["fpga-8", "fpga-16"]
    ran.clear(), seen.clear()
    run_points(points, store, keys, spec, lambda p, r, stored: seen.append(stored), runner=runner)
    assert ran == [] and seen == [True, True]
    # The key is readable and changes with the settings and the code.
    assert keys[points[0]].startswith("softmax_ecp5-25k_fpga-8_")
    assert point_key(points[0], {"freq_mhz": 90}, "code0") != keys[points[0]]
    assert point_key(points[0], {"freq_mhz": 100}, "code1") != keys[points[0]]


def test_sweep_points_drop_axes_a_block_ignores():
    from spykehw.fpga.sweep import sweep_points

    conv = sweep_points("conv", "ecp5-85k", ["fpga-16", "fpga-8"], [30, 6], [16, 64])
    assert [(p.config, p.parallelism, p.lanes) for p in conv] == [
        ("fpga-16", 30, 16), ("fpga-16", 6, 16), ("fpga-8", 30, 16), ("fpga-8", 6, 16)]
    cls = sweep_points("classifier", "ecp5-85k", ["fpga-16"], [30, 6], [16, 64])
    assert [(p.parallelism, p.lanes) for p in cls] == [(30, 16), (30, 64)]
    assert len(sweep_points("all", "ecp5-85k", ["fpga-16"], [30, 6], [16, 64])) == 4
    assert len(sweep_points("softmax", "ecp5-85k", ["fpga-16"], [30, 6], [16, 64])) == 1


def test_sweep_row_csv():
    report = {"status": "no-fit", "target": {"name": "ice40-up5k", "capacities": {"lut4": 5280}},
              "fit": {"message": "does not fit ice40-up5k: x"}, "blocks": [{"kind": "conv"}],
              "synthesis": {"total": {"lut4": 10560, "ff": 3, "bram": 40, "dsp": 0}}, "pnr": None,
              "throughput": {"cycles_per_image": 100}}
    row = sweep_row({"block": "conv", "target": "ice40-up5k", "config": "edge-4", "parallelism": 1,
                     "lanes": 1}, report, 0.9)
    assert row["lut4"] == 10560 and row["lut4_pct"] == 200.0 and row["fmax_mhz"] is None
    csv_text = render_sweep_csv([row])
    assert csv_text.splitlines()[1].startswith(
        "conv,ice40-up5k,edge-4,1,1,0.9,no-fit,10560,200.0,3,40,0,,100,")


def test_exit_status():
    from spykehw.commands.fpga import EXIT_FAILED, EXIT_NO_FIT, _status_code

    ok, nofit, failed = {"status": "ok"}, {"status": "no-fit"}, {"status": "failed"}
    assert _status_code([ok, ok], False) == 0
    assert _status_code([ok, nofit], False) == EXIT_NO_FIT == 3
    assert _status_code([ok, nofit], True) == 0
    assert _status_code([nofit, failed], True) == EXIT_FAILED == 1


# --- command line input errors ----------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--parallelism", "7"], "parallelism"),
    (["--parallelism", "x"], "integers"),
    (["--config", "nope"], "unknown preset"),
    (["--ram-style", "weight_mem*=fast"], "ram-style"),
    (["--layer", "conv2", "--parallelism", "30"], "parallelism"),       # 200 maps: 30 does not divide
    (["--layer", "conv2", "--parallelism", "40,20"], "one point only"),
])
def test_cli_rejects_bad_input(argv, message, tmp_path, capsys):
    rc = main(["fpga", "--block", "conv", "--synth-only", "--quiet", "--out", str(tmp_path), *argv])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())          # rejected before any run folder is made


# --- benchmark outputs ------------------------------------------------------------------------

def test_measured_figures_from_bench_files(tmp_path: Path):
    import json as _json

    from spykehw.fpga.bench import BenchError, read_bench

    conv = tmp_path / "conv.json"
    conv.write_text(_json.dumps({"preset": "fpga-16", "layer": "conv1", "images": 500,
                                 "results": {"conv1_cycles_per_image": {"L30": 5321.5, "L10": 14000.0}}}))
    cls = tmp_path / "cls.json"
    entry = {"features": 3630, "hidden": 1000, "classes": 10, "lanes": 64, "images": 200,
             "memory_latency": 16, "cycles_per_image": 2345.0, "bytes_per_image": 250000.0,
             "active_features_mean": 122.4}
    cls.write_text(_json.dumps({"benchmark": "classifier", "configs": [entry]}))
    bench = read_bench([conv, cls])

    f16 = preset("fpga-16")
    (c30,) = build_blocks("conv", BlockSettings(formats=f16, parallelism=30, bench=bench)).blocks
    assert (c30.cycles.value, c30.cycles.kind) == (5321.5, "measured") and "conv.json" in c30.cycles.source
    (c6,) = build_blocks("conv", BlockSettings(formats=f16, parallelism=6, bench=bench)).blocks
    assert c6.cycles.kind == "bound"                           # no measurement at L = 6
    (k64,) = build_blocks("classifier", BlockSettings(formats=f16, lanes=64, bench=bench)).blocks
    assert (k64.cycles.value, k64.external_bytes.value) == (2345.0, 250000.0)
    # Another preset: the same rows and cycles, rows of 4-bit instead of 16-bit weights.
    (e64,) = build_blocks("classifier", BlockSettings(formats=preset("edge-4"), lanes=64, bench=bench)).blocks
    assert (e64.cycles.value, e64.external_bytes.value) == (2345.0, 250000.0 * 4 / 16)
    # Other lanes: the model at the measured mean of 122 active features (G = 63 words at 16 lanes).
    (k16,) = build_blocks("classifier", BlockSettings(formats=f16, lanes=16, bench=bench)).blocks
    assert k16.cycles.kind == "model" and k16.cycles.value == 122 * 63 + 3 + 63 + 4
    assert k16.external_bytes.value == 122 * 63 * 16 * 16 / 8

    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(BenchError, match="conv.bench"):
        read_bench([bad])
