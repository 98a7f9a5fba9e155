# amaranth: UnusedElaboratable=no
"""The learning ConvCore (``ConvCoreConfig(learning=True)``) in the Amaranth simulator.

Oracles: one STDP step worked out by hand (docstring of ``test_hand_stdp_step``), and the golden
integer model (:func:`spykehw.golden.conv_training.train_conv`, itself tested in ``test_conv.py``):
random sequences on a tiny layer (every rounding mode, lane groups, homeostasis and learning-rate
changes that the golden model confirms happen) and the committed ``conv-learn`` files, which are
also regenerated from their stored source images and compared. Every comparison is exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spykehw.golden.formats import NumberFormats, preset
from spykehw.golden.options import CONV1, CONV2, ConvOptions
from spykehw.rtl.conv_config import ConvCoreConfig, ConvCoreError
from spykehw.rtl.conv_core import ConvCore
from spykehw.rtl.conv_learning import suppression_count
from spykehw.sim.conv.cases import canonical_events
from spykehw.sim.learning.expected import golden_training, snapshot_after_image
from spykehw.sim.learning.harness import simulate_learning
from spykehw.sim.conv.vector_gen import core_config, image_events
from spykehw.sim.learning.vector_gen import (
    COMMITTED,
    committed_path,
    committed_set,
    image_winners,
    read_learn_vectors,
)


def assert_run_matches(run, winners, weights, n=None):
    assert run.problems == []
    n = len(winners) if n is None else n
    assert len(run.winners) == len(run.weights) == n
    for i in range(n):
        np.testing.assert_array_equal(run.winners[i], winners[i], err_msg=f"winners of image {i}")
        np.testing.assert_array_equal(run.weights[i], weights[i], err_msg=f"weights after image {i}")


# ----- configuration ------------------------------------------------------------------------------

def test_per_map_competition_is_refused():
    opts = dataclasses.replace(CONV1, competition="per_map")
    with pytest.raises(ConvCoreError, match="options.competition.*greedy.*per_map"):
        ConvCoreConfig(options=opts, formats=preset("fpga-16"), parallelism=30, learning=True)
    # inference does not care about the competition mode
    ConvCoreConfig(options=opts, formats=preset("fpga-16"), parallelism=30)


def test_learning_is_opt_in():
    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-16"), parallelism=30)
    assert cfg.learning is False and "learning" not in cfg.to_dict()
    assert not hasattr(ConvCore(cfg), "o_winners")
    lcfg = dataclasses.replace(cfg, learning=True)
    assert lcfg.to_dict()["learning"] is True and lcfg.to_dict()["stdp"]["rounding"] == "half_up"
    assert hasattr(ConvCore(lcfg), "o_winners")
    with pytest.raises(TypeError, match="learning must be a bool"):
        dataclasses.replace(cfg, learning=1)


def test_suppression_count():
    # wins > homeostasis_const / factor, on integers
    assert suppression_count(5 / 3) == 2      # Conv1: >= 2 wins in a 5-image window
    assert suppression_count(1.0) == 2        # Conv2: 3/3, > 1
    assert suppression_count(2.5) == 3


@pytest.mark.parametrize("opts, L, max_spikes", [(CONV1, 30, 1), (CONV2, 10, 4)])
def test_conv1_and_conv2_elaborate(opts, L, max_spikes):
    """Both real shapes (11x11 and 3x3 inhibition windows) elaborate to a netlist."""
    from amaranth.back import rtlil

    cfg = ConvCoreConfig(options=opts, formats=preset("fpga-16"), parallelism=L,
                         max_spikes_per_input=max_spikes, learning=True)
    core = ConvCore(cfg)
    text = rtlil.convert(core, name="conv_core")
    assert "learn_fsm" in text and "cand_mem" in text


def test_verilog_is_lint_clean(tmp_path):
    """Verilator -Wall on the learning core's Verilog (stochastic rounding, three lane groups),
    with only the waivers of the inference core."""
    from spykehw.rtl.verilog import generate
    from spykehw.sim.framework.lint import lint

    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-8"), parallelism=10, learning=True)
    core = ConvCore(cfg)
    gen = generate(core, "conv_core", tmp_path, core.params(), formats=cfg.formats)
    assert lint(gen.verilog_path) == []


def test_weight_words_round_trip():
    """words_to_weights inverts the bus packing (lane l of word index*G + g is map g*L + l)."""
    from spykehw.sim.conv.packing import weight_words
    from spykehw.sim.learning.harness import words_to_weights

    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-8"), parallelism=10, learning=True)
    w = np.random.default_rng(0).integers(0, 256, size=(30, 2, 5, 5))
    words = weight_words(cfg, w)
    assert words[1] & 0xFF == w[10, 0, 0, 0] and (words[2] >> 8) & 0xFF == w[21, 0, 0, 0]
    np.testing.assert_array_equal(words_to_weights(cfg, words), w)


# ----- a hand-computed step ---------------------------------------------------------------------

HAND_FMT = NumberFormats.from_dict({"name": "hand", "conv": {"weight_bits": 8},
                                    "stdp": {"stdp_shift": 2, "stdp_shift_min": 1, "rounding": "truncate"}})
HAND_OPTS = ConvOptions(in_channels=1, in_size=3, maps=2, kernel=2, threshold=1.5, inhibition_window=1,
                        homeostasis=False)


@pytest.mark.parametrize("L", [1, 2])
def test_hand_stdp_step(L):
    """C = 1, S = 3, K = 2 -> H = 2; map 0 weights all 192 (0.75), map 1 all 190; threshold
    1.5 * 256 = 384; T = 2.

    Image 0, step 0: inputs (0, 0) and (0, 1). Position (0, 0) gets both (kc = 0 and 1 of row
    kr = 0): 384 in map 0, 380 in map 1 -> fires in map 0 with V = 384; (0, 1) gets 192 only.
    One candidate, so map 0 wins at (0, 0). STDP with s = 2 (level 0), truncate, B = 8:
    p = 192 * (256 - 192) = 12288; pre is set for (0, 0), (0, 1) (row kr = 0): LTP
    192 + (12288 >> 10) = 204; row kr = 1 has no pre: LTD 192 - (3 * 12288 >> 12) = 183.
    After step 0 the level rises (step-0 doubling): s = 1.
    Image 1, step 1: inputs (1, 1), (1, 2), (2, 1). Position (1, 1) gets weights (kr, kc) =
    (0, 0), (0, 1), (1, 0): 204 + 204 + 183 = 591 in map 0 (570 in map 1); position (1, 0) gets
    (0, 1), (1, 1): 204 + 183 = 387 in map 0 (380); (0, 1) only 366 / 380. Two candidates of
    map 0: (1, 1) has the larger potential and wins. STDP with s = 1 on the patch at (1, 1):
    pre at (1, 1), (1, 2), (2, 1), i.e. (kr, kc) = (0, 0), (0, 1), (1, 0): LTP on 204:
    p = 204 * 52 = 10608, >> 9 = 20 -> 224; LTP on 183: p = 183 * 73 = 13359, >> 9 = 26 -> 209;
    LTD on (1, 1): 3 * 13359 >> 11 = 19 -> 164.
    """
    w0 = np.zeros((2, 1, 2, 2), dtype=np.int64)
    w0[0], w0[1] = 192, 190
    images = [np.array([(0, 0, 0, 0), (0, 0, 0, 1)]), np.array([(1, 0, 1, 1), (1, 0, 1, 2), (1, 0, 2, 1)])]
    images = [canonical_events(e) for e in images]
    after0 = w0.copy()
    after0[0, 0] = [[204, 204], [183, 183]]
    after1 = after0.copy()
    after1[0, 0] = [[224, 224], [209, 164]]
    winners = [np.array([(0, 0, 0, 0)]), np.array([(1, 0, 1, 1)])]
    cfg = ConvCoreConfig(options=HAND_OPTS, formats=HAND_FMT, steps=2, parallelism=L, learning=True)
    assert_run_matches(simulate_learning(cfg, w0, images), winners, [after0, after1])
    # and the golden model agrees with the hand computation
    exp = golden_training(images, w0, HAND_OPTS, HAND_FMT, steps=2)
    for i, (w, a) in enumerate(zip(winners, [after0, after1])):
        np.testing.assert_array_equal(exp.winners[i], w)
        np.testing.assert_array_equal(exp.weights[i], a)


# ----- random sequences on a tiny layer against the golden model -----------------------------------

TINY = ConvOptions(in_channels=2, in_size=8, maps=4, kernel=3, threshold=1.5, inhibition_window=3,
                   lr_inc_rate=1, homeostasis_const=5, homeostasis_factor=2.0)


def _tiny_sequence(seed: int, n: int, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lat = rng.integers(0, steps, size=(2, 8, 8))
        lat = np.where(rng.random((2, 8, 8)) < 0.3, lat, -1)
        c, y, x = np.nonzero(lat >= 0)
        out.append(canonical_events(np.stack([lat[c, y, x], c, y, x], axis=1)))
    return out


@pytest.mark.parametrize("rounding, L", [("truncate", 1), ("half_up", 2), ("stochastic", 4)])
def test_tiny_layer_matches_golden(rounding, L):
    """12 random images, T = 5, 4 maps in 4 / 2 / 1 lane groups, a 3x3 window on a 6x6 output,
    the learning rate doubling every 11 steps up to the cap, homeostasis with a 5-image window
    and a limit of 2.5 wins (the golden model confirms both change the result)."""
    fmt = preset("fpga-16").replace(**{"stdp.rounding": rounding})
    steps = 5
    images = _tiny_sequence(1, 12, steps)
    w0 = np.random.default_rng(2).integers(150 * 256, 230 * 256, size=(4, 2, 3, 3))
    exp = golden_training(images, w0, TINY, fmt, steps=steps)
    no_homeo = golden_training(images, w0, dataclasses.replace(TINY, homeostasis=False), fmt, steps=steps)
    assert not np.array_equal(no_homeo.weights[-1], exp.weights[-1])
    cfg = ConvCoreConfig(options=TINY, formats=fmt, steps=steps, parallelism=L, learning=True)
    assert_run_matches(simulate_learning(cfg, w0, images), exp.winners, exp.weights)


# ----- epochs and snapshots ----------------------------------------------------------------------

def test_snapshot_step_arithmetic():
    """By hand: 3 images of 12 steps per epoch, snapshot period 12 * 1 - 1 = 11, 2 epochs.
    Snapshots are taken at epoch-local steps 0, 11, 22, 33 (the epoch has 36 steps), i.e. at
    global steps 0, 11, 22, 33 and 36, 47, 58, 69; image n covers steps 12n .. 12n + 11, so the
    last snapshot after images 0..5 is the one at step 11, 22, 33, 47, 58, 69 (indices 1, 2, 3,
    5, 6, 7). Conv1 (period 2,399), 6,000 images in one epoch (72,000 steps): the last
    snapshot is the 31st, at step 30 * 2,399 = 71,970, inside image 5,997 (its step 6)."""
    opts = dataclasses.replace(TINY, sample_interval=1, homeostasis=False)
    assert opts.snapshot_period == 11 and CONV1.snapshot_period == 2399
    images = _tiny_sequence(3, 3, 12)
    w0 = np.random.default_rng(2).integers(150 * 256, 230 * 256, size=(4, 2, 3, 3))
    from spykehw.golden.arithmetic import int_arithmetic
    from spykehw.golden.conv_training import train_conv
    from spykehw.golden.spikes import SpikeEvents
    from spykehw.sim.framework.vectors import ragged

    tr = train_conv(SpikeEvents(*ragged(images), 12, (2, 8, 8)), w0, opts,
                    int_arithmetic(opts, preset("fpga-16")), epochs=2)
    assert tr.snapshot_steps.tolist() == [0, 11, 22, 33, 36, 47, 58, 69]
    assert snapshot_after_image(tr.snapshot_steps, 6, 12).tolist() == [1, 2, 3, 5, 6, 7]
    conv1_steps = np.arange(0, 6000 * 12, 2399)
    assert len(conv1_steps) == 31 and conv1_steps[-1] == 71970
    idx = snapshot_after_image(conv1_steps, 6000, 12)
    assert idx[5996] == 29 and idx[5997] == 30 and idx[-1] == 30


@pytest.mark.parametrize("L", [2])
def test_epochs_and_snapshots_match_golden(L):
    """Two epochs of 7 random images (T = 5: 35 steps, not a multiple of the 5-image
    homeostasis window) with a snapshot every 11 steps, so snapshots fall inside images and
    the epoch boundary moves them: winners, weights and the snapshot copy after every image
    equal the golden ``train_conv(epochs=2)``. The golden model confirms that the epoch
    boundary matters (one 14-image epoch differs) and that the snapshot is not the weights."""
    opts = dataclasses.replace(TINY, sample_interval=1)
    fmt = preset("fpga-16")
    steps = 5
    images = _tiny_sequence(1, 7, steps)
    w0 = np.random.default_rng(2).integers(150 * 256, 230 * 256, size=(4, 2, 3, 3))
    exp = golden_training(images, w0, opts, fmt, steps=steps, epochs=2)
    flat = golden_training(images * 2, w0, opts, fmt, steps=steps)
    assert not np.array_equal(flat.snapshots, exp.snapshots)
    assert not np.array_equal(flat.weights, exp.weights)
    assert any(not np.array_equal(a, b) for a, b in zip(exp.snapshots, exp.weights))
    cfg = ConvCoreConfig(options=opts, formats=fmt, steps=steps, parallelism=L, learning=True)
    run = simulate_learning(cfg, w0, images * 2, epoch_images=7)
    assert_run_matches(run, exp.winners, exp.weights)
    for i in range(14):
        np.testing.assert_array_equal(run.snapshots[i], exp.snapshots[i], err_msg=f"snapshot after image {i}")


# ----- the committed conv-learn files ----------------------------------------------------------------

@pytest.mark.parametrize("name", list(COMMITTED))
def test_committed_vectors_are_golden(name):
    """Regenerated from the stored source images, every file equals the committed one."""
    vs = read_learn_vectors(committed_path(name))
    again = committed_set(name, images=np.asarray(vs["images"]))
    assert vs.differences(again) == []


def test_committed_vectors_cover_the_issue():
    """Every rounding mode, homeostasis that changes the result, learning-rate levels that rise
    within a sequence up to the cap, real MNIST images, and a Conv2-shaped layer."""
    sets = {name: read_learn_vectors(committed_path(name)) for name in COMMITTED}
    assert {vs.options["rounding"] for vs in sets.values()} == {"truncate", "half_up", "stochastic"}
    assert all(vs.options["homeostasis_matters"] for vs in sets.values())
    lr = sets["conv1-fpga-8-lr"]
    st = lr.formats.stdp
    assert lr.options["final_level"] > st.stdp_shift - st.stdp_shift_min     # the cap is reached
    c2 = sets["conv2-fpga-16"]
    assert (c2.options["conv"]["inhibition_window"], c2.options["conv"]["in_channels"],
            c2.options["max_spikes_per_input"]) == (3, 30, 4)
    assert sets["conv1-fpga-16"].options["conv"] == dataclasses.asdict(CONV1)
    assert sum(p.stat().st_size for p in map(committed_path, COMMITTED)) < 1_000_000


def _check_file(name: str, L: int, n: int | None = None) -> None:
    vs = read_learn_vectors(committed_path(name))
    N = len(vs.options["cases"]) if n is None else n
    run = simulate_learning(core_config(vs, L, learning=True), vs["weights0"], [image_events(vs, i) for i in range(N)])
    assert_run_matches(run, [image_winners(vs, i) for i in range(N)], vs["weights"], N)


def test_committed_conv2_shaped_file():
    """Conv2 shape: 30 channels of Pool1 spikes (up to 4 per input), 3x3 window; the first
    image (all of them with -m long)."""
    _check_file("conv2-fpga-16", 10, 1)


@pytest.mark.long
def test_committed_conv1_first_image():
    """Conv1 at L = 30 on the first MNIST image of the default-options file."""
    _check_file("conv1-fpga-16", 30, 1)


@pytest.mark.long
@pytest.mark.parametrize("name, L", [("conv1-fpga-16", 30), ("conv1-fpga-8-lr", 10),
                                     ("conv1-truncate-homeo", 15), ("conv2-fpga-16", 10)])
def test_every_committed_image(name, L):
    _check_file(name, L)
