"""ConvCore in the Amaranth simulator against hand-derived cases and the golden ``run_conv``, its
generated Verilog (lint), and the committed ``conv-infer`` vectors (regenerated and compared).

Oracles: spikes and features derived by hand for a 1-channel 4x4 -> 3x3 layer (worked out in
the docstrings), and the golden integer model (:func:`spykehw.golden.conv.run_conv`, itself
tested in ``test_conv.py``). Every comparison is exact: spikes as a set per step, features as
a set per image (the only freedom the core takes, see :mod:`spykehw.rtl.conv_core`).
"""

from __future__ import annotations

import gc
import json
import re
import zlib

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.lib import data
from spykehw.golden.arithmetic import int_arithmetic
from spykehw.golden.conv import run_conv
from spykehw.golden.errors import SpykehwError
from spykehw.golden.formats import preset
from spykehw.golden.options import CONV1, CONV2, ConvOptions
from spykehw.golden.spikes import SpikeEvents
from spykehw.rtl.conv_config import ConvCoreConfig, ConvCoreError
from spykehw.rtl.conv_core import ConvCore
from spykehw.rtl.layouts import pack, unpack
from spykehw.rtl.verilog import GeneratedVerilog, generate
from spykehw.sim.conv.harness import ConvHarness
from spykehw.sim.conv.packing import (
    compare_image,
    image_tokens,
    pack_tokens,
    pack_words,
    split_outputs,
    unpack_words,
    weight_words,
)
from spykehw.sim.conv.pysim import simulate_core
from spykehw.sim.conv.committed import COMMITTED, committed_path, committed_set
from spykehw.sim.conv.vector_gen import KIND, image_events, image_spikes, write_vector_set
from spykehw.sim.framework.images import mnist_test_images
from spykehw.sim.framework.lint import lint
from spykehw.sim.framework.vectors import read_vectors

# ----- the hand-made layer ----------------------------------------------------------------------
# C = 1, S = 4, K = 2 -> H = 3 (positions (u, v) in 0..2), P = 1 (window 0 = u, v < 2), M = 2,
# T = 3, edge-4 weights (0..15); threshold 18/16 = 1.125 -> 18 in potential units.
HAND_OPTS = ConvOptions(in_channels=1, in_size=4, maps=2, kernel=2, threshold=1.125)
HAND_FMT = preset("edge-4")
HAND_W = np.array([[[[5, 5], [5, 5]]], [[[9, 0], [0, 9]]]])     # (M, C, K, K)
HAND_EVENTS = np.array([
    (0, 0, 1, 1), (0, 0, 2, 2),
    (1, 0, 1, 2), (1, 0, 2, 1),
    (2, 0, 0, 0), (2, 0, 0, 1), (2, 0, 1, 0), (2, 0, 3, 3),
])
# Input (y, x) adds W[m, 0, kr, kc] to position (y - kr, x - kc).
# Step 0: (1,1) -> map0 +5 at (1,1),(1,0),(0,1),(0,0); map1 +9 at (1,1) [kr=kc=0], (0,0) [1,1].
#         (2,2) -> map0 +5 at (2,2),(2,1),(1,2),(1,1); map1 +9 at (2,2), (1,1).
#         (1,1): V = (10, 18): fires in map 1. Nothing else reaches 18. Feature 1*1 + 0 = 1.
# Step 1: (1,2) -> map0 +5 at (1,2),(1,1)x,(0,2),(0,1); map1 +9 at (1,2), (0,1).
#         (2,1) -> map0 +5 at (2,1),(2,0),(1,1)x,(1,0); map1 +9 at (2,1), (1,0).
#         Largest: V(0,1) = (10, 9), V(1,0) = (10, 9), V(1,2) = (10, 9)...: nothing fires.
# Step 2: (0,0) -> (0,0) only: +5, +9.   (0,1) -> (0,1) +5/+9, (0,0) +5/+0.
#         (1,0) -> (1,0) +5/+9, (0,0) +5/+0.   (3,3) -> (2,2) only [kr=kc=1]: +5/+9.
#         (0,0): (5+5+5+5, 9+9) = (20, 18): both maps cross, map 0 is larger -> map 0.
#         (0,1): (15, 18) -> map 1; (1,0): (15, 18) -> map 1; (2,2): (10, 18) -> map 1.
#         Features: (0,0) map 0 -> 0 (new); (0,1), (1,0) map 1 -> 1 (already set);
#         (2,2): row 2 >= 2P, dropped by the pool.
HAND_SPIKES = {0: {(1, 1, 1)}, 1: set(), 2: {(0, 0, 0), (1, 0, 1), (1, 1, 0), (1, 2, 2)}}
HAND_FEATURES = {0, 1}


def hand_config(parallelism: int, potential_memory: str = "block") -> ConvCoreConfig:
    return ConvCoreConfig(options=HAND_OPTS, formats=HAND_FMT, steps=3, parallelism=parallelism,
                          potential_memory=potential_memory)


def golden(events_list, weights, opts, fmt, steps, max_spikes=1):
    counts = [len(e) for e in events_list]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ev = (np.concatenate(events_list) if events_list else np.zeros((0, 4))).astype(np.int16).reshape(-1, 4)
    S = opts.in_size
    return run_conv(SpikeEvents(offsets, ev, steps, (opts.in_channels, S, S)), np.asarray(weights),
                    opts, int_arithmetic(opts, fmt, max_spikes_per_input=max_spikes), record=True)


def assert_rtl_matches(cfg, weight_sets, images, expected_spikes, expected_features, **kw):
    run = simulate_core(cfg, weight_sets, images, **kw)
    problems = []
    for i, out in enumerate(run.outputs):
        problems += compare_image(i, out, expected_spikes[i], expected_features[i])
    assert not problems, "\n".join(m.message("test") for m in problems[:20])
    return run


def spikes_by_step(out):
    return {t: set(s) for t, s in enumerate(out.steps)}


@pytest.mark.parametrize("potential_memory", ["block", "spram"])
@pytest.mark.parametrize("parallelism", [2, 1])
def test_hand_made_layer(parallelism, potential_memory):
    """The spikes and features worked out by hand above, with L = 2 (one group) and L = 1, on
    the ECP5 core and the UP5K one (single-port potentials, flags in block RAM)."""
    run = simulate_core(hand_config(parallelism, potential_memory), [HAND_W], [HAND_EVENTS],
                        order="reversed")
    out = run.outputs[0]
    assert not out.problems
    assert spikes_by_step(out) == HAND_SPIKES
    assert set(out.features) == HAND_FEATURES and len(out.features) == 2


def test_hand_made_layer_golden_agrees():
    """The golden model gives the same hand-derived result (so the vectors' oracle does too)."""
    run = golden([HAND_EVENTS], HAND_W, HAND_OPTS, HAND_FMT, 3)
    got = {t: set() for t in range(3)}
    for t, m, u, v in run.spike_list(0):
        got[int(t)].add((int(m), int(u), int(v)))
    assert got == HAND_SPIKES
    assert set(np.flatnonzero(run.features[0]).tolist()) == HAND_FEATURES


def test_identical_maps_fire_in_the_lowest():
    """Both maps get map 1's weights, so they tie everywhere and every spike is in map 0.

    The potentials are map 1's above: (1,1) reaches 18 at step 0; at step 2 (0,0) reaches
    9 + 9 = 18 (its map-0 weights no longer dominate), and (0,1), (1,0), (2,2) reach 18.
    """
    w = np.stack([HAND_W[1], HAND_W[1]])
    out = simulate_core(hand_config(1), [w], [HAND_EVENTS]).outputs[0]
    assert spikes_by_step(out) == {0: {(0, 1, 1)}, 1: set(),
                                   2: {(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 2, 2)}}
    assert set(out.features) == {0}


def test_no_input_no_output_and_cycles_by_hand():
    """An image without input spikes: T end-of-step markers and the end-of-image marker.

    Per step: accept the marker into the token register, take it from there, DRAIN, FIRE
    (empty list), STEP_END (the marker enters the output register), i.e. 5 cycles; the last
    marker is taken one cycle after it enters the register: 5T + 1 cycles from the first
    token to the last output.
    """
    cfg = hand_config(2)
    run = simulate_core(cfg, [HAND_W], [np.zeros((0, 4), int)] * 2, count_cycles=True)
    assert [spikes_by_step(o) for o in run.outputs] == [{0: set(), 1: set(), 2: set()}] * 2
    assert all(o.features == [] and not o.problems for o in run.outputs)
    assert run.cycles == [5 * 3 + 1] * 2


@pytest.mark.parametrize("parallelism, groups", [(2, 1), (1, 2)])
def test_one_input_costs_g_cycles_per_position(parallelism, groups):
    """One input spike whose K*K = 4 positions are all inside costs 4*G + 5 cycles on top of
    the 5T + 1 of an empty image: two cycles of its own in the token register (it is accepted
    and its window's row indices registered; next cycle the window's rows of fired flags are
    registered, so it cannot be taken yet; the cycle after, its mask is loaded into the pick
    stage, in the cycle that also accepts the end-of-step marker into the register) and the
    4*G picks (stage P), the last of which also takes the marker from the register (which in
    an empty step needs a cycle of its own); then DRAIN waits while the last pick is in stages
    I, R, X and W, four cycles more than the single DRAIN cycle of an empty step (nothing
    fires: every potential stays below 18, see the hand-made layer above)."""
    cfg = hand_config(parallelism)
    ev = np.array([(0, 0, 1, 1)])
    run = simulate_core(cfg, [HAND_W], [ev], count_cycles=True)
    assert run.cycles == [5 * 3 + 1 + 4 * groups + 5]


@pytest.mark.parametrize("parallelism, groups", [(2, 1), (1, 2)])
def test_up5k_cycles_by_hand(parallelism, groups):
    """The UP5K core (``potential_memory="spram"``) on the two cases above. Every step but the
    last is followed by CLEAR: the flag memories' sweep, one cycle per row (H = 3), and one
    cycle to see it done: (T - 1)(H + 1) = 8 cycles more for the empty image. The input
    spike's 4*G items are picked in every other cycle (a read-modify-write of the single-port
    memory takes two), 8G - 1 cycles from the first pick to the last instead of 4G, plus one
    when the first pick waits for its slot (0 or 1: the slot alternates from reset)."""
    cfg = hand_config(parallelism, "spram")
    empty = simulate_core(cfg, [HAND_W], [np.zeros((0, 4), int)] * 2, count_cycles=True)
    assert empty.cycles == [5 * 3 + 1 + 2 * 4] * 2
    run = simulate_core(cfg, [HAND_W], [np.array([(0, 0, 1, 1)])], count_cycles=True)
    extra = run.cycles[0] - (5 * 3 + 1 + 4 * groups + 5) - 2 * 4
    assert extra - (4 * groups - 1) in (0, 1)


# ----- against the golden model: random small layers --------------------------------------------

RANDOM_LAYERS = [
    # (name, options, preset, steps, parallelism, max_spikes_per_input)
    ("2ch-8x8-k3-m6", ConvOptions(in_channels=2, in_size=8, maps=6, kernel=3, threshold=9.0), "fpga-8", 4, 3, 1),
    ("1ch-7x7-k5-m4", ConvOptions(in_channels=1, in_size=7, maps=4, kernel=5, threshold=6.0), "edge-4", 5, 4, 1),
    ("3ch-6x6-k2-m5-multi", ConvOptions(in_channels=3, in_size=6, maps=5, kernel=2, threshold=3.0), "fpga-16", 6, 1, 3),
]


def random_images(rng, opts, steps, n, max_spikes, density):
    C, S = opts.in_channels, opts.in_size
    images = []
    for _ in range(n):
        rows = []
        for _k in range(max_spikes):
            lat = rng.integers(0, steps, size=(C, S, S))
            on = rng.random((C, S, S)) < density
            c, y, x = np.nonzero(on)
            rows += [(int(lat[a, b, d]), int(a), int(b), int(d)) for a, b, d in zip(c, y, x)]
        ev = np.array(sorted(set(rows)), dtype=np.int64).reshape(-1, 4)
        images.append(ev[np.lexsort((ev[:, 3], ev[:, 2], ev[:, 1], ev[:, 0]))] if len(ev) else ev)
    return images


@pytest.mark.parametrize("potential_memory", ["block", "spram"])
@pytest.mark.parametrize("name, opts, fmt_name, steps, parallelism, max_spikes", RANDOM_LAYERS,
                         ids=[r[0] for r in RANDOM_LAYERS])
def test_random_layers_match_golden(name, opts, fmt_name, steps, parallelism, max_spikes,
                                    potential_memory):
    """Random weights (two sets, so the weights are reloaded between images) and inputs,
    tokens of a step in shuffled order, random stalls on all streams; the ECP5 core and the
    UP5K one."""
    fmt = preset(fmt_name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    top = (1 << fmt.conv.weight_bits) - 1
    shape = (opts.maps, opts.in_channels, opts.kernel, opts.kernel)
    sets = [rng.integers(top // 2, top + 1, size=shape), rng.integers(0, top + 1, size=shape)]
    images = random_images(rng, opts, steps, 4, max_spikes, 0.5)
    which = [0, 0, 1, 1]
    cfg = ConvCoreConfig(options=opts, formats=fmt, steps=steps, parallelism=parallelism,
                         max_spikes_per_input=max_spikes, potential_memory=potential_memory)
    exp_s, exp_f = [], []
    for i, ev in enumerate(images):
        run = golden([ev], sets[which[i]], opts, fmt, steps, max_spikes)
        exp_s.append(run.spike_list(0))
        exp_f.append(run.features[0])
    assert sum(len(s) for s in exp_s) > 0, "a test that fires nothing proves little"
    assert_rtl_matches(cfg, sets, images, exp_s, exp_f, weight_set_of=which, order="shuffled",
                       seed=3, stall=0.3)


def test_weight_bus_read_back_and_single_lane_writes():
    """Whole words go in and come back; the words are laid out as documented (lane l of word
    index*G + g is map g*L + l)."""
    opts = RANDOM_LAYERS[0][1]
    cfg = ConvCoreConfig(options=opts, formats=preset("fpga-8"), steps=2, parallelism=2)
    w = np.arange(np.prod((6, 2, 3, 3))).reshape(6, 2, 3, 3) % 256
    run = simulate_core(cfg, [w], [np.zeros((0, 4), int)], read_back=True)
    assert run.read_back == [weight_words(cfg, w)]
    words = weight_words(cfg, w)
    # word of index c*K*K + kr*K + kc = 1*9 + 2*3 + 0 = 15, group 1: maps 2, 3
    assert words[15 * 3 + 1] == int(w[2, 1, 2, 0]) | int(w[3, 1, 2, 0]) << 8


# ----- the committed vectors --------------------------------------------------------------------

# In the Amaranth simulator this design runs at roughly 500-1000 cycles/s, so by default only a
# few cheap images of each committed file run here (all of them run on Verilator and Icarus in
# test_cosim_conv.py, and here with -m long).
PYSIM_SUBSET = {"fpga-16": ("mnist-test[2]", "adversarial:empty@stdp", "adversarial:one_per_step@stdp"),
                "fpga-8": ("mnist-test[2]", "adversarial:empty@stdp")}
PYSIM_PARALLELISM = {"fpga-16": 30, "fpga-8": 15, "conv2-fpga-16": 40}


def run_committed_pysim(name, indices):
    from spykehw.sim.conv.vector_gen import core_config

    vs = read_vectors(committed_path(name), kind=KIND)
    cfg = core_config(vs, PYSIM_PARALLELISM[name])
    ws = [int(vs["weight_set"][i]) for i in indices]
    assert_rtl_matches(cfg, list(vs["weights"]), [image_events(vs, i) for i in indices],
                       [image_spikes(vs, i) for i in indices],
                       [vs["features"][i] for i in indices], weight_set_of=ws)


@pytest.mark.parametrize("name", sorted(PYSIM_SUBSET))
def test_committed_vectors_subset(name):
    vs = read_vectors(committed_path(name), kind=KIND)
    cases = list(vs.options["cases"])
    run_committed_pysim(name, [cases.index(c) for c in PYSIM_SUBSET[name]])


@pytest.mark.long
@pytest.mark.parametrize("name", sorted(PYSIM_SUBSET))     # Conv2 (200 maps) would take hours
def test_committed_vectors_all(name):
    """Every image (about 10 and 20 minutes: the cosim tests run them all in seconds)."""
    vs = read_vectors(committed_path(name), kind=KIND)
    run_committed_pysim(name, list(range(len(vs.options["cases"]))))


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_committed_vectors_are_up_to_date(name, tmp_path):
    """Regenerating a committed file (from the source images it stores, so no dataset is
    needed) gives the same content: the golden model and the generator have not drifted."""
    committed = read_vectors(committed_path(name), kind=KIND)
    fresh = committed_set(name, images=np.asarray(committed["images"]))
    assert committed.differences(fresh) == []
    # and the bytes too (the writer is deterministic)
    path = write_vector_set(tmp_path / f"{name}.npz", fresh)
    assert path.read_bytes() == committed_path(name).read_bytes()


def test_committed_images_are_the_dataset_rows():
    """The stored MNIST source images are the t10k rows the labels name (the embedded sample
    holds the first 1,000); EMNIST is checked when its file is available."""
    test = mnist_test_images()
    for name in COMMITTED:
        vs = read_vectors(committed_path(name), kind=KIND)
        for i, label in enumerate(vs.options["cases"]):
            if label.startswith("mnist-test["):
                row = int(label[len("mnist-test["):-1])
                np.testing.assert_array_equal(vs["images"][i], test[row])
            elif label.startswith("adversarial:"):
                assert not vs["images"][i].any()
    try:
        from spykehw.sim.framework.images import emnist_test_images
        emnist = emnist_test_images()
    except SpykehwError:
        pytest.skip("EMNIST bymerge test file not available")
    vs = read_vectors(committed_path("fpga-16"), kind=KIND)
    for i, label in enumerate(vs.options["cases"]):
        if label.startswith("emnist-bymerge-test["):
            np.testing.assert_array_equal(vs["images"][i], emnist[int(label.split("[")[1][:-1])])


def test_committed_vectors_cover_the_adversarial_cases():
    """What the brief asks the set to exercise, checked on the expectations themselves."""
    vs = read_vectors(committed_path("fpga-16"), kind=KIND)
    cases = list(vs.options["cases"])
    spikes = {c: image_spikes(vs, i) for i, c in enumerate(cases)}
    H = CONV1.out_size
    assert len(spikes["adversarial:empty@stdp"]) == 0
    assert len(spikes["adversarial:all_first_step@stdp"]) == H * H          # every position
    assert set(spikes["adversarial:all_first_step@max"][:, 1]) == {0}       # all maps tie
    assert set(spikes["adversarial:all_first_step@max_last"][:, 1]) == {29}  # worst case kept
    assert set(spikes["adversarial:all_first_step@overtake"][:, 1]) == {1}
    assert set(spikes["adversarial:dense_random@ties"][:, 1]) <= set(range(0, 30, 3))
    corners = {(0, 0), (0, H - 1), (H - 1, 0), (H - 1, H - 1)}
    assert corners <= {(u, v) for _t, _m, u, v in spikes["adversarial:borders@stdp"]}
    assert set(spikes["adversarial:all_last_step@stdp"][:, 0]) == {11}


# ----- harness, signature, parameters ------------------------------------------------------------

def test_harness_in_the_amaranth_simulator():
    """The free-running harness (used by the cocotb testbench) on the hand-made layer, with
    stalls: load the event memory, start, wait for done, read the capture memories."""
    from amaranth.sim import Simulator

    cfg = hand_config(2)
    h = ConvHarness(cfg, ev_depth=64, spike_depth=64, feature_depth=16, pack=True)
    tokens = pack_tokens(cfg, image_tokens(HAND_EVENTS, 3)) * 2
    words = weight_words(cfg, HAND_W)
    got = {}

    pk = h.params()["harness"]["pack"]
    bits = {k: sum(f["width"] for f in h.params()["layouts"][k]) for k in ("token", "spike", "feature")}

    async def tb(ctx):
        for k, w in enumerate(pack_words(tokens, bits["token"], pk["ev"])):
            ctx.set(h.ev_mem.data[k], w)
        ctx.set(h.weights.w_en, 0b11)
        for addr, word in enumerate(words):
            ctx.set(h.weights.addr, addr)
            ctx.set(h.weights.w_data, word)
            await ctx.tick()
        ctx.set(h.weights.w_en, 0)
        ctx.set(h.stall, 1)
        ctx.set(h.n_tokens, len(tokens))
        ctx.set(h.n_images, 2)
        ctx.set(h.start, 1)
        await ctx.tick()
        ctx.set(h.start, 0)
        await ctx.tick().until(h.done)
        n_s, n_f = ctx.get(h.spike_count), ctx.get(h.feature_count)
        got["spikes"] = unpack_words([ctx.get(h.spike_cap.data[k]) for k in range(-(-n_s // pk["spike"]))],
                                     bits["spike"], pk["spike"], n_s)
        got["features"] = unpack_words([ctx.get(h.feature_cap.data[k]) for k in range(-(-n_f // pk["feature"]))],
                                       bits["feature"], pk["feature"], n_f)
        got["overflow"] = ctx.get(h.overflow)
        got["cycles"] = ctx.get(h.cycles)

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got["overflow"] == 0 and got["cycles"] > 0
    outs = split_outputs(cfg, got["spikes"], got["features"], 2)
    for out in outs:
        assert not out.problems
        assert spikes_by_step(out) == HAND_SPIKES
        assert set(out.features) == HAND_FEATURES


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_signature_and_layouts():
    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-16"), steps=12, parallelism=10)
    core = ConvCore(cfg)
    tok = core.i_events.payload.shape()
    assert isinstance(tok, data.StructLayout)
    assert {k: f.shape for k, f in tok} == {"c": unsigned(1), "y": unsigned(5), "x": unsigned(5),
                                            "step_end": unsigned(1)}
    spk = core.o_spikes.payload.shape()
    assert {k: f.shape.width for k, f in spk} == {"m": 5, "u": 5, "v": 5, "t": 4, "step_end": 1, "last": 1}
    assert {k: f.shape.width for k, f in core.o_features.payload.shape()} == {"index": 12, "last": 1}
    assert len(core.weights.addr) == 8 and len(core.weights.w_data) == 10 * 16
    # Derived numbers: V holds 50 inputs x (2^16 - 1); threshold 15 * 2^16.
    assert cfg.potential_bits == (50 * 65535).bit_length() == 22
    assert cfg.threshold == 15 << 16
    assert (cfg.groups, cfg.weight_words) == (3, 150)
    assert pack(tok, {"c": 1, "y": 2, "x": 3}) == 1 | 2 << 1 | 3 << 6
    assert unpack(spk, pack(spk, {"m": 7, "t": 11, "last": 1})) == \
        {"m": 7, "u": 0, "v": 0, "t": 11, "step_end": 0, "last": 1}
    del core            # never elaborated: let its warning fire here, where it is filtered
    gc.collect()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"parallelism": 7}, ConvCoreError, r"parallelism: must divide the 30 maps \(one of \[1, 2, 3, 5, 6, 10, 15, 30\]\), not 7"),
    ({"parallelism": 0}, ConvCoreError, "parallelism: must divide"),
    ({"steps": 0}, ConvCoreError, "steps: must be in 1..1024, not 0"),
    ({"max_spikes_per_input": 0}, ConvCoreError, "max_spikes_per_input: must be >= 1"),
    ({"formats": "fpga-16"}, TypeError, "formats must be a NumberFormats"),
    ({"options": {}}, TypeError, "options must be a ConvOptions"),
    ({"steps": 2.5}, TypeError, None),
    ({"potential_memory": "huge"}, ConvCoreError, "potential_memory: one of block, spram, not 'huge'"),
    ({"potential_memory": "spram", "learning": True}, ConvCoreError,
     "potential_memory: 'spram' builds the inference core only"),
])
def test_rejects_bad_parameters(kwargs, error, match):
    args = {"options": CONV1, "formats": preset("fpga-16"), "steps": 12, "parallelism": 30, **kwargs}
    with pytest.raises(error, match=match):
        ConvCoreConfig(**args)
    assert issubclass(ConvCoreError, SpykehwError)


# ----- generated Verilog ------------------------------------------------------------------------

@pytest.mark.parametrize("layer, opts, parallelism, max_spikes, potential_memory", [
    ("conv1", CONV1, 30, 1, "block"),
    ("conv1", CONV1, 2, 1, "spram"),        # the UP5K core (simulation model of the SPRAM)
    pytest.param("conv1", CONV1, 10, 1, "block", marks=pytest.mark.long),
    pytest.param("conv2", CONV2, 40, 4, "block", marks=pytest.mark.long),    # about a minute
])
def test_generated_verilog_is_lint_clean(layer, opts, parallelism, max_spikes, potential_memory,
                                         tmp_path):
    fmt = preset("fpga-16")
    cfg = ConvCoreConfig(options=opts, formats=fmt, steps=12, parallelism=parallelism,
                         max_spikes_per_input=max_spikes, potential_memory=potential_memory)
    core = ConvCore(cfg)
    g = generate(core, "conv_core", tmp_path, core.params(), formats=fmt)
    warnings = lint(g.verilog_path)
    assert warnings == [], "\n".join(map(str, warnings))
    text = g.verilog_path.read_text()
    # One module per component, named after the core (``conv_core.integration``, ...).
    modules = re.findall(r"^module \\?(\S+?)\s*\(", text, re.M)
    assert modules.count("conv_core") == 1 and "src =" not in text
    assert {"conv_core.integration", "conv_core.firing", "conv_core.output",
            "conv_core.control"} <= set(modules)
    assert all(name.startswith("conv_core.") for name in modules if name != "conv_core")
    ports = {p.name: p for p in GeneratedVerilog.load(g.json_path).ports}
    assert {"clk", "rst", "i_events__payload", "o_spikes__payload", "o_features__payload",
            "weights__addr", "weights__w_data", "weights__r_data", "idle"} <= set(ports)
    assert ports["i_events__ready"].direction == "output"
    doc = json.loads(g.json_path.read_text())
    assert doc["params"]["parallelism"] == parallelism
    assert doc["params"]["potential_bits"] == fmt.potential_bits(opts.in_channels, opts.kernel, max_spikes)
    assert doc["formats"] == fmt.to_dict()


# ----- command line -----------------------------------------------------------------------------

def test_cli_verilog_and_vectors(tmp_path, capsys):
    """``spykehw verilog conv`` writes Verilog, JSON and manifest; a bad parallelism is one
    line; ``spykehw vectors conv --source adversarial`` writes a readable conv-infer file."""
    from spykehw.cli import main

    assert main(["verilog", "conv", "--config", "fpga-8", "--out", str(tmp_path / "v"),
                 "--parallelism", "10", "--no-lint"]) == 0
    doc = json.loads((tmp_path / "v" / "conv_core.json").read_text())
    assert doc["params"]["parallelism"] == 10 and doc["params"]["weight_bits"] == 8
    assert (tmp_path / "v" / "conv_core.v").is_file() and (tmp_path / "v" / "manifest.json").is_file()
    assert main(["verilog", "conv", "--out", str(tmp_path / "w"), "--parallelism", "7"]) == 2
    assert "parallelism: must divide the 30 maps" in capsys.readouterr().err
    assert main(["vectors", "conv", "--config", "fpga-8", "--out", str(tmp_path / "x"),
                 "--source", "adversarial", "--train-images", "20"]) == 0
    vs = read_vectors(tmp_path / "x" / "conv-adversarial-fpga-8.npz", kind=KIND)
    assert "adversarial:borders@max" in vs.options["cases"]
    assert vs.options["sources"]["stdp"].endswith("train rows 0..19")


@pytest.mark.parametrize("width", [1, 2, 5, 7])
def test_at_most_one_every_input(width):
    """The pick stage's "at most one bit left" tree, on every input of small widths, against a
    bit count."""
    from amaranth import Module, Signal
    from amaranth.sim import Simulator
    from spykehw.rtl.conv_blocks import at_most_one

    m = Module()
    bits = Signal(width)
    out = at_most_one(m, bits, "single")
    seen = []

    async def bench(ctx):
        for v in range(1 << width):
            ctx.set(bits, v)
            seen.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [int(bin(v).count("1") <= 1) for v in range(1 << width)]
