"""The accelerator top: AXI port names, register map, weight writes, and co-simulation on
Verilator and Icarus through cocotbext-axi's bus models against the integer golden model.

The design point is small (2x11x11 inputs, 4 maps, 4 steps, 64 -> 16 -> 4) so that a run takes
seconds; the long runs on real images are ``spykehw cosim accelerator``.
"""

from __future__ import annotations

import json

import pytest
from spykehw.rtl.accel_regs import REG, WDATA_BASE
from spykehw.rtl.accelerator import (
    Accelerator,
    AcceleratorError,
    generate_accelerator,
    weight_targets,
)
from spykehw.sim.framework.lint import lint
from spykehw.sim.accelerator.runner import build_accelerator, cosim_images, run_job
from spykehw.sim.accelerator.vectors import (
    make_job,
    params_image,
    random_events,
    random_params,
    small_point,
    weight_writes,
)

AXIS = ("tdata", "tvalid", "tready", "tlast")
AXIL = ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid", "bready",
        "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready")


@pytest.fixture(scope="module")
def point():
    return small_point()


@pytest.fixture(scope="module")
def params(point):
    return random_params(point, seed=0)


def test_ports_follow_the_axi_naming_convention(tmp_path, point):
    g = generate_accelerator(point, tmp_path)
    names = {p.name: p.direction for p in g.ports}
    expected = {"clk": "input", "rst": "input"}
    expected |= {f"s_axis_{s}": "output" if s == "tready" else "input" for s in AXIS}
    expected |= {f"m_axis_{s}": "input" if s == "tready" else "output" for s in AXIS}
    slave_out = {"awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"}
    expected |= {f"s_axil_{s}": "output" if s in slave_out else "input" for s in AXIL}
    assert names == expected
    assert all("__" not in n for n in names)


def test_json_holds_the_register_map_and_the_point_id(tmp_path, point):
    doc = json.loads(generate_accelerator(point, tmp_path).json_path.read_text())
    regs = {r["name"]: r for r in doc["params"]["register_map"]["registers"]}
    assert regs["POINT_ID"]["value"] == point.id32 == doc["params"]["point_id"]
    assert regs["POINT_ID"]["offset"] == REG["POINT_ID"]
    assert doc["params"]["result_beat"]["beats_per_image"] == point.classes + 1


def test_weight_writes_cover_every_memory_once(point, params):
    writes = weight_writes(point, params_image(point, params))
    targets = weight_targets(point)
    assert [t.name for t in targets] == ["conv", "W2", "b2", "W3", "b3"]
    assert len(writes) == sum(2 + t.depth * t.chunks for t in targets)
    assert sum(1 for a, _ in writes if a == REG["WSEL"]) == len(targets)
    assert all(0 <= v < 1 << 32 for _, v in writes)
    widest = max(t.chunks for t in targets)
    assert all(a < WDATA_BASE + 4 * widest for a, _ in writes if a >= WDATA_BASE)


def test_external_w2_rows_must_be_whole_axi_bursts(point):
    """A W2 word that is not a power-of-two beat (3 lanes x 8 bits) cannot be read over AXI4."""
    with pytest.raises(AcceleratorError, match="weights: external W2"):
        generate_accelerator(point.replace(weights="external", classifier_lanes=3), "/nonexistent")


def test_external_variant_has_an_axi4_read_master(tmp_path, point):
    g = generate_accelerator(point.replace(weights="external"), tmp_path)
    names = {p.name for p in g.ports}
    assert {f"m_axi_{s}" for s in ("arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "arready",
                                   "rid", "rdata", "rresp", "rlast", "rvalid", "rready")} <= names
    assert g.port("m_axi_rdata").width == 8 * 8      # one row word (8 lanes x 8 bits) per beat


@pytest.mark.sim
def test_cosim_matches_golden_with_malformed_frames(simulator, tmp_path, point, params):
    """12 random images with random stalls on both streams, and every malformed variant of the
    first one interleaved: each good result bit-exact with the golden model, each malformed frame
    flagged (class 0xFFFF), as many result frames as event frames, nothing hangs."""
    cosim = build_accelerator(point, simulator, tmp_path / "rtl")
    events = random_events(point, 12, seed=3, density=0.2)
    summary = cosim_images(cosim, params, events, tmp_path / "run", malformed=True, stall=0.3)
    assert summary["mismatches"] == 0, summary["first_mismatches"]
    assert summary["passed"] and summary["frames_compared"] == summary["frames_sent"] > 12


@pytest.mark.sim
def test_weights_in_the_bitstream_need_no_loading(simulator, tmp_path, point, params):
    """Memories initialised at generation (what synthesis puts into the block RAM) and not one
    weight write: results bit-exact with the golden model from the first frame on."""
    words = params_image(point, params).words
    cosim = build_accelerator(point, simulator, tmp_path / "rtl", weights=words)
    job = make_job(point, params, random_events(point, 6, seed=11, density=0.2), stall=0.2, preloaded=True)
    assert job.writes == []
    result, stats = run_job(cosim, job, tmp_path / "run")
    assert result.passed and result.report["mismatches"] == []
    assert stats["frames_received"] == 6


def test_initial_weights_are_checked(point, params):
    words = params_image(point, params).words
    with pytest.raises(AcceleratorError, match="weights: no on-chip memory 'W2'"):
        Accelerator(point.replace(weights="external"), weights=words)
    with pytest.raises(ValueError, match="init: W3 has 3 words, the memory holds 16"):
        Accelerator(point, weights=words | {"W3": words["W3"][:3]}).elaborate(None)


@pytest.mark.sim
def test_registers_errors_and_soft_reset(simulator, tmp_path, point, params):
    cosim = build_accelerator(point, simulator, tmp_path / "rtl")
    job = make_job(point, params, random_events(point, 4, seed=5, density=0.2), stall=0.2)
    result, _ = run_job(cosim, job, tmp_path / "run", testcase="registers_and_soft_reset")
    assert result.passed and result.report["mismatches"] == []


def test_cli_verilog_accelerator(tmp_path, capsys):
    from spykehw.golden.design_point import DesignPoint
    from spykehw.golden.formats import preset

    from spykehw.cli import main

    assert main(["verilog", "accelerator", "--out", str(tmp_path), "--hidden", "64", "--no-lint"]) == 0
    doc = json.loads((tmp_path / "accelerator.json").read_text())
    point = DesignPoint(formats=preset("fpga-8"), hidden=64, classifier_lanes=32)
    assert doc["params"]["point_id"] == point.id32
    assert f"{point.id32:#010x}" in capsys.readouterr().out


@pytest.mark.sim
def test_external_w2_over_axi4_matches_golden(simulator, tmp_path, point, params):
    """W2 in cocotbext-axi's AxiRam (random AR/R pauses: latency and back-pressure), one burst
    per active feature row: results bit-exact with the golden model, malformed frames flagged."""
    ext = point.replace(weights="external")
    cosim = build_accelerator(ext, simulator, tmp_path / "rtl")
    summary = cosim_images(cosim, params, random_events(ext, 8, seed=7, density=0.2), tmp_path / "run",
                           malformed=True, stall=0.3)
    assert summary["mismatches"] == 0, summary["first_mismatches"]
    assert summary["passed"] and summary["frames_compared"] == summary["frames_sent"] > 8


@pytest.mark.sim
def test_external_read_errors_flag_every_result(simulator, tmp_path, point, params):
    """The memory answers SLVERR: every result frame comes back flagged AXI_READ (class 0xFFFF),
    ERRORS holds the flag, as many result frames as event frames, nothing hangs."""
    ext = point.replace(weights="external")
    cosim = build_accelerator(ext, simulator, tmp_path / "rtl")
    job = make_job(ext, params, random_events(ext, 4, seed=9, density=0.2), read_errors=True)
    result, stats = run_job(cosim, job, tmp_path / "run")
    assert result.passed and stats["frames_received"] == len(job.frames) == 4
    assert set(stats["rtl_classes"]) == {0xFFFF}


@pytest.mark.parametrize("weights", ["on-chip", "external"])
def test_lint_clean(tmp_path, require_simulator, point, weights):
    """Both variants lint clean with their .vlt alone (the waivers are Amaranth's by-construction
    patterns, see sim/framework/lint_waivers.py)."""
    require_simulator("verilator")
    g = generate_accelerator(point.replace(weights=weights), tmp_path)
    assert [str(w) for w in lint(g.verilog_path)] == []


def test_readme_register_table_is_the_register_map():
    import re
    from pathlib import Path

    from spykehw.rtl.accel_regs import REGISTERS

    text = (Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(0x[0-9a-f]+)` \| `(\w+)` \| (\w+) \|", text, re.M)
    assert [(int(o, 16), n, a) for o, n, a in rows] == [(r.offset, r.name, r.access) for r in REGISTERS]


@pytest.mark.long
@pytest.mark.sim
def test_cli_cosim_accelerator_on_real_images(tmp_path, capsys, require_simulator):
    """``spykehw cosim accelerator`` end to end on the embedded MNIST sample (Conv1, a small
    classifier): every result equal to the golden model's."""
    from spykehw.cli import main

    require_simulator("verilator")
    status = main(["cosim", "accelerator", "--dataset", "mnist-sample", "--images", "6", "--hidden", "16",
                   "--classifier-lanes", "16", "--epochs", "1", "--malformed", "--no-optimize",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "13 frames sent, 13 result frames compared" in out and "0 mismatches" in out


def test_misaligned_register_accesses_answer_slverr(point):
    """AXI4-Lite driven by hand in the Amaranth simulator (cocotbext-axi aligns write addresses
    itself): a write to CONTROL + 1 answers SLVERR and changes nothing, a read of MAGIC + 2
    answers SLVERR with data 0; the aligned accesses then work."""
    from amaranth.sim import Simulator
    from spykehw.rtl.accel_regs import RegisterFile
    from spykehw.rtl.accelerator import id_constants
    from spykehw.rtl.axi import RESP_OKAY, RESP_SLVERR

    dut = RegisterFile(weight_targets(point), id_constants(point))
    bus = dut.bus
    got = []

    async def bench(ctx):
        async def write(addr, value):
            ctx.set(bus.awaddr, addr)
            ctx.set(bus.wdata, value)
            ctx.set(bus.awvalid, 1)
            ctx.set(bus.wvalid, 1)
            ctx.set(bus.bready, 1)
            await ctx.tick()
            ctx.set(bus.awvalid, 0)
            ctx.set(bus.wvalid, 0)
            while not ctx.get(bus.bvalid):
                await ctx.tick()
            resp = ctx.get(bus.bresp)
            await ctx.tick()
            return resp

        async def read(addr):
            ctx.set(bus.araddr, addr)
            ctx.set(bus.arvalid, 1)
            ctx.set(bus.rready, 1)
            await ctx.tick()
            ctx.set(bus.arvalid, 0)
            while not ctx.get(bus.rvalid):
                await ctx.tick()
            out = (ctx.get(bus.rdata), ctx.get(bus.rresp))
            await ctx.tick()
            return out

        got.append(await write(REG["CONTROL"] + 1, 1))
        got.append(await read(REG["CONTROL"]))
        got.append(await read(REG["MAGIC"] + 2))
        got.append(await write(REG["CONTROL"], 1))
        got.append(await read(REG["CONTROL"]))
        got.append(await read(REG["MAGIC"]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [RESP_SLVERR, (0, RESP_OKAY), (0, RESP_SLVERR), RESP_OKAY, (1, RESP_OKAY),
                   (0x53504B48, RESP_OKAY)]
