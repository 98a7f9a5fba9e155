"""The hardware stage of the main job (spykehw.hw_flow): Verilog of both blocks, lint, and the
end-to-end co-simulation of a few images, on a small but real model (Conv1 trained by STDP on
300 images of the embedded MNIST sample, a 3630 -> 32 -> 10 classifier trained for one epoch on
1,000 of its images).

The oracle is the golden integer pipeline: the chain's class must equal the golden class for
every image, and every spike, feature and classifier output must be equal.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from spykehw.golden.classifier_int import forward_int
from spykehw.golden.formats import preset
from spykehw.golden.options import ClassifierOptions, NetworkOptions
from spykehw.golden.pipeline import extract_features, train_conv1
from spykehw.sim.classifier.vector_gen import small_classifier

from spykehw.data import load_dataset
from spykehw.output import RunFolder


class Report:
    def __init__(self, folder):
        self.folder, self.lines, self.results = folder, [], {}

    def say(self, line):
        self.lines.append(line)

    def result(self, key, value):
        self.results[key] = value
        self.folder.result(key, value)


@pytest.fixture(scope="module")
def small_model():
    fmt = preset("fpga-16")
    opts = NetworkOptions(classifier=ClassifierOptions(hidden=32, epochs=1))
    ds = load_dataset("mnist-sample")
    trace = train_conv1(ds.train_images[:300], opts, fmt)
    test = extract_features(ds.test_images[:8], trace.weights, opts, fmt).features
    q = small_classifier(trace.weights, fmt)
    ints = SimpleNamespace(extra={"quantized": q, "conv1_weights": trace.weights},
                           predictions=forward_int(q, test).classes, test_features=test)
    cfg = SimpleNamespace(formats=fmt, options=opts)
    return cfg, ints, ds


def run_stage(tmp_path, small_model, monkeypatch, simulator):
    from spykehw import hw_flow

    cfg, ints, ds = small_model
    monkeypatch.setattr(hw_flow, "_simulator", lambda: simulator)
    folder = RunFolder(tmp_path, "run")
    report = Report(folder)
    hw_flow.run_hardware_stage(cfg, ints, ds, folder, report)
    return folder, report


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_hardware_stage_end_to_end(tmp_path, small_model, monkeypatch, require_simulator, simulator):
    require_simulator(simulator)
    require_simulator("verilator")          # the lint
    folder, report = run_stage(tmp_path, small_model, monkeypatch, simulator)
    hw = report.results["hardware"]
    cosim = hw["cosim"]
    assert cosim["simulator"] == simulator and cosim["images"] == 8
    assert cosim["passed"] and cosim["mismatches"] == 0, report.lines
    assert cosim["class_equals_golden"] == 8
    assert cosim["rtl_classes"] == cosim["golden_classes"]
    assert cosim["golden_features_consistent"]
    assert hw["lint"] == {"conv_core": [], "classifier": []}
    manifest = json.loads((folder.path / "manifest.json").read_text())
    for name in ("hardware/classifier.v", "hardware/conv_core.v", "hardware/e2e_rtl_outputs.npz"):
        assert name in manifest["files"]
    assert any(line.startswith("[hardware] end to end") for line in report.lines)
    assert hw["seconds"]["total"] > 0


def test_hardware_stage_without_simulators(tmp_path, small_model, monkeypatch):
    """No simulator: the Verilog is still written, the co-simulation is reported as skipped."""
    from spykehw import hw_flow

    monkeypatch.setattr(hw_flow, "find_verilator", lambda: None)
    folder, report = run_stage(tmp_path, small_model, monkeypatch, None)
    hw = report.results["hardware"]
    assert hw["cosim"] is None and hw["lint"] == {}
    assert (folder.path / "hardware" / "classifier.v").is_file()
    assert any("co-simulation skipped: no simulator" in line for line in report.lines)
