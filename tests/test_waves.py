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
