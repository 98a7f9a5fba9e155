"""FPGA study of the accelerator top: its block figures (model, or measured by a co-simulation
summary), the named external memories' bandwidth model checked by hand, several placement seeds
with the median Fmax (each seed's figure re-read from its own nextpnr log), and the command
line's checks. The whole top on ECP5-85k (minutes) is a ``long`` run."""

from __future__ import annotations

import json
import re
import statistics

import pytest
from spykehw.golden.formats import preset

from spykehw.cli import main
from spykehw.fpga.bench import read_bench
from spykehw.fpga.blocks import BlockSettings, build_blocks
from spykehw.fpga.memories import MEMORIES, memory_bound_table

pytest.importorskip("amaranth")


def test_sdram_at_133_mhz_by_hand():
    """16-bit SDR at 133 MHz: peak 266 MB/s; row miss 18 + 18 + 3 x 7.519 ns = 58.56 ns; a
    256-byte burst takes 58.56 + 962.4 ns, so 256 B / 1020.96 ns = 250.7 MB/s."""
    mem = next(m for m in MEMORIES if m.name == "sdram16-133")
    assert mem.peak_bytes_per_s == pytest.approx(266e6)
    assert mem.row_miss_ns == pytest.approx(36 + 3 * 1000 / 133)
    assert mem.effective_bytes_per_s(256) == pytest.approx(256 / ((36 + 3000 / 133) * 1e-9 + 256 / 266e6))
    assert mem.effective_bytes_per_s(256) / 1e6 == pytest.approx(250.7, abs=0.1)


def test_memory_bound_images_per_second():
    """24,820 bytes in 97 bursts per image (what the external co-simulation measured at
    3630-256-47): DDR3-800 peak 1.6 GB/s, 45 ns per row miss, 255.9-byte bursts."""
    rows = {r["name"]: r for r in memory_bound_table(24820, 97, 20000.0)}
    ddr = rows["ddr3-16-800"]
    burst = 24820 / 97
    eff = burst / (45e-9 + burst / 1.6e9)
    assert ddr["effective_bytes_per_s"] == pytest.approx(eff)
    assert ddr["memory_images_per_second"] == pytest.approx(eff / 24820)
    assert ddr["images_per_second"] == pytest.approx(min(eff / 24820, 20000.0))
    assert rows["sdram16-100"]["limited_by"] == "memory"
    assert memory_bound_table(0, 0, 1000.0) == []


def _settings(**kw):
    return BlockSettings(**({"formats": preset("fpga-8"), "parallelism": 30, "lanes": 32, "hidden": 128} | kw))


def test_accelerator_block_model_figures():
    """Without a measurement: the slower block's cycles (the conv core's bound here), no
    external bytes on chip; the external variant fetches a W2 row per assumed active feature."""
    (on,) = build_blocks("accelerator", _settings()).blocks
    assert on.kind == "accelerator" and on.cycles.kind == "model"
    (conv,) = build_blocks("conv", _settings()).blocks
    assert on.cycles.value >= conv.cycles.value
    assert on.external_bytes.value == 0 and on.bursts_per_image == 0
    (ext,) = build_blocks("accelerator", _settings(variant="external", active_features=100)).blocks
    assert ext.external_bytes.value == 100 * 4 * 32 * 8 // 8       # G = 4 words of 32 x 8 bits per row
    assert ext.bursts_per_image == 100


def test_accelerator_block_takes_a_cosim_summary(tmp_path):
    """A ``spykehw cosim accelerator`` summary of the same design point supplies measured busy
    cycles, W2 bytes and bursts per image; one of another point is ignored."""
    point = _settings(variant="external").design_point()
    doc = {"point_id": point.id32, "busy_cycles_per_image": 6443.0, "frames_sent": 307, "images": 300,
           "dataset": "emnist", "simulator": "verilator", "w2_bytes_per_image": 24820.0,
           "w2_bursts_per_image": 97.0}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(doc))
    bench = read_bench([path])
    (b,) = build_blocks("accelerator", _settings(variant="external", bench=bench)).blocks
    assert (b.cycles.value, b.cycles.kind) == (6443.0, "measured")
    assert (b.external_bytes.value, b.bursts_per_image) == (24820.0, 97.0)
    (other,) = build_blocks("accelerator", _settings(variant="external", hidden=64, bench=bench)).blocks
    assert other.cycles.kind == "model"


def test_export_is_only_for_the_accelerator(tmp_path, capsys):
    assert main(["fpga", "--block", "conv", "--export", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--export: only for --block accelerator" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["1,1", "x", "-1", ""])
def test_seed_list_is_checked(tmp_path, capsys, bad):
    assert main(["fpga", "--block", "softmax", "--pnr-seeds", bad, "--out", str(tmp_path)]) == 2
    assert "--pnr-seeds" in capsys.readouterr().err


def test_fmax_is_the_median_over_seeds(tmp_path):
    """Three placement seeds of the softmax unit on ECP5-25k: each seed's Fmax is the last
    'Max frequency' line of its own nextpnr log, the report's Fmax their median."""
    assert main(["fpga", "--block", "softmax", "--target", "ecp5-25k", "--config", "fpga-8", "--pnr-seeds", "1,2,3",
                 "--quiet", "--out", str(tmp_path)]) == 0
    (folder,) = list(tmp_path.iterdir())
    report = json.loads((folder / "report.json").read_text())
    seeds = report["pnr"]["seeds"]
    assert [s["seed"] for s in seeds] == [1, 2, 3]
    for s, log in zip(seeds, ("nextpnr.log", "nextpnr-seed2.log", "nextpnr-seed3.log")):
        text = (folder / log).read_text()
        fmax = float(re.findall(r"Max frequency for clock '[^']+': ([\d.]+) MHz", text)[-1])
        assert abs(s["fmax_mhz"] - fmax) <= 0.005 + 1e-9
    assert report["pnr"]["fmax_mhz"] == pytest.approx(statistics.median(s["fmax_mhz"] for s in seeds))
    assert report["throughput"]["fmax_mhz"] == report["pnr"]["fmax_mhz"]
