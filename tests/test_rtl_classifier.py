# amaranth: UnusedElaboratable=no
# (the interface and parameter tests build components they never elaborate)
"""The classifier RTL in the Amaranth simulator, against hand-computed answers and the golden
``forward_int``; its widths against the integer model's; the memory model; the vector files.

Oracles: arithmetic written out by hand here (the known-answer test), the golden model
(:func:`spykehw.golden.classifier_int.forward_int`, through the vector files and directly) and
the integer model's own width derivation (:class:`IntClassifier`). Every comparison is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from amaranth import signed, unsigned
from spykehw.golden.classifier_int import IntClassifier, forward_int
from spykehw.golden.fixed import signed_width
from spykehw.golden.formats import preset
from spykehw.rtl.classifier import (
    Classifier,
    ClassifierConfig,
    ClassifierError,
    LoadTarget,
)
from spykehw.sim.classifier.harness import ClassifierHarness
from spykehw.sim.classifier.packing import (
    compare_outputs,
    feature_tokens,
    load_words,
    pack_lanes,
    split_outputs,
    unpack_lanes,
    w2_rows,
    write_bus,
)
from spykehw.sim.classifier.pysim import run_pysim
from spykehw.sim.classifier.vector_gen import (
    COMMITTED,
    SYNTHETIC,
    committed_path,
    expectations,
    image_indices,
    write_committed,
)
from spykehw.sim.framework.memory_model import MemoryModel
from spykehw.sim.framework.vectors import read_vectors

PRESETS = ("paper-float-equivalent", "fpga-16", "fpga-8", "edge-4")


def params_of(vs):
    return vs["w2"], vs["b2"], vs["w3"], vs["b3"]


def config_for(vs, lanes: int, **kw) -> ClassifierConfig:
    o = vs.options
    return ClassifierConfig(o["features"], o["hidden"], o["classes"], vs.formats, lanes=lanes, **kw)


def assert_matches(vs, run) -> None:
    mm = compare_outputs(run.outputs, hidden=vs["hidden"], logits=vs["logits"], classes=vs["classes"],
                         words=vs["words"])
    assert [m.message(vs.name) for m in mm] == []


# --- known answers, by hand ----------------------------------------------------------------------

def test_known_answers_by_hand():
    """fpga-8 (hidden weights Q1.7 in 8 bits, biases 12 bits; output weights frac 5; softmax 16
    entries of 10 bits, 8-bit words), F=4 -> H=3 -> C=2, everything worked out by hand."""
    fmt = preset("fpga-8")
    W2 = np.array([[10, -20, 5], [-3, 7, -1], [100, -128, 0], [127, 1, -2]])
    b2 = np.array([-10, 20, -4])
    W3 = np.array([[64, -32], [-100, 50], [33, 33]])
    b3 = np.array([16, -16])
    images = [[2, 0], [1], [], [3, 1, 0, 2]]
    # acc2: {0,2}: [-10+10+100, 20-20-128, -4+5+0] = [100, -128, 1] -> bits 101
    #       {1}:   [-13, 27, -5] -> 010;  {}: b2 -> 010
    #       all:   [224, -120, -2] -> 100
    hidden = [[1, 0, 1], [0, 1, 0], [0, 1, 0], [1, 0, 0]]
    # acc3: 101 -> [16+64+33, -16-32+33] = [113, -15]; 010 -> [-84, 34]; 100 -> [80, -48]
    # logits = floor(acc3 / 32)
    logits = [[3, -1], [-3, 1], [-3, 1], [2, -2]]
    lut = [math.floor(1023 * math.exp(-d) + 0.5) for d in range(16)]
    assert (lut[0], lut[4]) == (1023, 19)
    s = lut[0] + lut[4]
    big, small = min(255, (lut[0] << 8) // s), (lut[4] << 8) // s
    assert (big, small) == (251, 4)
    words = [[big, small], [small, big], [small, big], [big, small]]
    classes = [0, 1, 1, 0]
    for lanes in (1, 2, 3):
        cfg = ClassifierConfig(4, 3, 2, fmt, lanes=lanes)
        run = run_pysim(cfg, (W2, b2, W3, b3), images, latency=2)
        np.testing.assert_array_equal(run.outputs.hidden, hidden)
        np.testing.assert_array_equal(run.outputs.logits, logits)
        np.testing.assert_array_equal(run.outputs.words, words)
        np.testing.assert_array_equal(run.outputs.classes, classes)
        assert run.outputs.problems == []
        # one row request per active index, G = ceil(3 / lanes) words each
        assert run.requests == 7 and run.words == 7 * -(-3 // lanes)


# --- widths ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("F, H", [(1, 2), (3630, 1500), (3630, 1000), (484, 64), (7, 3000)])
def test_widths_equal_the_integer_models(name, F, H):
    """The RTL derives its accumulator and logit widths itself (rtl/ must not import the model);
    they must be exactly IntClassifier's."""
    fmt = preset(name)
    q = IntClassifier(np.zeros((F, H), np.int64), np.zeros(H, np.int64), np.zeros((H, 3), np.int64),
                      np.zeros(3, np.int64), fmt)
    cfg = ClassifierConfig(F, H, 3, fmt, lanes=min(H, 64))
    assert (cfg.hidden_acc_bits, cfg.output_acc_bits, cfg.logit_bits) == \
        (q.hidden_acc_bits, q.output_acc_bits, q.logit_bits)
    assert cfg.hidden_acc_range == q.hidden_acc_range and cfg.output_acc_range == q.output_acc_range


def test_signed_width_boundaries():
    assert [signed_width(lo, hi) for lo, hi in [(0, 0), (-1, 0), (0, 1), (-2, 1), (-3, 1), (-2, 2),
                                                (-128, 127), (-129, 127), (-128, 128)]] == \
        [1, 1, 2, 2, 3, 3, 8, 9, 9]


def test_default_preset_widths_by_hand():
    """fpga-16, 3630 -> 1500 -> 47: acc2 >= 3630 * -2**15 - 2**15 = -118,980,608 > -2**27: 28
    bits; acc3 <= 1500 * (2**15-1) + 2**15-1 = 49,184,267 < 2**26: 27 bits; logits: 27 - 10."""
    cfg = ClassifierConfig(3630, 1500, 47, preset("fpga-16"), lanes=64)
    assert (cfg.hidden_acc_bits, cfg.output_acc_bits, cfg.logit_bits) == (28, 27, 17)
    assert cfg.groups == 24 and cfg.padding_lanes == 36
    assert cfg.bytes_per_row == 24 * 64 * 2


# --- against the golden model --------------------------------------------------------------------

@pytest.mark.parametrize("name, lanes, latency, stall", [
    ("adversarial-fpga-16", 16, 1, 0.0),            # G = 3, 8 padding lanes
    ("adversarial-fpga-16", 40, 7, 0.3),            # G = 1: back-to-back read-modify-writes
    ("adversarial-fpga-8", 7, 3, 0.2),              # lanes not a power of two
    ("adversarial-edge-4", 1, 2, 0.0),              # one lane: G = H
    ("adversarial-paper-float-equivalent", 40, 4, 0.3),
    ("extremes+-fpga-16", 8, 1, 0.0),               # accumulators at their upper bounds
    ("extremes--fpga-16", 24, 5, 0.0),              # ... and at their lower bounds
    ("extremes+-paper-float-equivalent", 5, 1, 0.0),
    ("extremes--edge-4", 3, 2, 0.2),
])
def test_committed_synthetic_vectors(name, lanes, latency, stall):
    vs = read_vectors(committed_path(name), kind="classifier")
    run = run_pysim(config_for(vs, lanes), params_of(vs), image_indices(vs), latency=latency,
                    stall=stall, seed=3)
    assert_matches(vs, run)
    assert run.requests == len(vs["indices"])


def test_extremes_reach_the_accumulator_bounds():
    """The extremes sets are what make the widths tight: the golden accumulators of their
    all-active image are exactly the worst-case bounds."""
    for name, sign in (("extremes+-fpga-16", 1), ("extremes--fpga-16", -1)):
        vs = read_vectors(committed_path(name), kind="classifier")
        cfg = config_for(vs, 8)
        q = IntClassifier(*(np.asarray(a, np.int64) for a in params_of(vs)), vs.formats)
        fw = forward_int(q, np.ones((1, cfg.features), np.uint8))
        lo, hi = cfg.hidden_acc_range
        assert set(fw.acc2[0].tolist()) == {hi if sign > 0 else lo}
        if sign > 0:
            assert set(fw.acc3[0].tolist()) == set(cfg.output_acc_range)


@pytest.mark.parametrize("name", ["mnist-fpga-16", "emnist-fpga-16", "adversarial-fpga-16-47"])
def test_committed_real_vectors(name):
    """The first 4 images (the Amaranth simulator is slow with 47 classes; the co-simulation
    tests run every image)."""
    vs = read_vectors(committed_path(name), kind="classifier")
    n = 4
    run = run_pysim(config_for(vs, 16), params_of(vs), image_indices(vs)[:n], latency=4, stall=0.1)
    mm = compare_outputs(run.outputs, hidden=vs["hidden"][:n], logits=vs["logits"][:n],
                         classes=vs["classes"][:n], words=vs["words"][:n])
    assert [m.message(vs.name) for m in mm] == []


def test_w2_on_chip():
    """W2 kept on chip (loaded through the load bus) computes the same."""
    vs = read_vectors(committed_path("adversarial-fpga-8"), kind="classifier")
    run = run_pysim(config_for(vs, 16, w2_on_chip=True), params_of(vs), image_indices(vs), stall=0.2)
    assert_matches(vs, run)
    assert run.requests == 0        # no external memory


def test_random_classifiers_against_forward_int():
    """Random shapes, lanes and formats; the oracle is forward_int on the spot."""
    rng = np.random.default_rng(11)
    for k, name in enumerate(PRESETS):
        fmt = preset(name)
        F, H, C = (int(v) for v in rng.integers((2, 2, 2), (30, 30, 9)))
        lanes = int(rng.integers(1, H + 1))
        c = fmt.classifier
        def draw(shape, bits):
            return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape)
        W2, W3 = draw((F, H), c.hidden_weight_bits), draw((H, C), c.output_weight_bits)
        b2 = draw(H, c.hidden_weight_bits)       # small: hidden bits not all equal
        b3 = draw(C, c.output_bias_bits)
        images = [np.flatnonzero(rng.random(F) < p).tolist() for p in (0.1, 0.5, 0.9, 0.0, 1.0)]
        hidden, logits, classes, words = expectations(fmt, W2, b2, W3, b3, images)
        run = run_pysim(ClassifierConfig(F, H, C, fmt, lanes=lanes), (W2, b2, W3, b3), images,
                        latency=1 + k, stall=0.25, seed=k)
        mm = compare_outputs(run.outputs, hidden=hidden, logits=logits, classes=classes, words=words)
        assert [m.message(f"random-{name}") for m in mm] == []


def test_reload_between_images():
    """Loading other parameters while idle changes the results of the following images only."""
    a = read_vectors(committed_path("extremes+-fpga-16"), kind="classifier")
    b = read_vectors(committed_path("extremes--fpga-16"), kind="classifier")
    from amaranth.sim import Simulator
    from spykehw.sim.framework.streams import stream_get, stream_put

    cfg = config_for(a, 8, w2_on_chip=True)
    dut = Classifier(cfg)
    got = []

    async def bench(ctx):
        for vs in (a, b):
            def idle_before_each_write(ctx):
                assert ctx.get(dut.idle)
            await write_bus(ctx, dut.load, load_words(cfg, *params_of(vs)), before_each=idle_before_each_write)
            for tok in feature_tokens(image_indices(vs)[:1]):
                await stream_put(ctx, dut.i_features, tok)
            got.append([(await stream_get(ctx, dut.o_stream)).word for _ in range(cfg.classes)])
            while not ctx.get(dut.idle):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [a["words"][0].tolist(), b["words"][0].tolist()]


# --- schedule ------------------------------------------------------------------------------------

def test_cycles_per_image():
    """The hidden layer's schedule, by hand (ClassifierConfig.cycles_hidden): with the next
    image's indices waiting, a memory that answers at once (first word 1 cycle after the
    request) and k active features, consecutive images leave stage A k*G + G + 1 + 4 cycles
    apart: 1 cycle to take the first index, 1 to offer it, 1 to the first word, k*G words, 1 for
    the last word's write, 1 to see that all is in, G for the scan, 1 for its last write.
    Without an active feature: the marker, the check, the scan and its last write, G + 3."""
    fmt = preset("fpga-8")
    F, H, C, L = 64, 40, 2, 4                   # G = 10; softmax 2 * 11 + 1 = 23 cycles
    rng = np.random.default_rng(5)
    W2 = rng.integers(-100, 100, (F, H))
    W3 = rng.integers(-100, 100, (H, C))
    counts = [20, 5, 12, 0, 30, 1, 8]
    images = [rng.choice(F, k, replace=False).tolist() for k in counts]
    cfg = ClassifierConfig(F, H, C, fmt, lanes=L)
    run = run_pysim(cfg, (W2, np.zeros(H), W3, np.zeros(C)), images, latency=1)
    gaps = np.diff(run.hidden_edges).tolist()
    assert gaps == [k * 10 + 10 + 5 if k else 13 for k in counts[1:]]
    assert gaps == [cfg.cycles_hidden(k, latency=1) for k in counts[1:]]


# --- the memory model and the harness --------------------------------------------------------------

@pytest.mark.parametrize("latency", [0, 1, 5])
def test_memory_model_latency_and_order(latency):
    """First word valid max(latency + 1, 3) cycles after the request was accepted, rows stream
    at one word per cycle, in request order."""
    from amaranth.sim import Simulator

    G, rows = 3, [[10 * r + g for g in range(3)] for r in range(6)]
    dut = MemoryModel(rows=6, words_per_row=G, word_bits=8, queue_depth=4)
    seen = []

    async def bench(ctx):
        await write_bus(ctx, dut.write, enumerate(w for row in rows for w in row))
        ctx.set(dut.latency, latency)
        ctx.set(dut.port.resp.ready, 1)
        ctx.set(dut.port.req.payload, 4)
        ctx.set(dut.port.req.valid, 1)
        await ctx.tick()                 # request accepted at this edge (cycle 0)
        ctx.set(dut.port.req.payload, 1)
        await ctx.tick()
        ctx.set(dut.port.req.valid, 0)
        for cycle in range(1, 20):
            if ctx.get(dut.port.resp.valid):
                seen.append((cycle, ctx.get(dut.port.resp.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    first = max(latency + 1, 3)
    assert seen == [(first + k, w) for k, w in enumerate(rows[4] + rows[1])]


def test_harness_in_the_amaranth_simulator():
    """The free-running harness (memory model with latency and stalls) in the Amaranth
    simulator: the same results as the golden model, and the transfer counters."""
    from amaranth.sim import Simulator
    from spykehw.rtl.layouts import feature_layout, pack

    vs = read_vectors(committed_path("adversarial-edge-4"), kind="classifier")
    cfg = config_for(vs, 16)
    h = ClassifierHarness(cfg, ev_depth=512, image_depth=16)
    images = image_indices(vs)
    tokens = feature_tokens(images)
    lay = feature_layout(cfg.features)
    out = {}

    async def bench(ctx):
        await write_bus(ctx, h.load, load_words(cfg, *params_of(vs)))
        await write_bus(ctx, h.w2_write, ((r * cfg.groups + g, w) for r, words in enumerate(w2_rows(cfg, vs["w2"]))
                                          for g, w in enumerate(words)))
        for i, tok in enumerate(tokens):
            ctx.set(h.ev_mem.data[i], pack(lay, tok))
        ctx.set(h.latency, 6)
        ctx.set(h.stall, 2)
        ctx.set(h.n_tokens, len(tokens))
        ctx.set(h.n_images, len(images))
        ctx.set(h.start, 1)
        await ctx.tick()
        ctx.set(h.start, 0)
        await ctx.tick().until(h.done)
        n, G, C, L, LB = len(images), cfg.groups, cfg.classes, cfg.lanes, cfg.logit_bits

        def field(raw, offset, width, is_signed=False):
            v = (raw >> offset) & ((1 << width) - 1)
            return v - (1 << width) if is_signed and v >> (width - 1) else v
        hid = [ctx.get(h.hid_cap.data[i]) for i in range(n * G)]
        lgt = [ctx.get(h.logit_cap.data[i]) for i in range(n * C)]
        outs = [ctx.get(h.out_cap.data[i]) for i in range(n * C)]
        out["split"] = split_outputs(
            cfg, n, [{"bits": field(v, 0, L), "last": v >> L} for v in hid],
            [{"logit": field(v, 0, LB, True), "last": v >> LB} for v in lgt],
            [{"word": o.word, "argmax": o.argmax, "last": o.last}
             for o in (h.core.o_stream.payload.shape().from_bits(v) for v in outs)])
        out["requests"], out["words"] = ctx.get(h.requests), ctx.get(h.words)

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    mm = compare_outputs(out["split"], hidden=vs["hidden"], logits=vs["logits"], classes=vs["classes"],
                         words=vs["words"])
    assert [m.message(vs.name) for m in mm] == []
    assert out["requests"] == len(vs["indices"]) and out["words"] == len(vs["indices"]) * cfg.groups


# --- packing helpers --------------------------------------------------------------------------------

def test_lane_packing_round_trip():
    values = [-128, 127, 0, -1, 5]
    word = pack_lanes(values, 8)
    assert word == 0x05_FF_00_7F_80
    assert unpack_lanes(word, 5, 8) == values
    with pytest.raises(ValueError, match="lane 1: 256 does not fit 8 bits"):
        pack_lanes([0, 256], 8)


def test_load_words_layout():
    """b2 padded to whole words, W3 one row per word, b3 one word; W2 only on chip."""
    cfg = ClassifierConfig(2, 3, 2, preset("fpga-8"), lanes=2)
    W2, b2, W3, b3 = np.array([[1, 2, 3], [4, 5, 6]]), np.array([-1, -2, -3]), \
        np.array([[7, 8], [9, 10], [11, 12]]), np.array([-5, 6])
    words = load_words(cfg, W2, b2, W3, b3)
    assert words == [(LoadTarget.B2, 0, pack_lanes([-1, -2], 12)), (LoadTarget.B2, 1, pack_lanes([-3, 0], 12)),
                     (LoadTarget.W3, 0, pack_lanes([7, 8], 8)), (LoadTarget.W3, 1, pack_lanes([9, 10], 8)),
                     (LoadTarget.W3, 2, pack_lanes([11, 12], 8)), (LoadTarget.B3, 0, pack_lanes([-5, 6], 12))]
    assert w2_rows(cfg, W2) == [[pack_lanes([1, 2], 8), pack_lanes([3, 0], 8)],
                                [pack_lanes([4, 5], 8), pack_lanes([6, 0], 8)]]


# --- interface and parameters --------------------------------------------------------------------

def test_signature():
    cfg = ClassifierConfig(3630, 1500, 47, preset("fpga-16"), lanes=64)
    dut = Classifier(cfg)
    assert {f.name if hasattr(f, "name") else k for k, f in dut.i_features.payload.shape()} == {"index", "last"}
    assert dut.i_features.payload.index.shape() == unsigned(12)
    assert dut.w2.req.payload.shape() == unsigned(12)
    assert dut.w2.resp.payload.shape() == unsigned(64 * 16)
    assert dut.o_logits.payload.logit.shape() == signed(17)
    assert dut.o_hidden.payload.bits.shape() == unsigned(64)
    assert dut.load.data.shape() == unsigned(max(64 * 16, 47 * 16))
    assert not hasattr(Classifier(ClassifierConfig(10, 4, 2, preset("fpga-8"), lanes=4, w2_on_chip=True)), "w2")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"features": 0}, ClassifierError, "features: must be >= 1, not 0"),
    ({"hidden": 1}, ClassifierError, "hidden: must be >= 2, not 1"),
    ({"classes": 1}, ClassifierError, "classes: must be in 2..4096, not 1"),
    ({"lanes": 0}, ClassifierError, r"lanes: must be in 1..4 \(at most the hidden units\), not 0"),
    ({"lanes": 5}, ClassifierError, r"lanes: must be in 1..4 \(at most the hidden units\), not 5"),
    ({"lanes": True}, TypeError, "lanes must be an integer"),
    ({"formats": "fpga-16"}, TypeError, "formats must be a NumberFormats"),
    ({"hidden": 2.5}, TypeError, None),
])
def test_rejects_bad_parameters(kwargs, error, match):
    args = {"features": 10, "hidden": 4, "classes": 3, "formats": preset("fpga-8"), **kwargs}
    with pytest.raises(error, match=match):
        ClassifierConfig(**args)


# --- the committed vector files -----------------------------------------------------------------

@pytest.mark.parametrize("name", list(COMMITTED))
def test_committed_vectors_expectations_are_current(name):
    """Every committed file's expectations equal the golden model's on its own weights and
    indices (a change to the golden model cannot leave them stale)."""
    vs = read_vectors(committed_path(name), kind="classifier")
    hidden, logits, classes, words = expectations(vs.formats, *params_of(vs), image_indices(vs))
    for key, want in (("hidden", hidden), ("logits", logits), ("classes", classes), ("words", words)):
        np.testing.assert_array_equal(vs[key], want, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", SYNTHETIC)
def test_committed_synthetic_vectors_regenerate(tmp_path, name):
    path = write_committed(name, tmp_path)
    assert read_vectors(path).differences(read_vectors(committed_path(name))) == []
    assert path.read_bytes() == committed_path(name).read_bytes()


@pytest.mark.long
@pytest.mark.parametrize("name", ["mnist-fpga-16", "emnist-fpga-16"])
def test_committed_real_vectors_regenerate(tmp_path, monkeypatch, name):
    """From the datasets: STDP, features, training and quantization, without the cache."""
    monkeypatch.setenv("SPYKEHW_CACHE_DIR", str(tmp_path / "cache"))
    path = write_committed(name, tmp_path)
    assert read_vectors(path).differences(read_vectors(committed_path(name))) == []


# --- command line -------------------------------------------------------------------------------

def test_cli_verilog_classifier_is_lint_clean(tmp_path, capsys, require_simulator):
    """``spykehw verilog classifier`` writes Verilog, JSON and manifest and lints clean under
    the project's waivers; a bad lane count is one line naming the key."""
    import json

    from spykehw.cli import main

    require_simulator("verilator")
    out = tmp_path / "v"
    assert main(["verilog", "classifier", "--config", "fpga-8", "--hidden", "40", "--classes", "10",
                 "--lanes", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 warning(s) beyond the waivers" in printed and "w2__req__payload" in printed
    doc = json.loads((out / "classifier.json").read_text())
    assert (doc["params"]["hidden"], doc["params"]["classes"], doc["params"]["lanes"]) == (40, 10, 16)
    assert doc["formats"]["name"] == "fpga-8"
    assert (out / "classifier.v").is_file() and (out / "manifest.json").is_file()
    assert main(["verilog", "classifier", "--hidden", "40", "--lanes", "41", "--out", str(tmp_path / "w")]) == 2
    assert "lanes: must be in 1..40" in capsys.readouterr().err
