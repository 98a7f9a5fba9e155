"""The Python API (spykehw.api): the README's example runs as written (tiny sizes, embedded
sample), and what the API returns equals the golden model computed here directly from the state
files (golden.pipeline.extract_features + forward_int / classifier.predict), for a run folder,
a state file and an export folder alike.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from spykehw.golden.classifier import predict as float_predict
from spykehw.golden.classifier_int import forward_int
from spykehw.golden.pipeline import extract_features
from spykehw.golden.state import load_state

import spykehw
from spykehw.api import ApiError, Prediction

README = Path(__file__).resolve().parents[1] / "README.md"


def api_example() -> str:
    """The Python block of the README's "Python API" section."""
    text = README.read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the API section should hold one python example"
    return blocks[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from spykehw.sim.framework.toolchain import require_simulator
    require_simulator("icarus")                 # the example co-simulates on Icarus
    folder = tmp_path_factory.mktemp("readme")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        ns: dict = {}
        exec(compile(api_example(), str(README), "exec"), ns)
    finally:
        os.chdir(cwd)
    ns["folder"] = folder
    return ns


def golden_int(run: Path, images: np.ndarray):
    state = load_state(run / "int_state.npz")
    opts, fmt = state.network_options(), state.number_formats()
    x = extract_features(images, state.conv1_weights, opts, fmt).features
    c = state.classifier_int
    from spykehw.golden.classifier_int import IntClassifier
    q = IntClassifier(c["W2q"], c["b2q"], c["W3q"], c["b3q"], fmt)
    return x, forward_int(q, x)


@pytest.mark.sim
def test_readme_example_runs_and_agrees_with_golden(example):
    net, images, p = example["net"], example["images"], example["p"]
    run = Path(net.source)
    assert (run / "int_state.npz").is_file() and (run / "float_state.npz").is_file()
    assert net.models == ("float", "int") and net.classes == 10
    x, fw = golden_int(run, images)
    np.testing.assert_array_equal(example["features"], x)
    np.testing.assert_array_equal(p.classes, fw.classes)
    np.testing.assert_array_equal(p.softmax, fw.words)
    np.testing.assert_array_equal(p.logits, fw.logits)
    # the hardware: export files, Verilog, and the RTL's outputs bit for bit
    assert (example["folder"] / "export" / "memory_map.json").is_file()
    assert set(example["design"]) == {"conv_core", "classifier"}
    for g in example["design"].values():
        for suffix in (".v", ".json", ".il", ".vlt", ".core"):
            assert g.verilog_path.with_suffix(suffix).is_file(), suffix
    result = example["result"]
    assert result.passed and result.mismatches == []
    np.testing.assert_array_equal(result.classes, fw.classes[:2])
    np.testing.assert_array_equal(result.words, fw.words[:2])
    for i in range(2):
        assert sorted(result.features[i].tolist()) == np.flatnonzero(x[i]).tolist()


@pytest.mark.sim
def test_float_model_agrees_with_golden(example):
    net, images = example["net"], example["images"]
    state = load_state(Path(net.source) / "float_state.npz")
    opts = state.network_options()
    x = extract_features(images, state.conv1_weights, opts, None).features
    logits, classes = float_predict(state.classifier, x, opts.classifier)
    pf = net.predict(images, model="float")
    np.testing.assert_array_equal(pf.classes, classes)
    np.testing.assert_array_equal(pf.logits, logits)
    np.testing.assert_allclose(pf.probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.argmax(pf.probabilities, axis=1), classes)
    z = logits[0] - logits[0].max()
    np.testing.assert_allclose(pf.probabilities[0], np.exp(z) / np.exp(z).sum(), rtol=1e-12)


@pytest.mark.sim
def test_state_file_and_export_folder_predict_the_same(example):
    net, images = example["net"], example["images"]
    ref = net.predict(images)
    for source in (Path(net.source) / "int_state.npz", example["folder"] / "export"):
        other = spykehw.load(source)
        assert other.models == ("int",)
        p = other.predict(images)
        np.testing.assert_array_equal(p.classes, ref.classes)
        np.testing.assert_array_equal(p.softmax, ref.softmax)
    flt = spykehw.load(Path(net.source) / "float_state.npz")
    assert flt.models == ("float",)
    np.testing.assert_array_equal(flt.predict(images).classes, net.predict(images, model="float").classes)
    with pytest.raises(ApiError, match="no int model"):
        flt.predict(images, model="int")
    with pytest.raises(ApiError, match="needs the integer model"):
        flt.export(example["folder"] / "nope")
    with pytest.raises(ApiError, match="already an export"):
        spykehw.load(example["folder"] / "export").export(example["folder"] / "again")


@pytest.mark.sim
def test_predict_takes_paths_and_checks_arguments(example, tmp_path):
    net, images = example["net"], example["images"]
    np.save(tmp_path / "x.npy", images)
    np.testing.assert_array_equal(net.predict(tmp_path / "x.npy").classes, net.predict(images).classes)
    with pytest.raises(ApiError, match="model: expected 'float' or 'int', found 'fp32'"):
        net.predict(images, model="fp32")
    with pytest.raises(spykehw.images.ImageError, match="dtype float64"):
        net.predict(images.astype(np.float64))


def test_prediction_probabilities_of_words():
    # words are UQ0.P fractions: 128 of 2^8 is one half
    p = Prediction("int", np.array([0]), np.array([[3, 1]]), np.array([[192, 64]]), softmax_bits=8)
    np.testing.assert_array_equal(p.probabilities, [[0.75, 0.25]])
    assert len(p) == 1


def test_load_refuses_what_is_not_a_network(tmp_path):
    with pytest.raises(ApiError, match="neither float_state.npz"):
        spykehw.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        spykehw.load(tmp_path / "missing")
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(spykehw.golden.errors.SpykehwError, match="x.npz"):
        spykehw.load(tmp_path / "x.npz")


def test_import_spykehw_is_light():
    code = ("import sys, spykehw; assert 'numpy' not in sys.modules, 'numpy'; "
            "spykehw.load; bad = [m for m in ('amaranth', 'cocotb') if m in sys.modules]; "
            "assert not bad, bad; print(spykehw.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == spykehw.__version__
