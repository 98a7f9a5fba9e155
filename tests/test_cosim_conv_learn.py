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
def test_verilator_epochs_and_snapshots(tmp_path, require_simulator):
    """A tiny layer (4 maps 3x3 on 2x8x8, T = 5), two epochs of 7 random images, a snapshot every
    11 steps (inside images; the epoch boundary moves them), random stalls: winners, weights and
    the snapshot copy after every image equal the golden ``train_conv(epochs=2)``, and the
    weights read from the core at the end are the golden final weights and
    ``last_snapshot_weights``."""
    import dataclasses

    from spykehw.golden.formats import preset
    from spykehw.sim.learning.cosim import build_learn_cosim, run_learn_cosim
    from spykehw.sim.learning.vector_gen import make_learn_vectors, write_vector_set
    from test_rtl_conv_learn import TINY, _tiny_sequence

    require_simulator("verilator")
    opts = dataclasses.replace(TINY, sample_interval=1)
    fmt = preset("fpga-16")
    events = _tiny_sequence(1, 7, 5)
    w0 = np.random.default_rng(2).integers(150 * 256, 230 * 256, size=(4, 2, 3, 3))
    vs = make_learn_vectors(fmt, opts, w0, events, [f"r{i}" for i in range(7)], steps=5, epochs=2)
    assert vs.options["epoch_images"] == 7 and len(vs["weights"]) == 14
    path = write_vector_set(tmp_path / "epochs.npz", vs)
    cosim = build_learn_cosim(core_config(vs, 2, learning=True), "verilator", tmp_path / "build")
    res = run_learn_cosim(cosim, path, tmp_path / "run", stall=True, weights_out=tmp_path / "w.npz")
    assert res.passed and res.stats["images"] == 14

    from spykehw.golden.arithmetic import int_arithmetic
    from spykehw.golden.conv_training import train_conv
    from spykehw.golden.spikes import SpikeEvents
    from spykehw.sim.framework.vectors import ragged

    tr = train_conv(SpikeEvents(*ragged(events), 5, (2, 8, 8)), w0, opts, int_arithmetic(opts, fmt),
                    epochs=2)
    got = np.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(got["weights"], tr.final_weights)
    np.testing.assert_array_equal(got["snapshot"], tr.weights)      # last_snapshot_weights
    assert (np.asarray(vs["snapshots"]) != np.asarray(vs["weights"])).any()


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
