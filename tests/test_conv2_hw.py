"""The conv core in the Conv2 configuration with trained-like weights on real Pool1 spike trains
(``spykehw cosim conv --layer conv2``, ``spykehw cosim learn --layer conv2``), and the run folder it
reads (:mod:`spykehw.conv2_run`).

Everything comes from the embedded MNIST sample: Conv1 STDP on 300 training images, Pool1 spike
trains (golden ``pipeline2.pool1_spikes``), Conv2 STDP (golden ``pipeline2.train_conv2``) on
300 more; no file of ../shared. The long runs (1,000 test images, 300 training images on chip)
are the commands; their figures are in the README ("Conv2 in hardware").
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from spykehw.data import load_sample
from spykehw.golden.formats import preset
from spykehw.golden.options import NetworkOptions, PoolOptions
from spykehw.golden.pipeline2 import extract_conv2, pool1_spikes, train_conv2
from spykehw.golden.pool import max_pool_spikes
from spykehw.golden.state import make_state, save_state
from spykehw.golden.stored import stable_key, write_checked_npz
from spykehw.sim.conv.cases import stdp_weights

FMT = preset("fpga-16")
OPTS = NetworkOptions(conv2_images=300)


@pytest.fixture(scope="module")
def trained():
    """Conv1 weights (golden STDP on sample rows 0..299) and Conv2 weights (golden Conv2 STDP on
    the Pool1 trains of rows 300..599): trained-like, not patterned."""
    sample = load_sample()
    w1 = stdp_weights(sample.train_images[:300], FMT)
    p1 = pool1_spikes(sample.train_images[300:600], w1, OPTS, FMT)
    tr = train_conv2(p1.events, OPTS, FMT)
    return w1, np.asarray(tr.weights, np.int64), sample


def test_infer_vectors_equal_the_second_layer(trained):
    """The Conv2 vectors' expected Pool2 features are those of the golden second layer
    (``pipeline2.extract_conv2``) for the same images, and the core config sizes the
    potentials for inputs spiking 4 times (1 with Pool1 inhibition)."""
    from spykehw.sim.conv.layer2 import conv2_core_config, conv2_infer_vectors

    w1, w2, sample = trained
    images = sample.test_images[:20]
    vs = conv2_infer_vectors(images, [f"t{i}" for i in range(20)], w1, w2, OPTS, FMT)
    want = extract_conv2(pool1_spikes(images, w1, OPTS, FMT).events, w2, OPTS, FMT).features
    assert np.array_equal(vs["features"], want)
    assert want.sum() > 20                      # trained weights: Conv2 fires on real digits
    assert vs.options["max_spikes_per_input"] == 4 and vs.options["layer"] == "conv2"
    counts = np.diff(vs["event_offsets"])
    assert counts.min() > 0
    cfg = conv2_core_config(OPTS, FMT)
    assert (cfg.maps, cfg.channels, cfg.parallelism, cfg.max_spikes_per_input) == (200, 30, 40, 4)
    assert cfg.formats.stdp == FMT.conv2_stdp
    inhib = dataclasses.replace(OPTS, pool1=PoolOptions(lateral_inhibition=True, spike_accumulation=True))
    assert conv2_core_config(inhib, FMT).max_spikes_per_input == 1 == max_pool_spikes(inhib.pool1, 12)


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_conv2_core_on_real_pool1_trains(trained, simulator, tmp_path, require_simulator):
    """The Conv2 core (200 maps, L = 40) with the trained-like weights on the Pool1 spike trains
    of real test images: every step's spikes and the Pool2 features equal the golden model."""
    from spykehw.sim.conv.cosim import build_conv_cosim, run_conv_cosim
    from spykehw.sim.conv.layer2 import conv2_core_config, conv2_infer_vectors
    from spykehw.sim.conv.vector_gen import write_vector_set

    require_simulator(simulator)
    w1, w2, sample = trained
    n = 3 if simulator == "verilator" else 1
    vs = conv2_infer_vectors(sample.test_images[:n], [f"mnist-test[{i}]" for i in range(n)], w1, w2, OPTS, FMT)
    assert len(vs["spikes"]) > 0
    path = write_vector_set(tmp_path / "conv2.npz", vs)
    cosim = build_conv_cosim(conv2_core_config(OPTS, FMT), simulator, tmp_path / "build")
    res = run_conv_cosim(cosim, path, tmp_path / "run")
    assert res.passed and res.stats["images"] == n


@pytest.mark.sim
def test_conv2_learning_on_chip(tmp_path, require_simulator):
    """``long_run_conv2`` on 2 training images (Verilator, L = 40): winners and every weight and
    snapshot weight after each image equal the golden training, which equals ``train_conv2``."""
    from spykehw.sim.learning.cosim import long_run_conv2

    require_simulator("verilator")
    sample = load_sample()
    w1 = stdp_weights(sample.train_images[:300], FMT)
    out = long_run_conv2(2, w1, OPTS, FMT, folder=tmp_path, optimize=False)
    assert out["identical"] and out["golden_equals_train_conv2"], out["mismatch_lines"]
    assert out["images"] == 2 and out["golden_winners"] > 0 and out["max_spikes_per_input"] == 4


def _run_folder(folder, w1, w2, *, key_options=OPTS):
    """A run folder as `run --layers 2` leaves it (the files this reads), the Conv2 state's key
    made from ``key_options``."""
    class Trace:       # what make_state reads of a Conv1 training trace
        weights = final_weights = w1
        snapshots = w1[None]
        snapshot_steps = np.zeros(1, np.int64)

    folder.mkdir()
    save_state(folder / "int_state.npz", make_state(Trace(), OPTS, FMT, provenance={"dataset": "mnist-sample"}))
    key = stable_key({"options": key_options.to_dict(), "formats": FMT.to_dict()})
    write_checked_npz(folder / "int_conv2_state.npz", {"conv2_weights": w2}, kind="spykehw-conv2-state",
                      key=key)
    return folder


def test_run_folder_read_and_refused(trained, tmp_path):
    """A run folder gives back its options, formats and both weight sets; a Conv2 state of
    other options is refused in one line and left in place (a user's file, not a cache)."""
    from spykehw.conv2_run import load_conv2_run
    from spykehw.errors import SpykehwError

    w1, w2, _ = trained
    run = load_conv2_run(_run_folder(tmp_path / "good", w1, w2))
    assert np.array_equal(run.conv1_weights, w1) and np.array_equal(run.conv2_weights, w2)
    assert run.formats.digest() == FMT.digest() and run.options == OPTS
    bad = _run_folder(tmp_path / "bad", w1, w2, key_options=dataclasses.replace(OPTS, conv2_images=7))
    with pytest.raises(SpykehwError, match="int_conv2_state.npz: was trained with other options"):
        load_conv2_run(bad)
    assert (bad / "int_conv2_state.npz").is_file()


def test_cli_refuses_layer2_without_a_run(tmp_path, capsys):
    from spykehw.cli import main

    assert main(["cosim", "conv", "--layer", "conv2", "--out", str(tmp_path / "runs"), "--count", "1"]) == 2
    assert "--layer conv2: needs --run RUN" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.long
@pytest.mark.sim
def test_long_conv2_commands_on_the_sample(tmp_path, require_simulator):
    """The two long commands end to end on the embedded sample (about 15 minutes): a `run
    --layers 2` folder (Conv2 STDP on 5,000 training images), its trained Conv2 on the Pool1
    trains of the 1,000 sample test images, and 300 training images of Conv2 STDP on chip."""
    from spykehw.cli import main

    require_simulator("verilator")
    assert main(["run", "--dataset", "mnist-sample", "--layers", "2", "--no-hardware", "--quiet",
                 "--conv2-images", "5000", "--epochs", "2", "--hidden", "32", "--out", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs").glob("run-*")
    assert main(["cosim", "conv", "--layer", "conv2", "--run", str(run), "--count", "1000", "--source",
                 "mnist-sample", "--quiet", "--out", str(tmp_path / "cosim")]) == 0
    (folder,) = (tmp_path / "cosim").glob("cosim-conv-*")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["images"] == 1000 and summary["mismatches"] == 0
    assert main(["cosim", "learn", "--layer", "conv2", "--run", str(run), "--images", "300",
                 "--out", str(tmp_path / "learn")]) == 0
