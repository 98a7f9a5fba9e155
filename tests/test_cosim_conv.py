"""The generated conv-core Verilog (inside the free-running harness) against the committed
``conv-infer`` vectors, on Verilator and Icarus through cocotb (``spykehw.sim.conv.tb``).

One build per test (simulator and design). Verilator runs every
image of the committed files (but two dense cases of the stalled fpga-8 run); Icarus, about ten
times slower on this design (roughly 3,000 cycles/s against 30,000 for an unoptimised
Verilator build), runs a fixed subset of each file by default. With ``-m long`` every image
runs everywhere (``test_every_committed_image``). A deliberately corrupted expectation must fail,
with a report that names the file, image, step, map and position, and a waveform of that image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from spykehw.sim.conv.committed import committed_path
from spykehw.sim.conv.vector_gen import KIND, core_config
from spykehw.sim.framework.toolchain import SIMULATORS, require_simulator
from spykehw.sim.framework.vectors import read_vectors, write_vectors

# With stalls and three lane groups these dense cases cost ~200,000 cycles each; they run
# with -m long (the stall-free L = 30 run covers them every time).
VERILATOR_SKIP = {"fpga-8": ("adversarial:all_first_step@stdp", "adversarial:all_first_step@max_last")}
# Subsets for Icarus (by case label), about 3,000 cycles (a second) per file.
ICARUS_SUBSET = {
    "fpga-16": ("mnist-test[2]", "adversarial:empty@stdp", "adversarial:one_per_step@stdp"),
    "fpga-8": ("mnist-test[2]", "adversarial:empty@stdp"),
    "conv2-fpga-16": ("mnist-test[0]",),
}


def _build(name: str, parallelism: int, simulator: str, folder, potential_memory: str = "block"):
    """Verilator builds carry waveform support (recorded only when a run asks), so a failing
    image can be re-run with a waveform without a second build; Icarus builds a second,
    dumping, variant only when that happens (it compiles in seconds)."""
    from spykehw.sim.conv.cosim import build_conv_cosim

    require_simulator(simulator)
    vs = read_vectors(committed_path(name), kind=KIND)
    cfg = dataclasses.replace(core_config(vs, parallelism), potential_memory=potential_memory)
    return build_conv_cosim(cfg, simulator, folder, waves=simulator == "verilator")


def _images(name: str, simulator: str, everything: bool) -> list[int] | None:
    if everything:
        return None
    cases = list(read_vectors(committed_path(name), kind=KIND).options["cases"])
    if simulator == "verilator":
        skip = VERILATOR_SKIP.get(name, ())
        return None if not skip else [i for i, c in enumerate(cases) if c not in skip]
    return [cases.index(c) for c in ICARUS_SUBSET[name]]


def _run(cosim, name, folder, everything=False, **kw):
    from spykehw.sim.conv.cosim import run_conv_cosim

    images = _images(name, cosim.simulator, everything)
    return run_conv_cosim(cosim, committed_path(name), folder, images=images, **kw)


# One test per build (pytest-xdist gives every worker its own module fixtures, so a build
# shared by several tests would be made once per worker).
SIM_PARAMS = [pytest.param(s, marks=pytest.mark.sim) for s in SIMULATORS]


@pytest.mark.parametrize("simulator", SIM_PARAMS)
def test_fpga16_committed_vectors_and_a_corrupted_one(simulator, tmp_path):
    """Conv1, fpga-16, L = 30 (one group of lanes: the default configuration).

    Then one expected spike of mnist-test[2] is moved to another map: the run must fail, the
    report must name the file, image, step, map and position of both differences (the spike
    it expected and did not get, the one it got and did not expect), and a waveform of that
    image alone must be left.
    """
    from spykehw.sim.conv.cosim import run_conv_cosim
    from spykehw.sim.framework.runners import CosimFailure

    cosim = _build("fpga-16", 30, simulator, tmp_path / "build")
    res = _run(cosim, "fpga-16", tmp_path / "run")
    assert res.passed
    vs = read_vectors(committed_path("fpga-16"), kind=KIND)
    expected = _images("fpga-16", simulator, False)
    assert res.stats["images"] == (len(vs.options["cases"]) if expected is None else len(expected))

    image = list(vs.options["cases"]).index("mnist-test[2]")
    arrays = {k: np.array(v) for k, v in vs.arrays.items()}
    row = int(vs["spike_offsets"][image]) + 3
    t, m, u, v = (int(x) for x in arrays["spikes"][row])
    wrong = (m + 1) % 30
    arrays["spikes"][row, 1] = wrong
    bad = write_vectors(tmp_path / "corrupted.npz", vs.kind, arrays, formats=vs.formats,
                        options=vs.options, seed=vs.seed, description="one spike moved to another map")
    with pytest.raises(CosimFailure) as info:
        run_conv_cosim(cosim, bad, tmp_path / "corrupted", images=[image])
    text = str(info.value)
    assert f"vector corrupted.npz item {image} (mnist-test[2]) field step {t} map {wrong} " \
           f"position ({u}, {v}): expected spike, found no spike" in text
    assert f"field step {t} map {m} position ({u}, {v}): expected no spike, found spike" in text
    report = info.value.result.report
    assert report["vector"] == "corrupted.npz" and len(report["mismatches"]) == 2
    wave = Path(text.rsplit(f"waveform of image {image} alone: ", 1)[1].strip())
    assert wave.is_file() and wave.stat().st_size > 0


@pytest.mark.parametrize("simulator", SIM_PARAMS)
def test_fpga8_committed_vectors_with_stalls(simulator, tmp_path):
    """Conv1, fpga-8, L = 10: three lane groups (the cross-group argmax and addressing), with
    random idle cycles on the input and random ``ready`` on both outputs."""
    cosim = _build("fpga-8", 10, simulator, tmp_path / "build")
    assert _run(cosim, "fpga-8", tmp_path / "run", stall=True).passed


@pytest.mark.parametrize("simulator", SIM_PARAMS)
def test_up5k_committed_vectors_with_stalls(simulator, tmp_path):
    """The UP5K configuration (``potential_memory="spram"``: single-port potentials read and
    written in alternate cycles, the flags in block RAM), Conv1, fpga-16, L = 2 (15 groups),
    with random stalls on every stream: the same vectors as the ECP5 core."""
    cosim = _build("fpga-16", 2, simulator, tmp_path / "build", potential_memory="spram")
    assert cosim.config.spram
    assert _run(cosim, "fpga-16", tmp_path / "run", stall=True).passed


@pytest.mark.long
@pytest.mark.parametrize("simulator", SIM_PARAMS)
@pytest.mark.parametrize("name, parallelism, stall", [
    ("fpga-16", 30, False), ("fpga-8", 10, True),
    ("conv2-fpga-16", 40, False),   # Conv2: 30x11x11 -> 200x7x7, inputs spiking up to 4 times
])
def test_every_committed_image(name, parallelism, stall, simulator, tmp_path):
    """Every image of every committed file on both simulators (Icarus: tens of minutes)."""
    cosim = _build(name, parallelism, simulator, tmp_path / "build")
    res = _run(cosim, name, tmp_path / "run", everything=True, stall=stall)
    assert res.passed and res.stats["images"] == len(
        read_vectors(committed_path(name), kind=KIND).options["cases"])
