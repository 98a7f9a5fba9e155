"""The generated Pool1 Verilog co-simulated (cocotb, Verilator and Icarus) against ``pool1``
vector sets made by the golden ``pool_spikes`` from real Conv1 spikes (the golden ``run_conv`` on
the embedded MNIST sample's images of the committed ``fpga-16`` conv vectors), in all three modes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from spykehw.golden.formats import preset
from spykehw.golden.options import NetworkOptions, PoolOptions
from spykehw.sim.conv.cases import pattern_weights
from spykehw.sim.conv.committed import committed_path
from spykehw.sim.framework.images import mnist_test_images
from spykehw.sim.framework.runners import CosimFailure
from spykehw.sim.framework.vectors import read_vectors, write_vectors
from spykehw.sim.pool1.chain import build_chain_cosim, chain_vectors, run_chain_cosim, write_chain_vectors
from spykehw.sim.pool1.cosim import build_pool1_cosim, run_pool1_cosim
from spykehw.sim.pool1.vector_gen import pool1_config, real_pool1_vectors, write_vector_set

MODES = ("or", "accumulate", "inhibit")


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool1-vectors")
    return {mode: write_vector_set(folder / f"{mode}.npz", real_pool1_vectors(mode)) for mode in MODES}


@pytest.fixture(scope="module")
def cosim(vectors, tmp_path_factory):
    cache = {}

    def get(simulator, mode):
        if (simulator, mode) not in cache:
            cfg = pool1_config(read_vectors(vectors[mode]))
            cache[simulator, mode] = build_pool1_cosim(cfg, simulator, tmp_path_factory.mktemp(f"{simulator}-{mode}"))
        return cache[simulator, mode]
    return get


def test_real_vectors_are_not_trivial(vectors):
    counts = {mode: len(read_vectors(vectors[mode])["events"]) for mode in MODES}
    spikes = len(read_vectors(vectors["or"])["spikes"])
    # accumulation repeats every pool spike to the end; inhibition keeps one per location
    assert spikes > 500 and counts["inhibit"] < counts["or"] < counts["accumulate"]


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("mode", MODES)
def test_cosim_matches_golden(cosim, vectors, require_simulator, tmp_path, simulator, mode):
    require_simulator(simulator)
    vs = read_vectors(vectors[mode])
    n = len(vs["spike_offsets"]) - 1
    for stall in ("", "0.3:5"):
        result = run_pool1_cosim(cosim(simulator, mode), vectors[mode], tmp_path / (stall or "free"), stall=stall)
        assert result.passed and result.report["mismatches"] == []
        # one check per output transfer: every event and every step's marker
        assert result.report["checked"] == len(vs["events"]) + n * pool1_config(vs).steps


@pytest.mark.sim
def test_cosim_reports_a_wrong_expectation(cosim, vectors, require_simulator, tmp_path):
    """One expected event moved to another map must fail the run, naming image and values."""
    require_simulator("icarus")
    good = read_vectors(vectors["inhibit"])
    events = good["events"].copy()
    k = len(events) // 2
    events[k, 1] = (events[k, 1] + 1) % pool1_config(good).maps
    bad = write_vectors(tmp_path / "bad.npz", "pool1", {**good.arrays, "events": events},
                        formats=good.formats, options=good.options, description="one event moved")
    with pytest.raises(CosimFailure) as info:
        run_pool1_cosim(cosim("icarus", "inhibit"), bad, tmp_path / "run")
    messages = [m["message"] for m in info.value.result.report["mismatches"]]
    image = int(np.searchsorted(good["event_offsets"], k, side="right") - 1)
    assert messages and all(f"item {image} (mnist-test[{image}])" in m for m in messages)


@pytest.mark.sim
@pytest.mark.long       # about 2.5 minutes (the Conv2 core's Icarus build)
def test_chain_conv1_pool1_conv2_on_icarus(require_simulator, tmp_path):
    """Conv1 core -> Pool1 (inhibition: the conv core's spike potentials decide) -> Conv2 core on
    two real images: the Conv2 spikes and Pool2 features equal the golden second layer's."""
    require_simulator("icarus")
    opts = replace(NetworkOptions(), pool1=PoolOptions(lateral_inhibition=True))
    fmt = preset("fpga-16")
    w1 = np.asarray(read_vectors(committed_path("fpga-16"))["weights"][0])
    w2 = pattern_weights(opts.conv2, fmt.conv.weight_bits)
    vs = chain_vectors(mnist_test_images()[:2], ["mnist-test[0]", "mnist-test[1]"], w1, w2, opts, fmt)
    assert len(vs["spikes"]) > 0 and len(vs["pool_events"]) > 20
    vectors = write_chain_vectors(tmp_path / "chain.npz", vs)
    design, build = build_chain_cosim(opts, fmt, w1, w2, "icarus", tmp_path / "chain")
    assert design.params["pool1"]["mode"] == "inhibit" and design.params["conv1"]["spike_potentials"]
    summary = run_chain_cosim(design, build, vectors, tmp_path / "runs")
    assert summary["failures"] == [] and summary["mismatches"] == 0 and summary["images"] == 2
