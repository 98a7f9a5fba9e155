"""Sweep definition -> points: counts, merging, validation messages, keys, sweep files, rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spykehw.golden.classifier_params import ClassifierParams
from spykehw.golden.formats import FormatError, preset

from spykehw.cli import main
from spykehw.quant.points import (
    Sweep,
    SweepError,
    build_points,
    network_options,
    parse_lut,
    parse_overrides,
    point_keys,
    sweep_from_dict,
    sweep_from_toml,
)
from spykehw.quant.rules import (
    classifier_formats,
    provisional_classifier_formats,
    range_frac,
    saturation_counts,
)
from spykehw.quant.stages import softmax_error
from spykehw.quant.store import Store, stable_key

DS_ID = {"name": "mnist-sample", "files": {"x": "abc"}, "train": 10, "test": 5}


def test_default_sweep_points_and_merging():
    points = build_points(Sweep())
    # float + base + 5 conv bits x 3 roundings + 5 classifier bits + 3 LUTs, minus the two that
    # equal fpga-16 itself (conv 16 half_up, LUT 32:16) = 2 + 15 + 5 + 3 - 2
    assert len(points) == 23
    by_label = {p.label: p for p in points}
    assert by_label["float"].formats is None
    assert by_label["base fpga-16"].axes == ("base", "conv", "lut")
    assert "conv 16 half_up" not in by_label and "lut 32:16" not in by_label
    p = by_label["conv 6 stochastic"]
    assert (p.formats.conv.weight_bits, p.formats.stdp.rounding) == (6, "stochastic")
    assert p.formats.classifier == preset("fpga-16").classifier
    lut = by_label["lut 16:10"].formats.softmax
    assert (lut.exp_lut_entries, lut.exp_lut_bits, lut.softmax_bits) == (16, 10, 16)
    assert by_label["classifier 8"].classifier_bits == 8   # range rule: resolved after training
    # rounding crossed with low bits only: 4, 6, 8 x 3 modes + 12, 16 at fpga-16's half_up
    low = {p.label for p in build_points(Sweep(rounding_bits=(4, 6, 8))) if "conv" in p.axes}
    assert low == {f"conv {b} {r}" for b in (4, 6, 8) for r in ("truncate", "half_up", "stochastic")} \
        | {"conv 12 half_up", "base fpga-16"}
    # repeats and datasets multiply
    assert len(build_points(Sweep(datasets=("mnist", "emnist"), repeats=3))) == 23 * 6


@pytest.mark.parametrize("sweep, key", [
    (Sweep(conv_bits=(1,)), "conv.weight_bits"),
    (Sweep(conv_bits=(30,)), "conv.weight_bits"),
    (Sweep(lut=((8, 8, 1),)), "softmax.softmax_bits"),       # cross-field: argmax of 47 classes
    (Sweep(lut=((8, 1, None),)), "softmax.exp_lut_bits"),
    (Sweep(classifier_bits=(1,)), "classifier.hidden_weight_bits"),
    (Sweep(classifier_bits=(32,), bias_extra=10), "classifier.hidden_bias_bits"),
    (Sweep(custom=((("conv.weight_bitz", 3),),)), "conv.weight_bitz"),
    (Sweep(custom=((("stdp.rounding", "nearest"),),)), "stdp.rounding"),
])
def test_impossible_combinations_are_rejected_naming_the_key(sweep, key):
    with pytest.raises(FormatError, match=key.replace(".", r"\.")):
        build_points(sweep)


def test_bad_sweep_values_name_the_key():
    with pytest.raises(SweepError, match="rounding"):
        Sweep(rounding=("nearest",))
    with pytest.raises(SweepError, match="dataset"):
        Sweep(datasets=("cifar",))
    with pytest.raises(SweepError, match="repeats"):
        Sweep(repeats=0)
    with pytest.raises(SweepError, match="--lut"):
        parse_lut("8x8", "--lut")
    with pytest.raises(SweepError, match="point"):
        parse_overrides("weight_bits=3")
    assert parse_lut("8:8,32:16:12") == ((8, 8, None), (32, 16, 12))
    assert parse_overrides("conv.weight_bits=6,stdp.rounding=stochastic") == (
        ("conv.weight_bits", 6), ("stdp.rounding", "stochastic"))


def test_sweep_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('dataset = ["mnist", "emnist"]\nconv_bits = [4, 8]\nrounding = "truncate"\n'
                 'classifier_bits = []\nlut = ["8:8"]\nepochs = 3\n'
                 '[[point]]\nconv.weight_bits = 6\nstdp.rounding = "stochastic"\n')
    s = Sweep(**sweep_from_toml(f))
    assert s.datasets == ("mnist", "emnist") and s.conv_bits == (4, 8) and s.rounding == ("truncate",)
    assert s.classifier_bits == () and s.lut == ((8, 8, None),) and s.epochs == 3
    assert s.custom == ((("conv.weight_bits", 6), ("stdp.rounding", "stochastic")),)
    labels = [p.label for p in build_points(s) if p.dataset == "mnist"]
    assert labels == ["float", "base fpga-16", "conv 4 truncate", "conv 8 truncate", "lut 8:8",
                      "custom conv.weight_bits=6,stdp.rounding=stochastic"]
    f.write_text("conv_bit = [4]\n")
    with pytest.raises(SweepError, match=r"s\.toml: conv_bit: unknown key"):
        sweep_from_toml(f)


def _keys(sweep, label, repeat=0):
    p = next(p for p in build_points(sweep) if p.label == label and p.repeat == repeat)
    return point_keys(p, network_options(sweep, p.dataset, p.repeat), DS_ID, "code1", sweep)


def test_keys_share_exactly_what_points_share():
    s = Sweep(classifier_bits=(8,), lut=((8, 8, None),), repeats=2)
    base, cls, lut = _keys(s, "base fpga-16"), _keys(s, "classifier 8"), _keys(s, "lut 8:8")
    conv = _keys(s, "conv 8 truncate")
    # same Conv1 settings -> same Conv1 stage and classifier; only the point differs
    assert base.conv1 == cls.conv1 == lut.conv1 and base.classifier == cls.classifier == lut.classifier
    assert len({base.point, cls.point, lut.point}) == 3
    assert conv.conv1 != base.conv1 and conv.classifier != base.classifier
    # another seed changes everything; other epochs change the classifier but not Conv1
    r1 = _keys(s, "base fpga-16", repeat=1)
    assert r1.conv1 != base.conv1
    e = _keys(Sweep(classifier_bits=(8,), lut=((8, 8, None),), epochs=3), "base fpga-16")
    assert e.conv1 == base.conv1 and e.classifier != base.classifier and e.point != base.point
    # the formats' name is a label, not a setting; keys are stable
    assert _keys(s, "base fpga-16") == base
    assert stable_key({"a": 1, "b": [1, 2]}) == stable_key({"b": [1, 2], "a": 1})


def test_code_version_ignores_comments_and_docstrings_only():
    from spykehw.golden.stored import _normalized

    a = 'def f(x):\n    """Doc."""\n    # why\n    return x + 1\n\nK = 2\n"""About K."""\n'
    b = "def f(x):\n\n    return x+1  # other words\nK = 2\n"
    assert _normalized(a) == _normalized(b)
    assert _normalized(a) != _normalized(b.replace("x+1", "x+2"))


def test_range_frac_by_hand():
    # 4 bits: codes -8..7. frac 4: 0.3*16 = 4.8 -> 5 <= 7, -0.5*16 = -8 >= -8; frac 5: 9.6 -> 10 > 7
    assert range_frac(np.array([0.3, -0.5]), 4) == 4
    # 8 bits: 0.028*2^12 = 114.7 -> 115 <= 127; 2^13 -> 229 > 127
    assert range_frac(np.array([0.028, -0.01]), 8) == 12
    assert range_frac(np.zeros(3), 8) == 24          # all zero: the cap min(40, bits + 16)
    assert range_frac(np.array([100.0]), 4) == 0     # cannot fit even at frac 0: saturates


def test_classifier_formats_rules():
    base = preset("fpga-16")
    params = ClassifierParams(np.array([[0.3, -0.5]], np.float32), np.array([1.5, 0.0], np.float32),
                              np.array([[2.0], [-1.0]], np.float32), np.array([0.25], np.float32))
    f = classifier_formats(base, 4, "range", 4, params)
    c = f.classifier
    assert (c.hidden_weight_bits, c.hidden_weight_frac, c.hidden_bias_bits) == (4, 4, 8)
    # W3 in [-1, 2]: frac 1 -> 4 > 7? no, 4 <= 7 and -2 >= -8; frac 2 -> 8 > 7
    assert (c.output_weight_bits, c.output_weight_frac, c.output_bias_bits) == (4, 1, 8)
    # b2 = 1.5 at frac 4 -> 24 fits 8 bits (-128..127): nothing saturates
    assert saturation_counts(params, f) == {"W2": 0, "b2": 0, "W3": 0, "b3": 0}
    tight = classifier_formats(base, 4, "range", 0, params)   # biases 4 bits: 1.5*16 = 24 > 7
    assert saturation_counts(params, tight)["b2"] == 1
    # preset rule keeps fpga-16's integer bits (hidden 16-14 = 2, output 16-10 = 6)
    p = classifier_formats(base, 8, "preset", 4).classifier
    assert (p.hidden_weight_frac, p.output_weight_frac, p.hidden_bias_bits) == (6, 2, 12)
    assert classifier_formats(base, 4, "preset", 4).classifier.output_weight_frac == 0  # clamped
    prov = provisional_classifier_formats(base, 6, "range", 4).classifier
    assert (prov.hidden_weight_bits, prov.hidden_weight_frac, prov.output_bias_bits) == (6, 5, 10)


def test_softmax_error_by_hand():
    p = 16
    # equal logits: every word is exactly 1/2 -> no error, argmax agrees (lowest index)
    r = softmax_error(np.array([[3, 3]]), np.array([[1 << (p - 1), 1 << (p - 1)]]), p)
    assert r == {"max_abs_err": 0.0, "mean_abs_err": 0.0, "argmax_agreement": 1.0}
    # logits (1, 0): float softmax e/(1+e) = 0.7310585786..., words 0.75 and 0.25 -> error 0.0189...
    s = math.e / (1 + math.e)
    r = softmax_error(np.array([[1, 0]]), np.array([[3 << (p - 2), 1 << (p - 2)]]), p)
    assert r["max_abs_err"] == pytest.approx(0.75 - s, abs=1e-12)
    assert r["mean_abs_err"] == pytest.approx(0.75 - s, abs=1e-12)
    # words that pick another class than the logits
    r = softmax_error(np.array([[1, 0], [0, 1]]), np.array([[0, 9], [0, 9]]), p)
    assert r["argmax_agreement"] == 0.5


def test_store_round_trip_and_corrupt_artifact(tmp_path):
    st = Store(tmp_path)
    assert not st.has_point("k") and st.load_point("k") is None
    st.save_point("k", {"acc": 0.5, "x": np.int64(3)})
    assert st.load_point("k") == {"acc": 0.5, "x": 3}
    bits = np.packbits(np.array([[1, 0, 1], [0, 1, 1]], np.uint8), axis=1)
    st.save_artifact("conv1", "c", {"x": bits}, {"features": 3})
    arrays, meta = st.load_artifact("conv1", "c")
    np.testing.assert_array_equal(np.unpackbits(arrays["x"], axis=1, count=3), [[1, 0, 1], [0, 1, 1]])
    assert meta == {"features": 3}
    st.artifact_path("conv1", "c").write_bytes(b"not a zip")
    assert st.load_artifact("conv1", "c") is None   # unreadable = missing: recomputed
    st.log({"event": "a"})
    st.log({"event": "b"})
    assert [e["event"] for e in st.events()] == ["a", "b"]


def test_hidden_sizes_are_an_axis_crossed_with_every_point():
    s = Sweep(conv_bits=(), lut=(), classifier_bits=(2, 4), hidden=(128, 256))
    points = build_points(s)
    assert [(p.hidden, p.label) for p in points] == [
        (h, f"H{h} {name}") for h in (128, 256)
        for name in ("float", "base fpga-16", "classifier 2", "classifier 4")]
    # one size: no hidden axis, the labels stay as they were
    one = build_points(Sweep(conv_bits=(), lut=(), classifier_bits=(4,), hidden=(128,)))
    assert [p.label for p in one] == ["float", "base fpga-16", "classifier 4"]
    assert {p.hidden for p in one} == {128}
    # an int (the API's and old sweep records' hidden=1000) is a list of one; duplicates go
    assert Sweep(hidden=1000).hidden == (1000,) and Sweep(hidden=(64, 64, 32)).hidden == (64, 32)
    for bad in ((), (0,), (128, -1), 1.5, (True,)):
        with pytest.raises(SweepError, match="hidden"):
            Sweep(hidden=bad)
    with pytest.raises(SweepError, match="not both"):
        Sweep(hidden=(128,), settings=(("classifier.hidden", 256),))


def test_two_hidden_sizes_do_not_share_a_classifier_or_point_key():
    s = Sweep(conv_bits=(), lut=(), classifier_bits=(4,), hidden=(128, 256))
    keys = {}
    for p in build_points(s):
        opts = network_options(s, p.dataset, p.repeat, p.hidden)
        assert opts.classifier.hidden == p.hidden
        keys[p.label] = point_keys(p, opts, DS_ID, "code1", s)
    assert len({k.point for k in keys.values()}) == len(keys) == 6     # no two points collide
    for name in ("float", "base fpga-16", "classifier 4"):
        a, b = keys[f"H128 {name}"], keys[f"H256 {name}"]
        assert a.conv1 == b.conv1                      # STDP and features do not depend on H
        assert a.classifier != b.classifier and a.point != b.point
    # a sweep of one of the sizes alone finds the same keys (so it shares the stored points)
    alone = Sweep(conv_bits=(), lut=(), classifier_bits=(4,), hidden=(256,))
    p = next(p for p in build_points(alone) if p.label == "classifier 4")
    assert point_keys(p, network_options(alone, p.dataset, 0, p.hidden), DS_ID, "code1", alone) \
        == keys["H256 classifier 4"]


def test_sweep_file_hidden_list_or_single_value(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("hidden = [128, 192]\n")
    assert Sweep(**sweep_from_toml(f)).hidden == (128, 192)
    f.write_text("hidden = 256\n")
    assert Sweep(**sweep_from_toml(f)).hidden == (256,)
    s = Sweep(hidden=(128, 192))
    assert sweep_from_dict(s.to_dict()) == s
    old = {**Sweep().to_dict(), "hidden": 1000}      # a sweep.json written before the axis
    assert sweep_from_dict(old).hidden == (1000,)


def test_dry_run_lists_every_point_of_two_hidden_sizes(tmp_path, capsys):
    argv = ["quant", "--dataset", "mnist-sample", "--conv-bits", "none", "--lut", "none",
            "--classifier-bits", "4", "--hidden", "8,16", "--store", str(tmp_path / "store"), "--dry-run"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2:4] for line in lines[:-1]] == [
        [f"H{h}", name] for h in (8, 16) for name in ("float", "base", "classifier")]
    assert all(line.endswith("to run") for line in lines[:-1])
    assert len({line.split()[-3] for line in lines[:-1]}) == 6          # six distinct point keys
    assert lines[-1] == "6 points, 2 Conv1 stages, 4 classifier trainings"
