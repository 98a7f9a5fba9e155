"""The Pool1 block (:mod:`spykehw.rtl.pool1`) in the Amaranth simulator against hand-derived
cases and the golden ``pool_spikes`` (random spike sets, all three modes), the conv core's spike
potentials against the golden ``run_conv`` record, and the generated Verilog (lint).

Oracles: the expected events of the hand cases are worked out in the comments (not by any code
under test); the golden :func:`spykehw.golden.pool.pool_spikes` (tested in ``test_layer2.py``).
Every comparison is exact and in order: the block emits the golden ``(t, c, y, x)`` order.
"""

from __future__ import annotations

import numpy as np
import pytest
from spykehw.golden.arithmetic import int_arithmetic
from spykehw.golden.conv import run_conv
from spykehw.golden.formats import preset
from spykehw.golden.options import CONV1, PoolOptions
from spykehw.golden.spikes import SpikeEvents
from spykehw.rtl.conv_config import ConvCoreConfig
from spykehw.rtl.conv_core import ConvCore
from spykehw.rtl.layouts import spike_layout, unpack
from spykehw.rtl.pool1 import Pool1, Pool1Config
from spykehw.rtl.verilog import generate
from spykehw.sim.conv.committed import committed_path
from spykehw.sim.conv.packing import image_tokens, pack_tokens, weight_words
from spykehw.sim.conv.vector_gen import image_events
from spykehw.sim.framework.lint import lint
from spykehw.sim.framework.streams import simulate
from spykehw.sim.framework.vectors import ragged, read_vectors
from spykehw.sim.pool1.packing import golden_pool_events
from spykehw.sim.pool1.pysim import simulate_pool1

# ----- hand cases ----------------------------------------------------------------------------------
# M = 2 maps, conv output 5 x 5 -> P = 2 (row/col 4 dropped), T = 3 steps; rows (t, m, u, v, p).
HAND = [
    # step 0
    (0, 0, 0, 0, 3), (0, 0, 1, 1, 3),       # both in (0, 0, 0): one spike
    (0, 1, 4, 0, 9),                        # row 4 = 2P: dropped
    (0, 1, 3, 2, 2),                        # -> (1, 1, 1)
    # step 2
    (2, 1, 0, 3, 1),                        # -> (1, 0, 1)
    (2, 0, 2, 0, 1),                        # -> (0, 1, 0)
]
# "or": each step's pool neurons, map-major then row then column.
HAND_OR = [(0, 0, 0, 0), (0, 1, 1, 1), (2, 0, 1, 0), (2, 1, 0, 1)]
# "accumulate": (0,0,0) and (1,1,1) from step 0 on, (0,1,0) and (1,0,1) from step 2.
HAND_ACC = [(0, 0, 0, 0), (0, 1, 1, 1), (1, 0, 0, 0), (1, 1, 1, 1),
            (2, 0, 0, 0), (2, 0, 1, 0), (2, 1, 0, 1), (2, 1, 1, 1)]
HAND_INH = [
    # step 0: location (0,0): map 1 p=7 and map 0 p=9 -> map 0 (larger);
    #         location (1,1): map 1 p=5 first, then map 0 p=5 -> map 0 (tie: lower map)
    (0, 1, 0, 1, 7), (0, 0, 1, 0, 9), (0, 1, 2, 2, 5), (0, 0, 3, 3, 5),
    # step 1: (0,0) blocked (fired at step 0) though p=20; (0,1) first fires, map 1;
    #         (4,4) and (1,4): row/col 4 dropped
    (1, 1, 1, 1, 20), (1, 1, 0, 2, 6), (1, 0, 4, 4, 50), (1, 1, 1, 4, 50),
    # step 2: (0,1) blocked; (1,0) first fires, map 1
    (2, 0, 0, 3, 30), (2, 1, 2, 1, 4),
]
HAND_INH_EXPECTED = [(0, 0, 0, 0), (0, 0, 1, 1), (1, 1, 0, 1), (2, 1, 1, 0)]


def hand_config(mode: str) -> Pool1Config:
    return Pool1Config(maps=2, conv_size=5, steps=3, potential_bits=6, mode=mode)


@pytest.mark.parametrize("mode, spikes, expected", [
    ("or", HAND, HAND_OR), ("accumulate", HAND, HAND_ACC), ("inhibit", HAND_INH, HAND_INH_EXPECTED)])
def test_hand_cases(mode, spikes, expected):
    cfg = hand_config(mode)
    # twice in a row: the second image must not see the first one's state
    run = simulate_pool1(cfg, [np.array(spikes), np.array(spikes)], stall=0.3, seed=2)
    assert [e.tolist() for e in run.events] == [[list(r) for r in expected]] * 2
    # the golden model agrees with the hand derivation (so the oracle is the model's own)
    assert [e.tolist() for e in golden_pool_events(cfg, [np.array(spikes)])] == [[list(r) for r in expected]]


def test_empty_image_and_single_step():
    cfg = Pool1Config(maps=3, conv_size=4, steps=1, potential_bits=4, mode="inhibit")
    one = np.array([(0, 2, 3, 3, 1), (0, 1, 2, 3, 1)])     # both in (1, 1): tie -> map 1
    run = simulate_pool1(cfg, [np.zeros((0, 5)), one, np.zeros((0, 5))])
    assert [e.tolist() for e in run.events] == [[], [[0, 1, 1, 1]], []]


def random_images(rng, cfg: Pool1Config, n: int, *, dense: bool) -> list[np.ndarray]:
    """Spike sets with many duplicates and ties: few maps, potentials from a small range."""
    out = []
    for _ in range(n):
        k = int(rng.integers(0, (4 if dense else 1) * cfg.conv_size ** 2))
        s = np.stack([rng.integers(0, cfg.steps, k), rng.integers(0, cfg.maps, k),
                      rng.integers(0, cfg.conv_size, k), rng.integers(0, cfg.conv_size, k),
                      rng.integers(1, 8, k)], axis=1)
        out.append(s[np.argsort(s[:, 0], kind="stable")])
    return out


@pytest.mark.parametrize("mode", ["or", "accumulate", "inhibit"])
@pytest.mark.parametrize("maps, conv_size, steps, stall", [(3, 7, 4, 0.0), (5, 6, 5, 0.4), (1, 3, 2, 0.2)])
def test_random_spike_sets_match_golden(mode, maps, conv_size, steps, stall):
    cfg = Pool1Config(maps=maps, conv_size=conv_size, steps=steps, potential_bits=3, mode=mode)
    rng = np.random.default_rng(maps * 100 + steps)
    images = random_images(rng, cfg, 6, dense=True) + random_images(rng, cfg, 4, dense=False)
    run = simulate_pool1(cfg, images, stall=stall, seed=steps)
    gold = golden_pool_events(cfg, images)
    assert len(run.events) == len(gold)
    for n, (got, want) in enumerate(zip(run.events, gold)):
        assert got.tolist() == want.tolist(), f"image {n}"


def test_mode_of_options():
    assert Pool1Config.mode_of(PoolOptions()) == "or"
    assert Pool1Config.mode_of(PoolOptions(spike_accumulation=True)) == "accumulate"
    assert Pool1Config.mode_of(PoolOptions(lateral_inhibition=True, spike_accumulation=True)) == "inhibit"
    with pytest.raises(ValueError, match="mode: one of or, accumulate, inhibit, not 'max'"):
        Pool1Config(maps=2, conv_size=5, steps=3, potential_bits=4, mode="max")


# ----- the conv core's spike potentials ------------------------------------------------------------

def test_spike_potentials_off_changes_nothing():
    fmt = preset("fpga-16")
    plain = ConvCoreConfig(options=CONV1, formats=fmt, steps=12, parallelism=30)
    with_p = ConvCoreConfig(options=CONV1, formats=fmt, steps=12, parallelism=30, spike_potentials=True)
    assert "spike_potentials" not in plain.to_dict()
    assert plain.spike_layout() == spike_layout(30, 23, 12)
    assert dict(with_p.spike_layout().members)["p"].width == with_p.potential_bits


@pytest.fixture(scope="module")
def conv1_vectors():
    return read_vectors(committed_path("fpga-16"))


def conv_spikes_with_potentials(vs, rows) -> list[np.ndarray]:
    """Golden ``run_conv(record=True)`` on the vector set's images ``rows``: ``(k, 5)`` rows
    ``(t, m, u, v, p)`` per image (weight set 0, the STDP weights of the real cases)."""
    ev = SpikeEvents(*ragged([image_events(vs, n) for n in rows]), 12, (2, 27, 27))
    run = run_conv(ev, np.asarray(vs["weights"][0]), CONV1, int_arithmetic(CONV1, vs.formats), record=True)
    s = run.spikes
    return [np.stack([s[f][n, :run.spike_counts[n]] for f in ("t", "m", "u", "v", "p")], axis=1)
            for n in range(len(rows))]


@pytest.mark.parametrize("parallelism", [30, 10])
def test_conv_core_spike_potentials_match_golden(conv1_vectors, parallelism):
    """Conv1 (fpga-16; one group of 30 lanes: the tree's value, three groups of 10: the group
    combine's) on two real MNIST images: every spike's ``p`` is the golden recorded potential
    (as a set per step)."""
    vs = conv1_vectors
    rows = [0, 1]
    cfg = ConvCoreConfig(options=CONV1, formats=vs.formats, steps=12, parallelism=parallelism,
                         spike_potentials=True)
    core = ConvCore(cfg, hierarchy=True, weight_init=weight_words(cfg, np.asarray(vs["weights"][0])))
    tokens = [t for n in rows for t in pack_tokens(cfg, image_tokens(image_events(vs, n), 12))]
    words: list[int] = []

    async def producer(ctx):
        for tok in tokens:
            ctx.set(core.i_events.valid, 1)
            ctx.set(core.i_events.payload.as_value(), tok)
            await ctx.tick().until(core.i_events.ready)
        ctx.set(core.i_events.valid, 0)

    async def consumer(ctx):
        lay = cfg.spike_layout()
        ends = 0
        ctx.set(core.o_spikes.ready, 1)
        ctx.set(core.o_features.ready, 1)
        while ends < len(rows):
            raw, = await ctx.tick().sample(core.o_spikes.payload.as_value()).until(core.o_spikes.valid)
            words.append(raw)
            f = unpack(lay, raw)
            ends += f["step_end"] and f["last"]

    simulate(core, producer, consumer)
    lay = cfg.spike_layout()
    got: list[list[tuple]] = [[]]
    for raw in words:
        f = unpack(lay, raw)
        if f["step_end"]:
            assert f["p"] == 0
            if f["last"]:
                got.append([])
        else:
            got[-1].append((f["t"], f["m"], f["u"], f["v"], f["p"]))
    want = conv_spikes_with_potentials(vs, rows)
    assert len(want[0]) > 50
    for n in range(len(rows)):
        assert sorted(got[n]) == sorted(map(tuple, want[n].tolist())), f"image {rows[n]}"


def test_real_conv1_spikes_all_modes(conv1_vectors):
    """The golden Conv1 spikes of four real MNIST images (shuffled within each step, as the core
    emits them in threshold-crossing order) through Pool1 in every mode."""
    vs = conv1_vectors
    spikes = conv_spikes_with_potentials(vs, [0, 1, 2, 3])
    rng = np.random.default_rng(5)
    shuffled = []
    for s in spikes:
        s = s[rng.permutation(len(s))]
        shuffled.append(s[np.argsort(s[:, 0], kind="stable")])
    for mode in ("or", "accumulate", "inhibit"):
        cfg = Pool1Config(maps=30, conv_size=23, steps=12, potential_bits=ConvCoreConfig(
            options=CONV1, formats=vs.formats, steps=12, parallelism=30).potential_bits, mode=mode)
        run = simulate_pool1(cfg, shuffled, stall=0.1, seed=1)
        gold = golden_pool_events(cfg, spikes)
        assert [g.tolist() for g in run.events] == [g.tolist() for g in gold], mode
        assert sum(len(g) for g in gold) > 100


@pytest.mark.sim
@pytest.mark.parametrize("mode", ["or", "accumulate", "inhibit"])
def test_generated_verilog_is_lint_clean(mode, tmp_path, require_simulator):
    require_simulator("verilator")
    cfg = Pool1Config(maps=30, conv_size=23, steps=12, potential_bits=13, mode=mode)
    block = Pool1(cfg)
    g = generate(block, "pool1", tmp_path, block.params())
    assert [str(w) for w in lint(g.verilog_path)] == []


@pytest.mark.sim
def test_conv_core_with_spike_potentials_is_lint_clean(tmp_path, require_simulator):
    require_simulator("verilator")
    cfg = ConvCoreConfig(options=CONV1, formats=preset("fpga-16"), steps=12, parallelism=30,
                         spike_potentials=True)
    core = ConvCore(cfg)
    g = generate(core, "conv_core", tmp_path, core.params(), formats=cfg.formats)
    assert [str(w) for w in lint(g.verilog_path)] == []
    assert g.port("o_spikes__payload").width == cfg.spike_layout().size
