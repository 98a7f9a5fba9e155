# amaranth: UnusedElaboratable=no
"""The whole FPGA flow (Yosys + nextpnr, YoWASP builds) on small designs, checked against the logs.

The SoftmaxUnit at fpga-8 goes through the command line, a small conv core (3x3 kernel, 2 maps,
8x8 input) through the Python API, each on ice40-up5k and ecp5-25k; every design places and
routes in seconds. The test re-reads the tools' own logs with its own parsing (the statistics
section of ``synth.log``, the ``Device utilisation`` table and the last ``Max frequency`` line of
``nextpnr.log``) and compares them with the report; the device capacities are compared with
what nextpnr says is available; images/s is recomputed from the log's Fmax and the cycle formula
written out here. The full-size runs (Conv1 on ECP5-85k, a no-fit on the UP5K) are ``long``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from spykehw.golden.formats import preset
from spykehw.golden.options import ConvOptions

from spykehw.cli import main
from spykehw.fpga.blocks import BlockSettings
from spykehw.fpga.devices import device
from spykehw.fpga.flow import FlowOptions, implement
from spykehw.fpga.tools import Stages, ToolMissing, find_tool
from spykehw.output import RunFolder

TARGETS = ("ice40-up5k", "ecp5-25k")
SMALL_CONV = ConvOptions(in_channels=2, in_size=8, maps=2, kernel=3, threshold=2.0)

# nextpnr cell type per capacity attribute of the Device (the placed resources).
NEXTPNR_CELLS = {
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "bram_blocks": "DP16KD", "dsps": "MULT18X18D"},
    "ice40": {"luts": "ICESTORM_LC", "bram_blocks": "ICESTORM_RAM", "spram_blocks": "ICESTORM_SPRAM",
              "dsps": "ICESTORM_DSP", "io": "SB_IO"},
}


@pytest.fixture(scope="module", autouse=True)
def _tools():
    try:
        find_tool("yosys"), find_tool("nextpnr-ecp5"), find_tool("nextpnr-ice40")
    except ToolMissing as e:
        pytest.skip(str(e))


# --- independent log readers -----------------------------------------------------------------

def synth_log_cells(text: str, module: str) -> dict[str, int]:
    """Cell counts of ``module`` in the last statistics section of a Yosys log."""
    last = text.rfind("Printing statistics.")
    assert last >= 0, "no statistics in synth.log"
    section = text[last:]
    header = f"=== {module} ==="
    body = section[section.index(header) + len(header):]
    end = body.find("===")
    body = body[:end] if end >= 0 else body
    # Cell type lines: count, at least two spaces, a type name (Yosys indents them under the
    # cell total); the wire/port lines have a single space.
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s{2,}(\S+)\s*$", body, re.M)}


def pnr_log_utilisation(text: str) -> dict[str, tuple[int, int]]:
    block = text[text.index("Device utilisation:"):]
    block = block[:block.index("\n\n")]
    return {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", block)}


def pnr_log_fmax(text: str) -> tuple[float, str]:
    lines = re.findall(r"Max frequency for clock '[^']+': ([\d.]+) MHz \((PASS|FAIL) at", text)
    assert lines, "no Max frequency line in nextpnr.log"
    return float(lines[-1][0]), lines[-1][1]


def check_against_logs(folder: Path, report: dict, family: str) -> None:
    synth = (folder / "synth.log").read_text()
    for block in report["blocks"]:
        cells = synth_log_cells(synth, block["module"])
        assert cells == block["cells"], f"{block['module']}: report cells differ from synth.log"
        if family == "ecp5":
            luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0)
            ffs, brams = cells.get("TRELLIS_FF", 0), cells.get("DP16KD", 0)
        else:
            luts = cells.get("SB_LUT4", 0)
            ffs = sum(n for t, n in cells.items() if t.startswith("SB_DFF"))
            brams = cells.get("SB_RAM40_4K", 0)
        assert (block["resources"]["lut4"], block["resources"]["ff"], block["resources"]["bram"]) == \
            (luts, ffs, brams)

    pnr_text = (folder / "nextpnr.log").read_text()
    util = pnr_log_utilisation(pnr_text)
    dev = device(report["target"]["name"])
    for attr, cell in NEXTPNR_CELLS[family].items():
        assert util[cell][1] == getattr(dev, attr), f"{dev.name}.{attr} != nextpnr's {cell} available"
    for key, u in report["pnr"]["utilization"].items():
        assert (u["used"], u["available"]) == util[u["cell"]], key
    fmax, verdict = pnr_log_fmax(pnr_text)
    assert abs(report["pnr"]["fmax_mhz"] - fmax) <= 0.005 + 1e-9     # the log prints 2 decimals
    assert report["pnr"]["passed"] == (verdict == "PASS")


# --- softmax through the command line ---------------------------------------------------------

@pytest.fixture(scope="module", params=TARGETS)
def softmax_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"fpga-softmax-{request.param}")
    rc = main(["fpga", "--block", "softmax", "--target", request.param, "--config", "fpga-8",
               "--quiet", "--out", str(out)])
    (folder,) = list(out.iterdir())
    return rc, folder, json.loads((folder / "report.json").read_text())


def test_softmax_report_matches_logs(softmax_run):
    rc, folder, report = softmax_run
    assert rc == 0 and report["status"] == "ok"
    family = report["target"]["family"]
    check_against_logs(folder, report, family)
    # fpga-8: softmax_bits = 8; 10 classes; cycles = C * (P + 3) + 2 (rtl/softmax.py).
    cycles = 10 * (8 + 3) + 2
    assert report["throughput"]["cycles_per_image"] == cycles
    fmax = report["pnr"]["fmax_mhz"]
    assert report["throughput"]["images_per_second"] == pytest.approx(fmax * 1e6 / cycles, rel=1e-12)


def test_softmax_run_folder(softmax_run):
    rc, folder, report = softmax_run
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("synth.log", "nextpnr.log", "stat.json", "nextpnr-report.json", "report.json", "report.md",
                 "rtl/softmax.v", "fpga_top.v"):
        assert name in manifest["files"], name
        assert (folder / name).is_file()
    # Synthesis read the source-annotated RTLIL: the same design as generate()'s file.
    def strip(text):       # src attribute lines and blank lines removed
        return [ln for ln in text.splitlines()
                if ln.strip() and not ln.strip().startswith("attribute \\src ")]

    rtl = folder / "rtl"
    assert strip((rtl / "softmax.src.il").read_text()) == strip((rtl / "softmax.il").read_text())
    md = (folder / "report.md").read_text()
    assert "Maximum clock frequency" in md and "spykehw fpga --block softmax" in md
    # The wrapper keeps the block's I/O down to four pins.
    assert report["pnr"]["utilization"]["io"]["used"] == 4


# --- a small conv core through the API --------------------------------------------------------

@pytest.fixture(scope="module", params=TARGETS)
def conv_run(request, tmp_path_factory):
    dev = device(request.param)
    settings = BlockSettings(formats=preset("fpga-8"), parallelism=2, steps=4, conv_options=SMALL_CONV)
    folder = RunFolder(tmp_path_factory.mktemp(f"fpga-conv-{request.param}"), "fpga")
    # ECP5: Yosys puts memories this small in LUT RAM (the cheaper choice); --ram-style forces
    # block RAM. iCE40 has no LUT RAM, so they go to block RAM there anyway. (Conv1's own
    # potentials reach block RAM without any ram_style: test_conv1_l30_on_ecp5_85k.)
    styles = (("weight_mem*", "block"), ("pot_mem*", "block")) if dev.family == "ecp5" else ()
    report = implement("conv", settings, FlowOptions(device=dev, freq_mhz=30, ram_styles=styles), folder,
                       Stages(enabled=False))
    return folder.path, report


def test_small_conv_report_matches_logs(conv_run):
    folder, report = conv_run
    assert report["status"] == "ok"
    check_against_logs(folder, report, report["target"]["family"])


BRAM_CELLS = ("$__DP16KD_", "$__PDPW16KD_", "$__ICE40_RAM4K_")


def test_small_conv_potentials_and_weights_in_block_ram(conv_run):
    folder, report = conv_run
    log = (folder / "synth.log").read_text()
    mapped = dict(re.findall(r"^mapping memory conv_core\.(\S+) via (\S+)$", log, re.M))
    for prefix in ("pot_mem", "weight_mem"):
        names = [n for n in mapped if n.startswith(prefix)]
        assert names, f"no {prefix} memory in synth.log"
        assert all(mapped[n] in BRAM_CELLS for n in names), {n: mapped[n] for n in names}
    in_report = {mm["memory"]: mm["mapped_to"] for mm in report["blocks"][0]["memories"]}
    assert all(in_report[n].startswith("block RAM")
               for n in mapped if n.startswith(("pot_mem", "weight_mem")))
    assert report["blocks"][0]["resources"]["bram"] == \
        synth_log_cells(log, "conv_core").get("DP16KD", 0) \
        + synth_log_cells(log, "conv_core").get("SB_RAM40_4K", 0)


# --- full size (long) ---------------------------------------------------------------------------

@pytest.mark.long
def test_conv1_does_not_fit_up5k(tmp_path, capsys):
    rc = main(["fpga", "--block", "conv", "--target", "ice40-up5k", "--config", "edge-4", "--quiet",
               "--out", str(tmp_path)])
    assert rc == 3
    (folder,) = list(tmp_path.iterdir())
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "no-fit" and report["fit"]["message"].startswith("does not fit ice40-up5k")
    assert "does not fit" in capsys.readouterr().out


@pytest.mark.long
def test_conv1_up5k_configuration_fits(tmp_path):
    """The UP5K core (``--potentials spram``), fpga-16, L = 2: synthesis puts the potentials
    in the four SB_SPRAM256KA (two per lane of 22 bits) and the design fits."""
    rc = main(["fpga", "--block", "conv", "--target", "ice40-up5k", "--config", "fpga-16",
               "--parallelism", "2", "--potentials", "spram", "--synth-only", "--quiet",
               "--out", str(tmp_path)])
    assert rc == 0
    (folder,) = list(tmp_path.iterdir())
    report = json.loads((folder / "report.json").read_text())
    assert report["fit"]["message"] == "fits ice40-up5k"
    cells = synth_log_cells((folder / "synth.log").read_text(), "conv_core")
    assert cells.get("SB_SPRAM256KA") == 4
    assert report["blocks"][0]["resources"]["spram"] == 4
    assert "--potentials spram" in report["command"]


@pytest.mark.long
def test_conv1_l30_on_ecp5_85k(tmp_path):
    rc = main(["fpga", "--block", "conv", "--target", "ecp5-85k", "--config", "fpga-16",
               "--parallelism", "30", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    (folder,) = list(tmp_path.iterdir())
    report = json.loads((folder / "report.json").read_text())
    check_against_logs(folder, report, "ecp5")
    mapped = dict(re.findall(r"^mapping memory conv_core\.(\S+) via (\S+)$",
                             (folder / "synth.log").read_text(), re.M))
    pots = [n for n in mapped if n.startswith("pot_mem")]
    assert pots and all(mapped[n] in BRAM_CELLS for n in pots)


def test_small_pipeline_synthesis(tmp_path):
    """``all``: the conv core and a classifier on its 18 features in one design, each counted
    apart from the other and from the wrapper (synthesis only)."""
    settings = BlockSettings(formats=preset("fpga-8"), parallelism=2, steps=4, conv_options=SMALL_CONV,
                             lanes=4, hidden=8, classes=3, active_features=5)
    folder = RunFolder(tmp_path, "fpga")
    report = implement("all", settings, FlowOptions(device=device("ecp5-25k"), freq_mhz=50, route=False),
                       folder, Stages(enabled=False))
    assert report["status"] == "ok" and report["pnr"] is None
    assert [b["module"] for b in report["blocks"]] == ["conv_core", "classifier"]
    synth = (folder.path / "synth.log").read_text()
    total_ff = 0
    for block in report["blocks"]:
        cells = synth_log_cells(synth, block["module"])
        assert cells == block["cells"]
        total_ff += cells.get("TRELLIS_FF", 0)
    wrapper = synth_log_cells(synth, "fpga_top")
    assert report["synthesis"]["total"]["ff"] == total_ff + wrapper["TRELLIS_FF"]
    # The wrapper has one flip-flop per data port bit of both blocks (clk and rst excluded).
    ports = []
    for block in report["blocks"]:
        doc = json.loads((folder.path / "rtl" / f"{block['module']}.json").read_text())
        text = (folder.path / "rtl" / f"{block['module']}.v").read_text()
        top = text[text.index(f"module {block['module']}("):]
        top = top[:top.index("endmodule")]
        ports += [p for p in doc["ports"] if p["name"] not in ("clk", "rst")
                  and re.search(rf"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?{re.escape(p['name'])};", top, re.M)]
    assert wrapper["TRELLIS_FF"] == sum(p["width"] for p in ports)
    # Throughput: the slower block sets the rate; the classifier fetches 5 rows of W2 per image.
    thr = report["throughput"]
    assert thr["cycles_per_image"] == max(b["cycles_per_image"]["value"] for b in report["blocks"])
    assert thr["external_bytes_per_image"] == 5 * 2 * 4 * 8 / 8      # G = 2 words of 4 x 8 bits


# --- no fit -------------------------------------------------------------------------------------

@pytest.fixture
def tiny_up5k(monkeypatch):
    """The UP5K with only 50 LUT4s: the softmax unit cannot fit."""
    import dataclasses

    from spykehw.fpga import devices

    tiny = dataclasses.replace(devices.DEVICES["ice40-up5k"], luts=50)
    monkeypatch.setitem(devices.DEVICES, "ice40-up5k", tiny)
    return tiny


def test_no_fit_is_reported_before_place_and_route(tiny_up5k, tmp_path, capsys):
    rc = main(["fpga", "--block", "softmax", "--target", "ice40-up5k", "--config", "fpga-8", "--quiet",
               "--out", str(tmp_path)])
    assert rc == 3
    (folder,) = list(tmp_path.iterdir())
    report = json.loads((folder / "report.json").read_text())
    cells = synth_log_cells((folder / "synth.log").read_text(), "softmax")
    wrapper = synth_log_cells((folder / "synth.log").read_text(), "fpga_top")
    needed = cells["SB_LUT4"] + wrapper.get("SB_LUT4", 0)
    assert report["status"] == "no-fit" and report["fit"]["stage"] == "synthesis"
    assert report["fit"]["message"].startswith(
        f"does not fit ice40-up5k: {needed:,} LUT4 needed, 50 available ({100 * needed / 50:.0f}%)")
    assert not (folder / "nextpnr.log").exists()
    assert "does not fit ice40-up5k" in capsys.readouterr().out


# --- sweep through the command line ---------------------------------------------------------------

def test_sweep_table_and_resume(tmp_path, capsys):
    acc = tmp_path / "acc.csv"
    acc.write_text("preset,accuracy\nfpga-8,0.97\n")
    argv = ["fpga", "--block", "softmax", "--target", "ice40-up5k", "--config", "fpga-8,edge-4",
            "--synth-only", "--quiet", "--accuracy", str(acc), "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    (sweep,) = list((tmp_path / "runs").iterdir())
    rows = json.loads((sweep / "sweep.json").read_text())["points"]
    assert [(r["config"], r["status"], r["accuracy"]) for r in rows] == [("fpga-8", "ok", 0.97),
                                                                        ("edge-4", "ok", None)]
    for r in rows:      # LUT4 of the table = block + wrapper from each point's own synth.log
        (point,) = [p for p in (sweep / "points").iterdir() if f"_{r['config']}_" in p.name]
        log = (point / "synth.log").read_text()
        assert r["lut4"] == synth_log_cells(log, "softmax")["SB_LUT4"] \
            + synth_log_cells(log, "fpga_top")["SB_LUT4"]
    assert (sweep / "sweep.md").read_text().count("| softmax |") == 2
    capsys.readouterr()
    assert main(argv + ["--resume", str(sweep)]) == 0          # nothing left to do
    out = capsys.readouterr().out
    assert out.count("(stored)") == 2
