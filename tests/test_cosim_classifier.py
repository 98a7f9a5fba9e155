"""The generated classifier Verilog: lint, and cocotb co-simulation on Verilator and Icarus
against the committed vector files (expectations from the golden forward_int).

The classifier runs inside :class:`ClassifierHarness` (with the external-memory model, its
latency and its stalls) under a simulation top with its own clock; each cocotb run has its own
folder, and builds are shared (and cached across sessions, keyed by the Verilog). Builds record
waveforms, so a mismatch always leaves one to inspect.
"""

from __future__ import annotations

import numpy as np
import pytest
from spykehw.golden.formats import preset
from spykehw.rtl.classifier import ClassifierConfig, generate_classifier
from spykehw.sim.classifier.cosim import build_top, generate_harness, run_cosim
from spykehw.sim.classifier.vector_gen import COMMITTED, committed_path
from spykehw.sim.framework.lint import lint
from spykehw.sim.framework.runners import CosimFailure
from spykehw.sim.framework.vectors import read_vectors, write_vectors

LANES = {"adversarial-fpga-16-47": 64, "mnist-fpga-16": 16, "emnist-fpga-16": 16}
"""Lanes of the harness per committed set (others: 16 for H = 40, 8 for the extremes, H = 24)."""


def lanes_for(name: str) -> int:
    return LANES.get(name, 8 if name.startswith("extremes") else 16)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """``harness(vectors_name_or_set, lanes, w2_on_chip=False)``: the generated harness."""
    cache = {}

    def get(vs, lanes, w2_on_chip=False):
        o = vs.options
        cfg = ClassifierConfig(o["features"], o["hidden"], o["classes"], vs.formats, lanes=lanes,
                               w2_on_chip=w2_on_chip)
        if cfg not in cache:
            cache[cfg] = generate_harness(cfg, tmp_path_factory.mktemp("rtl"), ev_depth=1024,
                                          image_depth=32)
        return cache[cfg]
    return get


def cosim(simulator, design, vectors, test_dir, **kw):
    build = build_top(simulator, {"harness": design}, waves=True)
    return run_cosim(build, design, vectors, test_dir, **kw)


# --- lint ---------------------------------------------------------------------------------------

@pytest.mark.sim
@pytest.mark.parametrize("features, hidden, classes, lanes, name, on_chip", [
    (3630, 1500, 47, 64, "fpga-16", False),         # the default: spykehw verilog classifier
    (3630, 1000, 10, 32, "fpga-8", False),
    (5, 3, 2, 1, "edge-4", True),                   # one lane, W2 on chip
    (100, 70, 13, 7, "paper-float-equivalent", False),     # lanes not a power of two
    (2, 3, 2, 3, "fpga-16", True),                  # G = 1: registers, not memories
    (40, 40, 10, 40, "fpga-8", False),
])
def test_lint_clean(tmp_path, require_simulator, features, hidden, classes, lanes, name, on_chip):
    require_simulator("verilator")
    cfg = ClassifierConfig(features, hidden, classes, preset(name), lanes=lanes, w2_on_chip=on_chip)
    g = generate_classifier(cfg, tmp_path)
    assert [str(w) for w in lint(g.verilog_path)] == []


# --- co-simulation ------------------------------------------------------------------------------

ICARUS = [("icarus", n) for n in COMMITTED]
VERILATOR = [("verilator", n) for n in ("adversarial-fpga-16", "emnist-fpga-16", "extremes+-fpga-16")]
VERILATOR += [pytest.param("verilator", n, marks=pytest.mark.long)
              for n in COMMITTED if n not in ("adversarial-fpga-16", "emnist-fpga-16", "extremes+-fpga-16")]


@pytest.mark.sim
@pytest.mark.parametrize("simulator, name", ICARUS + VERILATOR)
def test_cosim_matches_committed_vectors(harness, require_simulator, tmp_path, simulator, name):
    require_simulator(simulator)
    vs = read_vectors(committed_path(name), kind="classifier")
    design = harness(vs, lanes_for(name))
    result = cosim(simulator, design, committed_path(name), tmp_path)
    n, o = len(vs["counts"]), vs.options
    assert result.passed and result.report["mismatches"] == []
    assert result.report["checked"] == n * (o["hidden"] + 2 * o["classes"] + 1)
    assert result.waveform is not None and result.waveform.stat().st_size > 0


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cosim_with_latency_and_stalls(harness, require_simulator, tmp_path, simulator):
    """A slow, misbehaving memory (latency 20, back-pressure and gaps on half the cycles) and
    stalls on the feature and output streams change no value; the memory model counts one
    request per active feature and G words per request."""
    require_simulator(simulator)
    name = "adversarial-fpga-16"
    vs = read_vectors(committed_path(name), kind="classifier")
    design = harness(vs, 16)
    dump = tmp_path / "out.npz"
    result = cosim(simulator, design, committed_path(name), tmp_path / "run", stall=0.5, latency=20,
                   dump=dump)
    assert result.passed
    out = np.load(dump)
    assert int(out["requests"]) == len(vs["indices"])
    assert int(out["words_fetched"]) == len(vs["indices"]) * 3          # G = ceil(40 / 16)
    np.testing.assert_array_equal(out["classes"], vs["classes"])


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cosim_w2_on_chip(harness, require_simulator, tmp_path, simulator):
    require_simulator(simulator)
    name = "adversarial-fpga-8"
    vs = read_vectors(committed_path(name), kind="classifier")
    result = cosim(simulator, harness(vs, 16, w2_on_chip=True), committed_path(name), tmp_path)
    assert result.passed


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cosim_reports_a_corrupted_expectation(harness, require_simulator, tmp_path, simulator):
    """One expected logit off by one must fail the run, naming vector, image (and its case),
    field, index, expected and found values, and leave a waveform."""
    require_simulator(simulator)
    good = read_vectors(committed_path("adversarial-fpga-16"), kind="classifier")
    image, cls = 4, 7
    logits = good["logits"].copy()
    found = int(logits[image, cls])
    logits[image, cls] += 1
    bad = write_vectors(tmp_path / "corrupt.npz", "classifier", {**good.arrays, "logits": logits},
                        formats=good.formats, options=good.options, seed=good.seed,
                        description="adversarial-fpga-16 with one expected logit off by one")
    with pytest.raises(CosimFailure) as info:
        cosim(simulator, harness(good, 16), bad, tmp_path / "run")
    result = info.value.result
    case = good.options["cases"][image]
    expected_line = (f"vector corrupt.npz item {image} ({case}) field logits[{cls}]: "
                     f"expected {found + 1}, found {found}")
    (m,) = result.report["mismatches"]
    # and where it shows: the core's logit stream, at the image's last output cycle
    assert m["message"] == f"{expected_line} [classifier_sim_top.harness.core.o_logits__payload, cycle {m['cycle']}]"
    assert 0 < m["cycle"] and m["signal"] == "classifier_sim_top.harness.core.o_logits__payload"
    assert expected_line in str(info.value)
    assert str(result.waveform) in str(info.value)
    assert result.waveform.stat().st_size > 0


# --- end to end: conv core RTL -> classifier RTL ----------------------------------------------------

@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_end_to_end_committed_images(require_simulator, tmp_path, simulator):
    """The 8 MNIST test images of the committed conv vectors, with their Conv1 weights: golden
    encoding -> conv core RTL -> the features it emits, in its order -> classifier RTL (a
    3630 -> 32 -> 10 classifier trained on the embedded sample). Every spike, feature, hidden
    bit, logit, class and word equal to the golden model's; the chain's class is the golden
    class for every image."""
    from spykehw.golden.options import ConvOptions
    from spykehw.rtl.conv_config import ConvCoreConfig
    from spykehw.sim.classifier.cosim import build_chain, run_chain
    from spykehw.sim.classifier.vector_gen import (
        chain_vectors,
        small_classifier,
        write_vector_set,
    )
    from spykehw.sim.conv.committed import committed_path as conv_path
    from spykehw.sim.conv.vector_gen import write_vector_set as write_conv

    from spykehw.data import load_dataset

    require_simulator(simulator)
    committed = read_vectors(conv_path("fpga-16"), kind="conv-infer")
    rows = [i for i, c in enumerate(committed.options["cases"]) if c.startswith("mnist-test")]
    weights = committed["weights"][0]
    fmt = committed.formats
    q = small_classifier(weights, fmt)
    labels = load_dataset("mnist-sample").test_labels[:len(rows)]
    conv_vs, clf_vs = chain_vectors(fmt, weights, q, committed["images"][rows], labels, source="mnist-test")
    np.testing.assert_array_equal(conv_vs["features"], committed["features"][rows])     # same golden
    chain = build_chain(ConvCoreConfig(ConvOptions(), fmt, steps=12, parallelism=30),
                        ClassifierConfig(3630, 32, 10, fmt, lanes=32), simulator, tmp_path / "rtl")
    result = run_chain(chain, write_conv(tmp_path / "conv.npz", conv_vs),
                       write_vector_set(tmp_path / "clf.npz", clf_vs), tmp_path / "run", dump=tmp_path / "out.npz")
    assert result.passed and result.report["mismatches"] == []
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["classes"], clf_vs["classes"])
    assert int(out["conv_mismatches"]) == 0
    # the classifier got the conv core's features, in the conv core's order
    assert out["feature_counts"].tolist() == [int(f.sum()) for f in conv_vs["features"]]


# --- long runs (pytest -m long) --------------------------------------------------------------------

@pytest.mark.long
@pytest.mark.sim
def test_long_mnist_10000_images_classifier(require_simulator, tmp_path):
    """The whole MNIST test set through the classifier RTL on Verilator: zero mismatches."""
    import json

    from spykehw.sim.classifier.long_run import long_run_classifier

    require_simulator("verilator")
    summary = long_run_classifier("mnist", 10000, folder=tmp_path)
    print(json.dumps(summary, indent=2))
    assert summary["passed"] and summary["mismatches"] == 0, summary["first_mismatches"]
    assert summary["rtl_classes_equal_golden"] == summary["images"] == 10000


@pytest.mark.long
@pytest.mark.sim
def test_long_emnist_1000_images_end_to_end(require_simulator, tmp_path):
    """1,000 EMNIST-47 test images through both blocks on Verilator: the chain's class equals
    the golden class for every image."""
    import json

    from spykehw.sim.classifier.long_run import long_run_chain

    require_simulator("verilator")
    summary = long_run_chain("emnist", 1000, folder=tmp_path)
    print(json.dumps(summary, indent=2))
    assert summary["passed"] and summary["mismatches"] == 0, summary["first_mismatches"]
    assert summary["chain_class_equals_golden"] == summary["images"] == 1000
