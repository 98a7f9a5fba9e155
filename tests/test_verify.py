"""The verification ladder (spykehw.verify, ``spykehw verify``): levels below the integer model
equal it; a deliberately corrupted Conv1 weight in the hardware levels is found at the first
image whose golden features that weight changes (found here independently, with the golden model
and the corrupted weights); the comparison itself on hand-made results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from netfactory import make_run
from spykehw.golden.pipeline import extract_features

from spykehw.cli import main
from spykehw.data import load_sample
from spykehw.verify import (
    LevelResult,
    VerifyError,
    agreement,
    corrupted,
    first_difference,
)

N = 3


def level(name, classes, words, features, inside=None):
    return LevelResult(name, np.array(classes), None if words is None else np.array(words),
                       [np.array(f, np.int64) for f in features], 0.0, inside)


def test_first_difference_by_hand():
    ref = level("int", [1, 2], [[3, 1], [0, 4]], [[5, 9], [7]])
    assert first_difference(ref, level("x", [1, 2], [[3, 1], [0, 4]], [[5, 9], [7]])) is None
    d = first_difference(ref, level("x", [1, 0], [[3, 1], [0, 4]], [[5, 9], [7, 8]]))
    assert d["image"] == 1 and d["what"] == "features" and "missing [], extra [8]" in d["detail"]
    d = first_difference(ref, level("x", [1, 0], [[3, 1], [0, 4]], [[5, 9], [7]]))
    assert d == {"image": 1, "what": "class", "detail": "class 0, golden 2"}
    d = first_difference(ref, level("x", [1, 2], [[3, 2], [0, 4]], [[5, 9], [7]]))
    assert d == {"image": 0, "what": "softmax", "detail": "softmax word 1: 2, golden 1"}
    d = first_difference(ref, level("x", [1, 2], [[3, 1], [0, 4]], [[5, 9], [7]], inside=False))
    assert d["what"] == "inside"
    row = agreement(ref, level("x", [1, 0], [[3, 1], [0, 5]], [[5, 9], [7]]))
    assert (row["classes"], row["softmax"], row["features"], row["equal"]) == (1, 1, 2, False)


def test_corrupted_weight_by_hand():
    w = np.zeros((2, 2, 5, 5), np.int64)
    w[1, 0, 2, 3] = 5
    c = corrupted(w, (1, 0, 2, 3), 8)
    assert c[1, 0, 2, 3] == 250 and np.count_nonzero(c != w) == 1 and w[1, 0, 2, 3] == 5
    with pytest.raises(VerifyError, match="--corrupt-weight: 2,0,0,0 is not an index"):
        corrupted(w, (2, 0, 0, 0), 8)
    with pytest.raises(VerifyError, match="not an index"):
        corrupted(w, (-1, 0, 0, 0), 8)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("net"))


def run_json(argv, capsys):
    status = main([str(a) for a in argv] + ["--json", "--quiet"])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.sim
def test_every_level_equals_the_integer_model(net, capsys, require_simulator):
    pytest.importorskip("amaranth")
    require_simulator("icarus")
    status, doc = run_json(["verify", net.folder, "--images", N, "--levels", "float,int,amaranth,icarus"],
                           capsys)
    rows = {r["level"]: r for r in doc["levels"]}
    assert list(rows) == ["float", "int", "amaranth", "icarus"]
    for name in ("amaranth", "icarus"):
        r = rows[name]
        assert r["equal"] and (r["classes"], r["softmax"], r["features"]) == (N, N, N) and r["inside"]
    assert "not meant to be equal" in rows["float"]["verdict"]
    assert doc["first_differences"] == [] and status == 0


def golden_spikes(net, weights, image: int) -> set[tuple[int, int, int, int]]:
    """The golden Conv1 spikes (step, map, row, column) of one sample test image."""
    from spykehw.sim.classifier.vector_gen import chain_vectors
    from spykehw.sim.conv.vector_gen import image_spikes

    images = load_sample().test_images[image:image + 1]
    conv_vs, _ = chain_vectors(net.fmt, weights, net.q, images, np.zeros(1, np.int64), source="images")
    return {tuple(int(v) for v in row) for row in image_spikes(conv_vs, 0)}


def changed_images(net, index) -> np.ndarray:
    images = load_sample().test_images[:N]
    golden = extract_features(images, net.int_weights, net.opts, net.fmt).features
    bad = extract_features(images, corrupted(net.int_weights, index, net.fmt.conv.weight_bits),
                           net.opts, net.fmt).features
    return np.flatnonzero(np.any(bad != golden, axis=1))


def corrupting_weight(net) -> tuple[int, ...]:
    """A weight whose corruption changes the golden features of some of the first N images."""
    for index in [(m, c, 2, 2) for m in range(30) for c in range(2)]:
        if len(changed_images(net, index)):
            return index
    raise AssertionError("no single weight changes these images' features")


@pytest.mark.sim
def test_a_corrupted_weight_is_found_where_it_first_matters(net, capsys, tmp_path, require_simulator):
    pytest.importorskip("amaranth")
    require_simulator("icarus")
    index, changed = corrupting_weight(net), changed_images(net, corrupting_weight(net))
    status, doc = run_json(["verify", net.folder, "--images", N, "--levels", "int,amaranth,icarus",
                            "--corrupt-weight", ",".join(map(str, index)), "--waves", "--out", tmp_path],
                           capsys)
    assert status == 1
    amaranth, icarus = doc["first_differences"]
    for d in (amaranth, icarus):
        assert d["image"] == int(changed[0]) and d["what"] == "features"
        assert d["name"] == f"mnist-sample test[{int(changed[0])}]"
    assert (amaranth["level"], icarus["level"]) == ("amaranth", "icarus")
    assert icarus["waveform"].endswith(".fst") and Path(icarus["waveform"]).stat().st_size > 0
    # where in that waveform: the core's output stream, the harness's cycle and the time; the
    # step the record names is one whose golden spikes the corrupted weight changes
    assert icarus["signal"] in (f"classifier_sim_top.conv.core.o_{s}__payload" for s in ("spikes", "features"))
    assert icarus["cycle"] > 0 and icarus["time_ns"] > 0
    assert icarus["at"].startswith("conv ") and ": expected " in icarus["at"]
    m = re.fullmatch(r"conv step (\d+) map (\d+) position \((\d+), (\d+)\): expected (no spike|spike), "
                     r"found (no spike|spike)", icarus["at"])
    if m:       # the spike named differs between the golden model and the golden model of the fault
        spike = tuple(int(v) for v in m.groups()[:4])
        trained, faulty = (golden_spikes(net, w, int(changed[0])) for w in
                           (net.int_weights, corrupted(net.int_weights, index, net.fmt.conv.weight_bits)))
        assert (spike in trained, spike in faulty) == (m[5] == "spike", m[6] == "spike")
    else:
        assert icarus["at"].startswith("conv feature ")
    assert amaranth["cycle"] is None and amaranth["signal"] is None


@pytest.mark.sim
def test_without_waves_the_first_difference_is_run_again_with_its_waveform(net, capsys, tmp_path,
                                                                           require_simulator):
    pytest.importorskip("amaranth")
    require_simulator("icarus")
    index = corrupting_weight(net)
    status, doc = run_json(["verify", net.folder, "--images", N, "--levels", "int,icarus",
                            "--corrupt-weight", ",".join(map(str, index)), "--out", tmp_path], capsys)
    (d,) = doc["first_differences"]
    assert status == 1 and d["waveform"].endswith(".fst")
    assert Path(d["waveform"]).is_relative_to(tmp_path / "icarus" / f"image-{d['image']}")
    assert Path(d["waveform"]).stat().st_size > 0 and d["cycle"] > 0 and d["signal"].endswith("__payload")


@pytest.mark.sim
def test_both_simulators_locate_the_fault_at_the_same_cycle(net, capsys, tmp_path, require_simulator):
    """Two independent simulators, each run again on the first differing image with its
    waveform: the same signal, cycle, simulation time and value."""
    pytest.importorskip("amaranth")
    require_simulator("icarus")
    require_simulator("verilator")
    index = corrupting_weight(net)
    status, doc = run_json(["verify", net.folder, "--images", N, "--levels", "int,verilator,icarus",
                            "--corrupt-weight", ",".join(map(str, index)), "--out", tmp_path], capsys)
    verilator, icarus = doc["first_differences"]
    assert status == 1 and (verilator["level"], icarus["level"]) == ("verilator", "icarus")
    where = ("image", "signal", "cycle", "time_ns", "at")
    assert [verilator[k] for k in where] == [icarus[k] for k in where]
    assert verilator["cycle"] > 0 and Path(verilator["waveform"]).stat().st_size > 0


def test_waves_need_a_folder(net, capsys):
    assert main(["verify", str(net.folder), "--levels", "int", "--waves"]) == 2
    assert "--waves: needs --out DIR" in capsys.readouterr().err


def test_unknown_level_is_one_line(net, capsys):
    assert main(["verify", str(net.folder), "--levels", "int,gates"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown level 'gates'" in err and "netlist" in err


@pytest.mark.sim
def test_the_synthesised_netlist_equals_the_integer_model(net, capsys, tmp_path, require_simulator):
    """Both cores through Yosys synth_ecp5 and back into the same testbench, gate level (two
    images; the synthesis and the build are cached across runs)."""
    pytest.importorskip("amaranth")
    require_simulator("verilator")
    from spykehw.sim.framework.netlist import netlist_missing_reason

    if netlist_missing_reason():
        pytest.skip(f"netlist level unavailable: {netlist_missing_reason()}")
    status, doc = run_json(["verify", net.folder, "--images", 2, "--levels", "int,netlist", "--out", tmp_path],
                           capsys)
    (row,) = [r for r in doc["levels"] if r["level"] == "netlist"]
    assert row["equal"] and (row["classes"], row["softmax"], row["features"]) == (2, 2, 2) and row["inside"]
    assert doc["first_differences"] == [] and status == 0
    netlist = (tmp_path / "netlist" / "build" / "conv_harness_netlist.v").read_text()
    assert "TRELLIS_FF" in netlist and "LUT4" in netlist      # gate level, not the RTL
