"""The weight export: the packing of the blocks' memory words (hand-computed cases and a naive
reference), and export -> load -> integer golden model on a small network trained on the
embedded MNIST sample (the same predictions and softmax words as the original state), file
checks (a changed or truncated file is refused by name) and the ``spykehw export`` command."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from spykehw.golden.classifier import train_classifier
from spykehw.golden.classifier_int import forward_int, quantize_classifier
from spykehw.golden.formats import preset
from spykehw.golden.options import ClassifierOptions, NetworkOptions
from spykehw.golden.pipeline import extract_features, train_conv1
from spykehw.golden.state import TrainedState, make_state, save_state
from spykehw.rtl.packing import (
    LOAD_TARGETS,
    PackingError,
    classifier_load_words,
    conv_weight_rows,
    conv_weight_words,
    conv_weights_from_rows,
    pack_rows,
    rows_to_ints,
    unpack_rows,
    w2_row_words,
)

from spykehw.cli import main
from spykehw.data import load_dataset
from spykehw.export import (
    VERSION,
    ExportError,
    load_export,
    read_source,
    run_golden,
    write_export,
)
from spykehw.export.writer import hex_text


def naive_word(values, bits):
    """Lane k in bits k*bits.., two's complement: a plain-Python reference."""
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) % (1 << bits)) << (k * bits)
    return word


# --- packing ---------------------------------------------------------------------------------------

def test_two_lanes_of_three_bits_by_hand():
    """W2 of 2 features x 3 hidden units, 2 lanes of 3-bit signed weights: G = 2 words per row,
    the last lane of each row padding. Row 0 = (-1, 2, 3): word 0 = 0b010_111 = 0x17, word 1 =
    0b000_011 = 0x03; row 1 = (-4, 0, 1): 0b000_100 = 0x04, 0b000_001 = 0x01."""
    W2 = np.array([[-1, 2, 3], [-4, 0, 1]])
    assert w2_row_words(W2, 2, 3) == [[0x17, 0x03], [0x04, 0x01]]
    data = pack_rows([[-1, 2], [3, 0], [-4, 0], [1, 0]], 3, signed=True)
    assert data.tolist() == [[0x17], [0x03], [0x04], [0x01]]
    assert unpack_rows(data, 2, 3, signed=True).tolist() == [[-1, 2], [3, 0], [-4, 0], [1, 0]]


def test_conv_weight_words_by_hand():
    """4 maps, 1 channel, K = 2, 2 lanes of 3 bits: G = 2; word index*2 + g holds maps 2g, 2g+1
    of kernel position index = kr*2 + kc."""
    w = np.zeros((4, 1, 2, 2), np.int64)
    w[:, 0, 0, 0] = [1, 2, 3, 4]
    w[:, 0, 1, 1] = [7, 0, 5, 6]
    words = conv_weight_words(w, 2, 3)
    # index 0: g0 = 1 | 2<<3 = 0x11, g1 = 3 | 4<<3 = 0x23; index 1, 2: zeros; index 3: 7 | 0 = 0x07,
    # 5 | 6<<3 = 0x35
    assert words == [0x11, 0x23, 0, 0, 0, 0, 0x07, 0x35]
    assert np.array_equal(conv_weights_from_rows(conv_weight_rows(w, 2), w.shape), w)
    with pytest.raises(PackingError, match="does not fit 3 bits unsigned"):
        conv_weight_words(w + 1, 2, 3)


@pytest.mark.parametrize("bits,signed", [(1, False), (3, True), (7, True), (16, True), (24, False),
                                         (33, True), (63, True)])
def test_pack_rows_against_the_naive_reference(bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    values = rng.integers(lo, hi, (20, 5), endpoint=True)
    values[0] = lo
    values[1] = hi
    data = pack_rows(values, bits, signed=signed)
    assert data.shape == (20, -(-5 * bits // 8))
    assert rows_to_ints(data) == [naive_word(row, bits) for row in values]
    assert np.array_equal(unpack_rows(data, 5, bits, signed=signed), values)


def test_unpack_refuses_stray_bits_above_the_word():
    data = pack_rows([[1, 2]], 3)           # 6 bits in one byte
    data[0, 0] |= 0x80
    with pytest.raises(PackingError, match="word 0: bits above the 6-bit word are set"):
        unpack_rows(data, 2, 3, signed=False)


def test_classifier_load_words_order_and_layout():
    """b2 (padded to whole words), W3 one row per word, b3 one word, then W2 on chip."""
    W2, b2, W3, b3 = np.array([[1, 2, 3], [4, 5, 6]]), np.array([-1, -2, -3]), \
        np.array([[7, 8], [9, 10], [11, 12]]), np.array([-5, 6])
    bits = {"W2": 8, "b2": 12, "W3": 8, "b3": 12}
    got = classifier_load_words(W2, b2, W3, b3, lanes=2, bits=bits, w2_on_chip=True)
    assert got == [("B2", 0, naive_word([-1, -2], 12)), ("B2", 1, naive_word([-3, 0], 12)),
                   ("W3", 0, naive_word([7, 8], 8)), ("W3", 1, naive_word([9, 10], 8)),
                   ("W3", 2, naive_word([11, 12], 8)), ("B3", 0, naive_word([-5, 6], 12)),
                   ("W2", 0, 0x0201), ("W2", 1, 0x0003), ("W2", 2, 0x0504), ("W2", 3, 0x0006)]


def test_load_target_codes_equal_the_hardware_enum():
    LoadTarget = pytest.importorskip("spykehw.rtl.classifier").LoadTarget
    assert [(t.name, t.value) for t in LoadTarget] == [(n, i) for i, n in enumerate(LOAD_TARGETS)]


def test_hex_lines_by_hand():
    """The tiny W2 above as $readmemh lines (6-bit words: 2 digits), and 3 lanes of 3 bits
    (-1, 0, -4) = 0b100_000_111 = 0x107: a 9-bit word is 3 digits and 2 little-endian bytes."""
    data = pack_rows([[-1, 2], [3, 0], [-4, 0], [1, 0]], 3, signed=True)
    assert hex_text(data, 6) == "17\n03\n04\n01\n"
    data = pack_rows([[-1, 0, -4]], 3, signed=True)
    assert hex_text(data, 9) == "107\n" and data.tobytes() == b"\x07\x01"


# --- a small trained network, exported and loaded back ---------------------------------------------

FMT = "fpga-8"
CONV_LANES, CLASSIFIER_LANES, HIDDEN = 10, 16, 40      # G = 3 conv groups; G = 3 words, 8 padding lanes
N_TEST = 100


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Conv1 STDP on 300 images of the embedded sample (the integer model, fpga-8: a snapshot at
    step 2399, so the last snapshot and the final weights differ), a 3630 -> 40 -> 10 classifier
    trained for 6 epochs on 1,000 images, quantized: saved as a run folder's int_state.npz."""
    fmt = preset(FMT)
    opts = NetworkOptions(classifier=ClassifierOptions(hidden=HIDDEN, epochs=6))
    ds = load_dataset("mnist-sample")
    trace = train_conv1(ds.train_images[:300], opts, fmt)
    x = extract_features(ds.train_images[:1000], trace.weights, opts, fmt).features
    y = ds.train_labels[:1000]
    res = train_classifier(x[100:], y[100:], x[:100], y[:100], 10, opts.classifier, progress=False)
    q = quantize_classifier(res.best_params, fmt)
    state = make_state(trace, opts, fmt, classifier=res.best_params,
                       classifier_int={"W2q": q.W2q, "b2q": q.b2q, "W3q": q.W3q, "b3q": q.b3q})
    run = tmp_path_factory.mktemp("run")
    save_state(run / "int_state.npz", state)
    images = ds.test_images[:N_TEST]
    expected = forward_int(q, extract_features(images, state.conv1_weights, opts, fmt).features)
    return SimpleNamespace(run=run, state=state, trace=trace, q=q, opts=opts, fmt=fmt, images=images,
                           expected=expected)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    mm = write_export(read_source(trained.run, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES), out)
    return out, mm


def test_export_load_gives_the_original_predictions(trained, exported):
    out, mm = exported
    ex = load_export(out)
    got = run_golden(ex, trained.images)
    exp = trained.expected
    assert len(set(exp.classes.tolist())) >= 3          # a real, not a constant, classifier
    assert np.array_equal(got.classes, exp.classes)
    assert np.array_equal(got.words, exp.words)
    assert np.array_equal(got.logits, exp.logits)
    # conv.last_snapshot_weights: the exported Conv1 weights are the last snapshot, not the final
    assert np.array_equal(ex.conv_weights, trained.trace.snapshots[-1])
    assert not np.array_equal(ex.conv_weights, trained.trace.final_weights)
    for k in ("W2q", "b2q", "W3q", "b3q"):
        assert np.array_equal(getattr(ex.classifier, k), getattr(trained.q, k))
    point = ex.point
    assert (point.conv_lanes, point.classifier_lanes, point.hidden, point.classes, point.weights) == \
        (CONV_LANES, CLASSIFIER_LANES, HIDDEN, 10, "on-chip")
    assert mm["digest"] == point.digest() and mm["id32"] == point.id32
    assert point.formats == trained.fmt


def _hex_words(path):
    return [int(line, 16) for line in path.read_text().splitlines()]


def _bin_words(raw: bytes, nbytes: int):
    return [int.from_bytes(raw[i:i + nbytes], "little") for i in range(0, len(raw), nbytes)]


def test_hex_bin_and_image_agree_with_naive_words(trained, exported):
    """Every memory: hex lines (full-width digits) = .bin words = its weights.bin slice, and the
    words equal a naive packing of the state's arrays in the blocks' bus layouts."""
    out, mm = exported
    image = (out / "weights.bin").read_bytes()
    words = {}
    for m in mm["memories"]:
        lines = (out / f"{m['name']}.hex").read_text().splitlines()
        assert len(lines) == m["depth"] and {len(x) for x in lines} == {-(-m["word_bits"] // 4)}
        raw = (out / f"{m['name']}.bin").read_bytes()
        assert len(raw) == m["depth"] * m["word_bytes"] == m["size"]
        assert _hex_words(out / f"{m['name']}.hex") == _bin_words(raw, m["word_bytes"])
        assert m["offset"] % 4096 == 0 and image[m["offset"]:m["offset"] + m["size"]] == raw
        words[m["name"]] = _bin_words(raw, m["word_bytes"])
    fmt, W, q = trained.fmt, trained.trace.snapshots[-1], trained.q
    B = fmt.conv.weight_bits
    G = 30 // CONV_LANES
    assert words["conv1_weights"] == [naive_word([W[g * CONV_LANES + l, c, kr, kc] for l in range(CONV_LANES)], B)
                                      for c in range(2) for kr in range(5) for kc in range(5) for g in range(G)]
    assert words["conv1_threshold"] == [round(15 * 2 ** B)]
    G2 = -(-HIDDEN // CLASSIFIER_LANES)
    pad = lambda v: list(v) + [0] * (G2 * CLASSIFIER_LANES - HIDDEN)    # noqa: E731
    c = fmt.classifier
    assert words["W2"] == [naive_word(pad(row)[g * CLASSIFIER_LANES:(g + 1) * CLASSIFIER_LANES], c.hidden_weight_bits)
                           for row in q.W2q for g in range(G2)]
    assert words["b2"] == [naive_word(pad(q.b2q)[g * CLASSIFIER_LANES:(g + 1) * CLASSIFIER_LANES], c.hidden_bias_bits)
                           for g in range(G2)]
    assert words["W3"] == [naive_word(row, c.output_weight_bits) for row in q.W3q]
    assert words["b3"] == [naive_word(q.b3q, c.output_bias_bits)]
    top = (1 << fmt.softmax.exp_lut_bits) - 1
    assert words["exp_lut"] == [int(np.floor(top * np.exp(-d) + 0.5)) for d in range(fmt.softmax.exp_lut_entries)]
    assert len(image) == mm["weights_bin"]["size"]


def test_memory_map_matches_the_blocks(exported):
    """Depths and widths are the ones the blocks built from the same design point consume."""
    design = pytest.importorskip("spykehw.rtl.design")
    from spykehw.rtl.classifier import LoadTarget

    out, mm = exported
    ex = load_export(out)
    mem = {m["name"]: m for m in mm["memories"]}
    conv = design.conv_core_config(ex.point)
    assert (mem["conv1_weights"]["depth"], mem["conv1_weights"]["word_bits"]) == \
        (conv.weight_words, conv.parallelism * conv.weight_bits)
    assert mem["conv1_threshold"]["word_bits"] == conv.potential_bits
    assert _hex_words(out / "conv1_threshold.hex") == [conv.threshold]
    clf = design.classifier_config(ex.point)
    for name, target in (("W2", LoadTarget.W2), ("b2", LoadTarget.B2), ("W3", LoadTarget.W3),
                         ("b3", LoadTarget.B3)):
        assert (mem[name]["target"], mem[name]["target_code"]) == (target.name, target.value)
        assert (mem[name]["depth"], mem[name]["word_bits"]) == (clf.load_depth(target), clf.load_word_bits(target))
    assert mem["W2"]["word_bits"] == clf.w2_word_bits


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name,damage,match", [
    ("W2.bin", "flip", r"W2\.bin: sha256 differs from memory_map\.json"),
    ("conv1_weights.hex", "truncate", r"conv1_weights\.hex: 3149 bytes, memory_map\.json says 3150"),
    ("weights.bin", "truncate", r"weights\.bin: \d+ bytes, memory_map\.json says \d+ \(truncated"),
    ("b3.bin", "flip", r"b3\.bin: sha256 differs"),
    ("memory_map.json", "missing", r"memory_map\.json: missing"),
])
def test_damaged_files_are_refused_by_name(exported, tmp_path, name, damage, match):
    out = _copy(exported[0], tmp_path / "x")
    path = out / name
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[:-1]))
    else:
        path.unlink()
    with pytest.raises(ExportError, match=match):
        load_export(out)


def test_edited_map_is_refused(exported, tmp_path):
    """A design point edited without its digest, and a memory entry that is not the design
    point's, are each refused naming the key."""
    out = _copy(exported[0], tmp_path / "x")
    mm = json.loads((out / "memory_map.json").read_text())
    mm["design_point"]["classifier_lanes"] = 8
    (out / "memory_map.json").write_text(json.dumps(mm))
    with pytest.raises(ExportError, match=r"memory_map\.json: digest"):
        load_export(out)
    mm = json.loads((exported[0] / "memory_map.json").read_text())
    mm["memories"][2]["lane_bits"] = 16
    (out / "memory_map.json").write_text(json.dumps(mm))
    with pytest.raises(ExportError, match=r"memory W2: lane_bits is 16, the design point needs 8"):
        load_export(out)
    mm["version"] = VERSION - 1
    (out / "memory_map.json").write_text(json.dumps(mm))
    with pytest.raises(ExportError, match=r"version"):
        load_export(out)


def test_config_may_change_only_the_classifier_formats(trained, tmp_path):
    """Other classifier formats: the float classifier quantized again, exactly as the main job
    quantizes; a changed conv format is refused naming the key."""
    fmt2 = trained.fmt.replace(**{"classifier.hidden_weight_bits": 6, "classifier.hidden_weight_frac": 6})
    src = read_source(trained.run, formats=fmt2, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES)
    ex = load_export(tmp_path) if write_export(src, tmp_path) else None
    want = quantize_classifier(trained.state.classifier, fmt2)
    assert np.array_equal(ex.classifier.W2q, want.W2q) and np.array_equal(ex.classifier.b3q, want.b3q)
    assert ex.point.formats == fmt2 and "quantized with" in ex.memory_map["source"]["classifier"]
    with pytest.raises(ExportError, match=r"--config: conv\.weight_bits = 6 differs from 8"):
        read_source(trained.run, formats=trained.fmt.replace(**{"conv.weight_bits": 6}))


def test_float_state_and_missing_state_are_refused(trained, tmp_path):
    with pytest.raises(ExportError, match=r"no int_state\.npz in this folder"):
        read_source(tmp_path)
    st = trained.state
    flt = TrainedState(model="float", options=st.options, formats=None,
                       conv1_weights=st.conv1_weights.astype(np.float32),
                       conv1_final_weights=st.conv1_final_weights.astype(np.float32),
                       snapshots=st.snapshots.astype(np.float32), snapshot_steps=st.snapshot_steps,
                       classifier=st.classifier)
    save_state(tmp_path / "float_state.npz", flt)
    with pytest.raises(ExportError, match=r"float_state\.npz: a float-model state"):
        read_source(tmp_path / "float_state.npz")


def test_cli_export_on_a_run_folder(trained, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(trained.run), "--conv-lanes", "15", "--classifier-lanes", "40",
                 "--weights", "external", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    ex = load_export(out)
    assert f"{ex.memory_map['id32_hex']}" in text and "W2" in text
    w2 = next(m for m in ex.memory_map["memories"] if m["name"] == "W2")
    assert (w2["bus"], w2["target"], w2["depth"], w2["lanes"]) == ("classifier.w2 (row memory port)", None, 3630, 40)
    assert (ex.point.conv_lanes, ex.point.weights) == (15, "external")
    got = run_golden(ex, trained.images[:20])
    assert np.array_equal(got.classes, trained.expected.classes[:20])
    assert np.array_equal(got.words, trained.expected.words[:20])
    # user errors: one line naming the problem, exit status 2
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere: no such run folder or state file" in err[0]
    assert main(["export", str(trained.run), "--conv-lanes", "7", "--out", str(out)]) == 2
    assert "conv_lanes: must divide the 30 maps, not 7" in capsys.readouterr().err


@pytest.mark.parametrize("bits", [8, 16])
def test_pack_rows_in_chunks_equals_numpy_bytes(bits):
    """Byte-aligned lanes: a word's bytes are its lanes' little-endian bytes in order (numpy's own
    serialisation), over enough words to cross the packing's internal chunks."""
    rng = np.random.default_rng(bits)
    values = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (9000, 64))
    data = pack_rows(values, bits, signed=True)
    assert data.tobytes() == values.astype(f"<i{bits // 8}").tobytes()
    assert np.array_equal(unpack_rows(data, 64, bits, signed=True), values)


@pytest.mark.parametrize("weights", ["on-chip", "external"])
def test_classifier_rtl_runs_on_the_exported_words(trained, tmp_path, weights):
    """The classifier RTL (Amaranth simulator), loaded with the words of the export's .hex files
    as they are (load bus: each memory's words at addresses 0.. under its target; external W2:
    the row port serves W2.hex's words), gives the original state's classes and softmax words."""
    pytest.importorskip("amaranth")
    from amaranth.sim import Simulator
    from spykehw.rtl.classifier import Classifier, LoadTarget
    from spykehw.rtl.design import classifier_config
    from spykehw.sim.classifier.packing import feature_tokens, write_bus
    from spykehw.sim.framework.memory_model import PyMemoryModel
    from spykehw.sim.framework.streams import stream_get, stream_put

    write_export(read_source(trained.run, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES,
                             weights=weights), tmp_path)
    ex = load_export(tmp_path)
    cfg = classifier_config(ex.point)
    assert cfg.w2_on_chip == (weights == "on-chip")
    writes = [(LoadTarget[m["target"]], addr, word) for m in ex.memory_map["memories"] if m["target"]
              for addr, word in enumerate(_hex_words(tmp_path / f"{m['name']}.hex"))]
    w2 = _hex_words(tmp_path / "W2.hex")
    n = 6
    images = [np.flatnonzero(f).tolist() for f in
              extract_features(trained.images[:n], trained.state.conv1_weights, trained.opts, trained.fmt).features]
    dut = Classifier(cfg)
    mem = None if cfg.w2_on_chip else PyMemoryModel([w2[r * cfg.groups:(r + 1) * cfg.groups]
                                                     for r in range(cfg.features)], latency=3)
    out = []

    async def producer(ctx):
        await write_bus(ctx, dut.load, writes)
        for tok in feature_tokens(images):
            await stream_put(ctx, dut.i_features, tok)

    async def consumer(ctx):
        for _ in range(n * cfg.classes):
            p = await stream_get(ctx, dut.o_stream)
            out.append((int(p.word), int(p.argmax)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    if mem is not None:
        sim.add_testbench(mem.run(dut.w2), background=True)
    sim.run()
    words = np.array([w for w, _ in out]).reshape(n, cfg.classes)
    classes = np.array([c for _, c in out]).reshape(n, cfg.classes)[:, 0]
    assert np.array_equal(classes, trained.expected.classes[:n])
    assert np.array_equal(words, trained.expected.words[:n])


def test_conv_core_rtl_runs_on_the_exported_words(trained, exported, monkeypatch):
    """The conv core RTL (Amaranth simulator) with conv1_weights.hex's words written as they are
    over its weight bus (G = 3 groups of 10 lanes) gives the golden Pool1 features of the
    state's Conv1 weights, and reads the same words back."""
    pytest.importorskip("amaranth")
    from spykehw.golden.pipeline import encode_events
    from spykehw.rtl.design import conv_core_config
    from spykehw.sim.conv import pysim

    out, _ = exported
    ex = load_export(out)
    words = _hex_words(out / "conv1_weights.hex")
    monkeypatch.setattr(pysim, "weight_words", lambda cfg, w: words)   # the file, not a packing
    n = 1
    ev = encode_events(trained.images[:n], trained.opts.encoder, trained.fmt)
    images = [np.asarray(ev.ev[ev.offsets[i]:ev.offsets[i + 1]], np.int64) for i in range(n)]
    run = pysim.simulate_core(conv_core_config(ex.point), [np.zeros_like(ex.conv_weights)], images,
                                     read_back=True)
    want = extract_features(trained.images[:n], trained.state.conv1_weights, trained.opts, trained.fmt).features
    assert run.read_back == [words]
    for i, o in enumerate(run.outputs):
        assert not o.problems
        assert sorted(o.features) == np.flatnonzero(want[i]).tolist()


def test_conv1_weights_follow_last_snapshot_weights(trained, tmp_path):
    """conv.last_snapshot_weights off: the final weights are exported; a state whose
    conv1_weights are not what its option selects is refused."""
    st = trained.state
    opts = NetworkOptions.from_dict(st.options).replace(**{"conv.last_snapshot_weights": False})

    def state_with(options, weights):
        return TrainedState(model="int", options=options.to_dict(), formats=st.formats, conv1_weights=weights,
                            conv1_final_weights=st.conv1_final_weights, snapshots=st.snapshots,
                            snapshot_steps=st.snapshot_steps, classifier=st.classifier,
                            classifier_int=st.classifier_int)

    save_state(tmp_path / "final.npz", state_with(opts, st.conv1_final_weights.copy()))
    src = read_source(tmp_path / "final.npz")
    assert np.array_equal(src.conv_weights, trained.trace.final_weights)
    assert src.provenance["conv1_weights"] == "final weights after STDP"
    assert not src.point.conv.last_snapshot_weights
    save_state(tmp_path / "bad.npz", state_with(opts, st.snapshots[-1].copy()))
    with pytest.raises(ExportError, match=r"bad\.npz: conv1_weights are not the final weights"):
        read_source(tmp_path / "bad.npz")


@pytest.mark.parametrize("weights", ["on-chip", "external"])
def test_w2_rows_in_the_image_are_one_burst_per_feature(trained, tmp_path, weights):
    """Row r of W2 is row_words consecutive words at offset + r*row_stride of weights.bin: the
    bytes a memory request for feature r returns. On chip the rows are packed (48 bytes apart
    here: 3 words of 16 lanes x 8 bits); external, 64 apart (48 rounded up to a power of two,
    zeros between), the W2_STRIDE the accelerator reports."""
    mm = write_export(read_source(trained.run, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES,
                                  weights=weights), tmp_path)
    w2 = next(m for m in mm["memories"] if m["name"] == "W2")
    G, nb, stride = w2["row_words"], w2["word_bytes"], w2["row_stride"]
    assert (G, nb, stride) == (3, 16, 48 if weights == "on-chip" else 64)
    image = (tmp_path / "weights.bin").read_bytes()
    words = _hex_words(tmp_path / "W2.hex")
    for r in (0, 1, 1234, 3629):
        a = w2["offset"] + r * stride
        assert _bin_words(image[a:a + G * nb], nb) == words[r * G:(r + 1) * G]
        assert image[a + G * nb:a + stride] == bytes(stride - G * nb)
    ex = load_export(tmp_path)
    if weights == "external" and importlib.util.find_spec("amaranth"):
        from spykehw.rtl.accelerator import id_constants

        assert id_constants(ex.point)["W2_STRIDE"] == stride


def test_a_changed_gap_byte_between_w2_rows_is_refused(trained, tmp_path):
    """External W2: the zero bytes after each row belong to weights.bin's W2 slice too."""
    mm = write_export(read_source(trained.run, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES,
                                  weights="external"), tmp_path)
    w2 = next(m for m in mm["memories"] if m["name"] == "W2")
    path = tmp_path / "weights.bin"
    image = bytearray(path.read_bytes())
    image[w2["offset"] + 5 * w2["row_stride"] - 1] ^= 1
    path.write_bytes(bytes(image))
    mm["weights_bin"]["sha256"] = hashlib.sha256(bytes(image)).hexdigest()
    (tmp_path / "memory_map.json").write_text(json.dumps(mm))
    with pytest.raises(ExportError, match=r"weights\.bin: bytes \d+\.\.\d+ are not W2\.bin"):
        load_export(tmp_path)


@pytest.mark.parametrize("weights", ["on-chip", "external"])
def test_host_words_equal_the_blocks_own_word_builders(trained, tmp_path, weights):
    """What a host loads from an export (the window's words from the .bin files; weights.bin
    as the external memory, W2_BASE = W2's offset) equals what the co-simulation builds from
    the parameters with the blocks' own builders (rows at W2_STRIDE from address 0)."""
    pytest.importorskip("amaranth")
    from spykehw.accelerator_cosim import weight_image
    from spykehw.sim.accelerator.vectors import AcceleratorParams, params_image

    write_export(read_source(trained.run, conv_lanes=CONV_LANES, classifier_lanes=CLASSIFIER_LANES,
                             weights=weights), tmp_path)
    ex = load_export(tmp_path)
    host = weight_image(ex)
    own = params_image(ex.point, AcceleratorParams(ex.conv_weights, ex.classifier))
    assert host.words == own.words
    assert sorted(host.words) == (["W2", "W3", "b2", "b3", "conv"] if weights == "on-chip" else
                                  ["W3", "b2", "b3", "conv"])
    if weights == "external":
        assert host.memory[host.w2_base:host.w2_base + len(own.memory)] == own.memory
    else:
        assert host.memory == own.memory == b""


def test_export_needs_neither_amaranth_nor_a_simulator(trained, tmp_path):
    """The training side exports without the hardware extras: a fresh interpreter with amaranth
    and cocotb made unimportable writes and loads an export."""
    code = ("import sys; sys.modules['amaranth'] = None; sys.modules['cocotb'] = None\n"
            "from spykehw.export import read_source, write_export, load_export\n"
            f"write_export(read_source({str(trained.run)!r}), {str(tmp_path)!r})\n"
            f"print(load_export({str(tmp_path)!r}).point.id32)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == load_export(tmp_path).point.id32


def test_cli_verilog_accelerator_from_an_export(exported, tmp_path, capsys):
    """``spykehw verilog accelerator --export DIR``: the export's design point (its POINT_ID) and
    every on-chip memory initialised with its words (W2 too: the export is on chip)."""
    pytest.importorskip("amaranth")
    out, mm = exported
    assert main(["verilog", "accelerator", "--export", str(out), "--out", str(tmp_path / "hw"), "--no-lint"]) == 0
    doc = json.loads((tmp_path / "hw" / "accelerator.json").read_text())
    assert doc["params"]["point_id"] == mm["id32"]
    assert doc["params"]["initial_weights"] == ["W2", "W3", "b2", "b3", "conv"]
    assert "memories initialised from" in capsys.readouterr().out
