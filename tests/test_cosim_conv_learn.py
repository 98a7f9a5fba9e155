"""The generated learning conv core (inside the free-running harness) against the committed
``conv-learn`` sequences, on Verilator and Icarus through cocotb (``spykehw.sim.learning.tb``).

Winners of every image and every weight after every image are compared exactly. By default
each committed file runs on one simulator (one build per test): Verilator trains the two
sequences with the most images (the default-options file, and the stochastic one with random
stalls on every stream and three lane groups), Icarus the truncate/homeostasis one (first three
images) and the Conv2-shaped one. With ``-m long`` every file runs on both. A deliberately
corrupted expectation must fail with a report that names the file, image and weight.
"""

from __future__ import annotations

import numpy as np
import pytest
from spykehw.sim.framework.vectors import write_vectors
from spykehw.sim.conv.vector_gen import core_config
from spykehw.sim.learning.vector_gen import committed_path, read_learn_vectors


def _build(name, parallelism, simulator, folder, require_simulator):
    from spykehw.sim.learning.cosim import build_learn_cosim

    require_simulator(simulator)
    vs = read_learn_vectors(committed_path(name))
    return build_learn_cosim(core_config(vs, parallelism, learning=True), simulator, folder)


@pytest.mark.sim
def test_verilator_default_sequence_and_a_corrupted_one(tmp_path, require_simulator):
    """Conv1, default options, fpga-16, L = 30; then one expected weight after image 2 is off
    by one: the run must fail naming the file, the image, the map and weight index."""
    from spykehw.sim.framework.runners import CosimFailure
    from spykehw.sim.learning.cosim import run_learn_cosim

    cosim = _build("conv1-fpga-16", 30, "verilator", tmp_path / "build", require_simulator)
    res = run_learn_cosim(cosim, committed_path("conv1-fpga-16"), tmp_path / "run")
    vs = read_learn_vectors(committed_path("conv1-fpga-16"))
    assert res.passed and res.stats["images"] == len(vs.options["cases"])

    arrays = {k: np.array(v) for k, v in vs.arrays.items()}
    arrays["weights"][2, 7, 1, 3, 4] += 1
    bad = write_vectors(tmp_path / "corrupted.npz", vs.kind, arrays, formats=vs.formats,
                        options=vs.options, seed=vs.seed, description="one weight changed")
    with pytest.raises(CosimFailure) as info:
        run_learn_cosim(cosim, bad, tmp_path / "corrupted", images=3)
    text = str(info.value)
    assert "vector corrupted.npz item 2 (mnist-train[2]) field weight map 7 c 1 kr 3 kc 4" in text


@pytest.mark.sim
def test_verilator_stochastic_lr_sequence_with_stalls(tmp_path, require_simulator):
    """fpga-8 (stochastic rounding), learning-rate levels up to the cap, L = 10 (three lane
    groups), random idle cycles on the input and random ``ready`` on all three outputs."""
    from spykehw.sim.learning.cosim import run_learn_cosim

    cosim = _build("conv1-fpga-8-lr", 10, "verilator", tmp_path / "build", require_simulator)
    assert run_learn_cosim(cosim, committed_path("conv1-fpga-8-lr"), tmp_path / "run", stall=True).passed


@pytest.mark.sim
@pytest.mark.parametrize("name, parallelism, images", [("conv1-truncate-homeo", 30, 3),
                                                       ("conv2-fpga-16", 10, None)])
def test_icarus(name, parallelism, images, tmp_path, require_simulator):
    from spykehw.sim.learning.cosim import run_learn_cosim

    cosim = _build(name, parallelism, "icarus", tmp_path / "build", require_simulator)
    res = run_learn_cosim(cosim, committed_path(name), tmp_path / "run", images=images)
    assert res.passed and res.stats["images"] == (images or len(
        read_learn_vectors(committed_path(name)).options["cases"]))


@pytest.mark.long
@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name, parallelism, stall", [
    ("conv1-fpga-16", 30, False), ("conv1-fpga-8-lr", 10, True),
    ("conv1-truncate-homeo", 15, False), ("conv2-fpga-16", 10, True)])
def test_every_committed_sequence(name, parallelism, stall, simulator, tmp_path, require_simulator):
    from spykehw.sim.learning.cosim import run_learn_cosim

    cosim = _build(name, parallelism, simulator, tmp_path / "build", require_simulator)
    res = run_learn_cosim(cosim, committed_path(name), tmp_path / "run", stall=stall)
    assert res.passed and res.stats["images"] == len(read_learn_vectors(committed_path(name)).options["cases"])
