"""``--waves``: a co-simulation records an FST waveform (what GTKWave and Surfer open) from
either simulator, in the run's folder; checked on one short conv-core run."""

from __future__ import annotations

from pathlib import Path

import pytest
from spykehw.sim.conv.committed import committed_path
from spykehw.sim.conv.vector_gen import KIND, core_config
from spykehw.sim.framework.toolchain import SIMULATORS, require_simulator
from spykehw.sim.framework.vectors import read_vectors

# An FST file opens with its header block: block type FST_BL_HDR (0), then the block's length,
# 329 bytes, as a big-endian 64-bit number (the FST specification, fstapi.h).
FST_HEADER = bytes([0]) + (329).to_bytes(8, "big")


@pytest.mark.sim
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_one_image_leaves_an_fst_waveform(simulator, tmp_path):
    from spykehw.sim.conv.cosim import build_conv_cosim, run_conv_cosim

    require_simulator(simulator)
    path = committed_path("fpga-16")
    vs = read_vectors(path, kind=KIND)
    cosim = build_conv_cosim(core_config(vs, 30), simulator, tmp_path / "build", waves=True)
    out = run_conv_cosim(cosim, path, tmp_path / "image-2", images=[2], waves=True)
    assert out.passed
    wave = Path(out.result.waveform)
    assert wave.suffix == ".fst" and wave.parent == tmp_path / "image-2"
    data = wave.read_bytes()
    assert data[:9] == FST_HEADER and len(data) > 1000


def fst(path) -> bytes:
    data = Path(path).read_bytes()
    assert Path(path).suffix == ".fst" and data[:9] == FST_HEADER and len(data) > 1000
    return data


@pytest.mark.sim
def test_the_accelerator_runs_leave_one_fst_per_chunk(tmp_path):
    from spykehw.sim.accelerator.runner import build_accelerator, cosim_images
    from spykehw.sim.accelerator.vectors import random_events, random_params, small_point

    require_simulator("icarus")
    point = small_point()
    cosim = build_accelerator(point, "icarus", tmp_path / "rtl", waves=True)
    summary = cosim_images(cosim, random_params(point, seed=0), random_events(point, 2, seed=3, density=0.2),
                           tmp_path / "run", chunk=1, stall=0.2)
    assert summary["passed"]
    assert [Path(w).parent.parent.name for w in summary["waveforms"]] == ["part0000", "part0001"]
    for w in summary["waveforms"]:
        fst(w)


@pytest.mark.sim
def test_the_learning_run_leaves_an_fst(tmp_path):
    from spykehw.sim.conv.vector_gen import core_config as conv_core_config
    from spykehw.sim.learning.cosim import build_learn_cosim, run_learn_cosim
    from spykehw.sim.learning.vector_gen import committed_path as learn_path
    from spykehw.sim.learning.vector_gen import read_learn_vectors

    require_simulator("icarus")
    path = learn_path("conv1-fpga-16")
    vs = read_learn_vectors(path)
    cosim = build_learn_cosim(conv_core_config(vs, 30, learning=True), "icarus", tmp_path / "build", waves=True)
    res = run_learn_cosim(cosim, path, tmp_path / "run", images=1, waves=True)
    assert res.passed and Path(res.result.waveform).parent == tmp_path / "run"
    fst(res.result.waveform)


def test_every_cosim_block_and_verify_take_waves():
    from spykehw.cli import build_parser
    from spykehw.cli_flags import leaf_parsers

    paths = {p: leaf for p, leaf in leaf_parsers(build_parser())}
    for path in [("cosim", b) for b in ("conv", "classifier", "accelerator", "learn")] + [("verify",)]:
        options = {o for a in paths[path]._actions for o in a.option_strings}
        assert "--waves" in options, path


def test_learn_waves_need_a_folder(capsys):
    from spykehw.cli import main

    assert main(["cosim", "learn", "--waves", "--images", "1"]) == 2
    assert "--waves: needs --out DIR" in capsys.readouterr().err


@pytest.mark.sim
def test_the_api_cosimulation_keeps_its_fst(tmp_path):
    import spykehw
    from netfactory import make_run
    from spykehw.data import load_sample
    from spykehw.golden.errors import SpykehwError

    pytest.importorskip("amaranth")
    require_simulator("icarus")
    net = spykehw.load(make_run(tmp_path / "net").folder)
    images = load_sample().test_images[:1]
    with pytest.raises(SpykehwError, match="waves: needs a folder"):
        net.cosimulate(images, simulator="icarus", waves=True)
    result = net.cosimulate(images, simulator="icarus", folder=tmp_path / "cosim", waves=True)
    assert result.passed and Path(result.waveform).is_relative_to(tmp_path / "cosim")
    fst(result.waveform)
