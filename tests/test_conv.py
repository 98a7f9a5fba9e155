"""The conv layer (golden/conv.py): hand-made cases with hand-derived expectations, and the
event-driven numba kernel against the dense transcription of the authors' code on real images."""

import numpy as np
import pytest
from spykehw.golden.arithmetic import float_arithmetic, int_arithmetic
from spykehw.golden.conv import init_weights, quantize_weights, run_conv
from spykehw.golden.conv_training import train_conv
from spykehw.golden.conv_dense import dense_conv
from spykehw.golden.fixed import lfsr_step
from spykehw.golden.formats import preset
from spykehw.golden.options import CONV1, ConvOptions, EncoderOptions
from spykehw.golden.pipeline import encode_events, initial_conv1_weights
from spykehw.golden.spikes import SpikeEvents, dense_from_events

FMT16 = preset("fpga-16")


def events(images_spikes, shape, steps=12):
    """Build SpikeEvents from [[(t, c, y, x), ...] per image] (sorted as the kernel expects)."""
    offsets = [0]
    rows = []
    for spikes in images_spikes:
        rows += sorted(spikes)
        offsets.append(len(rows))
    ev = np.array(rows, dtype=np.int16).reshape(-1, 4)
    return SpikeEvents(np.array(offsets, dtype=np.int64), ev, steps, shape)


def arithmetics(opts, bits=16):
    fmt = FMT16.replace(**{"conv.weight_bits": bits})
    return [("float", float_arithmetic(opts), lambda w: np.asarray(w, np.float32)),
            ("int", int_arithmetic(opts, fmt), lambda w: quantize_weights(w, bits))]


# ----- lateral inhibition ------------------------------------------------------------------

TINY = ConvOptions(in_channels=1, in_size=3, maps=3, kernel=2, threshold=1.0, inhibition_window=1)


@pytest.mark.parametrize("kind", ["float", "int"])
def test_lateral_inhibition_lowest_map_wins_ties_and_positions_fire_once(kind):
    # map0 weights 0.25, map1 and map2 0.5 (exact in float and in UQ0.4).
    w = np.zeros((3, 1, 2, 2))
    w[0], w[1], w[2] = 0.25, 0.5, 0.5
    ev = events([[(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0), (0, 0, 1, 1), (1, 0, 2, 2)]], (1, 3, 3))
    _, arith, conv = [a for a in arithmetics(TINY, bits=4) if a[0] == kind][0]
    run = run_conv(ev, conv(w), TINY, arith, record=True)
    # By hand, output (u, v) sums inputs (u..u+1, v..v+1):
    # t=0: (0,0) gets 4 spikes -> V = [1, 2, 2]: maps 1 and 2 tie, map 1 fires.
    #      (0,1) and (1,0) get 2 spikes -> [0.5, 1, 1] -> map 1 fires. (1,1) gets 1 -> [.25,.5,.5].
    # t=1: input (2,2) reaches only (1,1) -> [0.5, 1, 1] -> map 1 fires; nothing fires twice.
    expected = [(0, 1, 0, 0), (0, 1, 0, 1), (0, 1, 1, 0), (1, 1, 1, 1)]
    assert [tuple(r) for r in run.spike_list(0).tolist()] == expected


@pytest.mark.parametrize("kind", ["float", "int"])
def test_winner_map_is_argmax_of_cumulative_potential(kind):
    # Channel 0 drives map 0, channel 1 drives map 1 (1x1 kernels, threshold 1.0).
    opts = ConvOptions(in_channels=2, in_size=2, maps=2, kernel=1, threshold=1.0, inhibition_window=1)
    w = np.array([[[[0.75]], [[0.25]]], [[[0.125]], [[0.5]]]])  # (M=2, C=2, 1, 1)
    # (0,0): t=0 ch1 -> V=[.25,.5]; t=1 ch0 -> V=[1.0, 0.625] -> map 0 (cumulative argmax).
    # (1,1): t=0 ch0 -> V=[.75,.125]; t=2 ch1 -> V=[1.0, .625] -> map 0.
    # (0,1): t=3 ch0 and ch1 together -> V=[1.0, .625] -> map 0 at t=3.
    ev = events([[(0, 1, 0, 0), (1, 0, 0, 0), (0, 0, 1, 1), (2, 1, 1, 1), (3, 0, 0, 1), (3, 1, 0, 1)]],
                (2, 2, 2))
    _, arith, conv = [a for a in arithmetics(opts, bits=4) if a[0] == kind][0]
    run = run_conv(ev, conv(w), opts, arith, record=True)
    assert [tuple(r) for r in run.spike_list(0).tolist()] == [(1, 0, 0, 0), (2, 0, 1, 1), (3, 0, 0, 1)]


def test_threshold_is_inclusive():
    opts = ConvOptions(in_channels=1, in_size=1, maps=1, kernel=1, threshold=0.5, inhibition_window=1)
    ev = events([[(0, 0, 0, 0)]], (1, 1, 1))
    for kind, arith, conv in arithmetics(opts, bits=4):
        assert run_conv(ev, conv(np.full((1, 1, 1, 1), 0.5)), opts, arith).spike_counts[0] == 1, kind
        below = np.full((1, 1, 1, 1), 0.4375)  # 7/16
        assert run_conv(ev, conv(below), opts, arith).spike_counts[0] == 0, kind


def test_features_are_or_of_2x2_windows_and_drop_last_row():
    # 1x1 kernel, 5x5 output -> pool 2x2 (row/col 4 dropped).
    opts = ConvOptions(in_channels=1, in_size=5, maps=2, kernel=1, threshold=0.5, inhibition_window=1)
    w = np.array([[[[0.5]]], [[[0.25]]]])
    ev = events([[(0, 0, 0, 0), (3, 0, 1, 1), (1, 0, 3, 2), (2, 0, 4, 4), (5, 0, 4, 0)]], (1, 5, 5))
    for kind, arith, conv in arithmetics(opts, bits=4):
        run = run_conv(ev, conv(w), opts, arith)
        f = run.features[0].reshape(2, 2, 2)
        expected = np.zeros((2, 2, 2), np.uint8)
        expected[0, 0, 0] = 1  # (0,0) and (1,1): one pool neuron, spiking at two steps
        expected[0, 1, 1] = 1  # (3,2)
        np.testing.assert_array_equal(f, expected, err_msg=kind)
        assert run.pool_counts[0].tolist() == [3, 0], kind  # steps 0, 3 for (0,0); step 1 for (1,1)
        assert run.spike_counts[0] == 5, kind


# ----- competition, STDP -------------------------------------------------------------------

def _competition_case(competition):
    # Channel 0 drives map 0, channel 1 drives map 1; 1x1 kernels; all candidates V = 0.875.
    opts = ConvOptions(in_channels=2, in_size=8, maps=2, kernel=1, threshold=0.5, inhibition_window=3,
                       competition=competition, a_plus=0.004, step0_doubling=False, lr_inc_rate=1000,
                       homeostasis=False, last_snapshot_weights=False)
    w = np.array([[[[0.875]], [[0.125]]], [[[0.125]], [[0.875]]]])
    ev = events([[(0, 0, 2, 2), (0, 1, 2, 3), (0, 0, 2, 5), (0, 1, 6, 6)]], (2, 8, 8))
    return opts, w, ev


def test_greedy_competition_first_row_major_then_other_maps_elsewhere():
    opts, w, ev = _competition_case("greedy")
    for kind, arith, conv in arithmetics(opts):
        tr = train_conv(ev, conv(w), opts, arith)
        # (2,2) map 0 is the first row-major maximum; it removes map 0's (2,5) and, by its 3x3
        # window, map 1's (2,3); map 1 still wins with (6,6) (the authors' greedy rule).
        assert [tuple(r) for r in tr.winners[:, 1:].tolist()] == [(0, 2, 2), (1, 6, 6)], kind


def test_per_map_competition_drops_a_map_inside_an_earlier_window():
    opts, w, ev = _competition_case("per_map")
    for kind, arith, conv in arithmetics(opts):
        tr = train_conv(ev, conv(w), opts, arith)
        # map 1's best (first row-major of its ties) is (2,3), inside (2,2)'s window: no winner.
        assert [tuple(r) for r in tr.winners[:, 1:].tolist()] == [(0, 2, 2)], kind


def test_stdp_float_on_hand_computed_patch():
    opts, w, ev = _competition_case("greedy")
    tr = train_conv(ev, np.asarray(w, np.float32), opts, float_arithmetic(opts))
    got = tr.final_weights[:, :, 0, 0]
    w0 = np.float64(np.float32(0.875))
    w1 = np.float64(np.float32(0.125))
    # map 0 won at (2,2) where only channel 0 spiked: LTP on c0, LTD on c1 (A- = 0.75 A+).
    # map 1 won at (6,6) where only channel 1 spiked: LTD on c0, LTP on c1.
    ltp = lambda x: np.float32(x + 0.004 * x * (1 - x))
    ltd = lambda x: np.float32(x - 0.003 * x * (1 - x))
    np.testing.assert_array_equal(got, np.array([[ltp(w0), ltd(w1)], [ltd(w1), ltp(w0)]], np.float32))


@pytest.mark.parametrize("rounding", ["truncate", "half_up", "stochastic"])
def test_stdp_int_on_hand_computed_patch(rounding):
    opts, w, ev = _competition_case("greedy")
    fmt = FMT16.replace(**{"stdp.rounding": rounding, "stdp.stdp_shift": 8})
    wq = quantize_weights(w, 16)
    assert wq[0, 0, 0, 0] == 57344 and wq[0, 1, 0, 0] == 8192  # 0.875, 0.125 exactly
    tr = train_conv(ev, wq, opts, int_arithmetic(opts, fmt))
    p = 57344 * (65536 - 57344)  # w(1-w) * 2^32 = 469,762,048, the same for both weights
    # LTP adds p / 2^(16+8) = 28.0 exactly; LTD subtracts 3p / 2^(16+8+2) = 21.0 exactly.
    assert p == 469762048
    if rounding != "stochastic":
        ltp, ltd = 57344 + 28, 8192 - 21
        expected = [[ltp, ltd], [ltd, ltp]]
    else:
        # exact quotients: the random fraction can never carry, whatever the LFSR gives
        expected = [[57344 + 28, 8192 - 21], [8192 - 21, 57344 + 28]]
        state = fmt.stdp.lfsr_seed
        for _ in range(4):  # four roundings were made: maps 0 then 1, weights (c0, c1)
            state = lfsr_step(state)
        assert tr.lfsr_state == state
    np.testing.assert_array_equal(tr.final_weights[:, :, 0, 0], expected)


def test_stdp_int_rounding_modes_differ_on_fractional_update():
    # w = 0.75 at 8 bits: p = 192*64 = 12288. With stdp_shift 3, LTP adds p >> 11 = 6.0 and LTD
    # subtracts 3p >> 13 = 36864 / 8192 = 4.5: truncate gives 4, half_up gives 5.
    opts = ConvOptions(in_channels=2, in_size=1, maps=1, kernel=1, threshold=0.5, inhibition_window=1,
                       step0_doubling=False, lr_inc_rate=1000, homeostasis=False,
                       last_snapshot_weights=False)
    ev = events([[(0, 0, 0, 0)]], (2, 1, 1))
    w = np.array([[[[192]], [[192]]]], dtype=np.int64)
    for rounding, expected_ltd in [("truncate", 192 - 4), ("half_up", 192 - 5)]:
        fmt = preset("fpga-8").replace(**{"stdp.rounding": rounding, "stdp.stdp_shift": 3})
        tr = train_conv(ev, w, opts, int_arithmetic(opts, fmt))
        # channel 0 spiked: LTP 12288 >> 11 = 6.0 exactly; channel 1: LTD 4.5 rounded.
        assert tr.final_weights[0, :, 0, 0].tolist() == [198, expected_ltd], rounding


def test_stochastic_rounding_uses_lfsr_fraction():
    opts = ConvOptions(in_channels=2, in_size=1, maps=1, kernel=1, threshold=0.5, inhibition_window=1,
                       step0_doubling=False, lr_inc_rate=1000, homeostasis=False,
                       last_snapshot_weights=False)
    ev = events([[(0, 0, 0, 0)]], (2, 1, 1))
    w = np.array([[[[192]], [[192]]]], dtype=np.int64)
    fmt = preset("fpga-8").replace(**{"stdp.rounding": "stochastic", "stdp.stdp_shift": 3})
    tr = train_conv(ev, w, opts, int_arithmetic(opts, fmt))
    s1 = lfsr_step(fmt.stdp.lfsr_seed)
    s2 = lfsr_step(s1)
    # LTP: 12288 >> 11 with random low 11 bits: 12288 is a multiple of 2048, no carry -> +6.
    # LTD: 36864 >> 13 = 4.5; adds (s2 & 0x1fff): rounds up iff that is >= 4096.
    ltd = (36864 + (s2 & 0x1FFF)) >> 13
    assert tr.final_weights[0, :, 0, 0].tolist() == [198, 192 - ltd]
    assert tr.lfsr_state == s2


def test_homeostasis_suppresses_a_map_after_two_wins_in_its_window():
    opts = ConvOptions(in_channels=1, in_size=4, maps=1, kernel=1, threshold=0.5, inhibition_window=1,
                       a_plus=0.004, step0_doubling=False, lr_inc_rate=1000, homeostasis=True,
                       homeostasis_const=5, homeostasis_factor=3.0, homeostasis_coeff=0.003,
                       last_snapshot_weights=False)
    imgs = [[(0, 0, n % 4, n // 4)] for n in range(9)]
    ev = events(imgs, (1, 4, 4))
    tr = train_conv(ev, np.full((1, 1, 1, 1), 0.875, np.float32), opts, float_arithmetic(opts))
    # Window counts are cleared at every step of images 0 and 5 (0 % 5, 5 % 5), so their wins
    # do not count. Image 1 -> 1 win, image 2 -> 2 wins, images 3, 4: 2 > 5/3 -> suppressed
    # (no winner, decay); image 5 clears and wins, 6 and 7 win (1, 2), 8 suppressed.
    wins = sorted(set(int(g) // 12 for g in tr.winners[:, 0]))
    assert wins == [0, 1, 2, 5, 6, 7]
    w = np.float32(0.875)
    for n in range(9):
        x = np.float64(w)
        if n in (0, 1, 2, 5, 6, 7):
            w = np.float32(x + 0.004 * x * (1 - x))  # the input spiked: LTP
        else:
            w = np.float32(x - 0.003 * x * (1 - x))  # suppressed: decay
    assert tr.final_weights[0, 0, 0, 0] == w


def test_learning_rate_schedule_and_snapshots():
    opts = ConvOptions(in_channels=1, in_size=1, maps=1, kernel=1, threshold=0.5, inhibition_window=1,
                       a_plus=0.002, lr_inc_rate=1, sample_interval=1, rate_cap=0.01,
                       homeostasis=False, step0_doubling=True, last_snapshot_weights=True)
    # lr_period = snapshot_period = 12*1 - 1 = 11: both fire at global steps 0, 11, 22, 33, 44.
    imgs = [[(5, 0, 0, 0)], [(5, 0, 0, 0)], [(5, 0, 0, 0)], [(9, 0, 0, 0)]]  # wins at 5, 17, 29, 45
    ev = events(imgs, (1, 1, 1))
    tr = train_conv(ev, np.full((1, 1, 1, 1), 0.5, np.float32), opts, float_arithmetic(opts))
    assert tr.snapshot_steps.tolist() == [0, 11, 22, 33, 44]
    assert tr.level == 5
    # The wins use levels 1, 2, 3, 5 -> A+ = 0.004, 0.008, min(0.016, 0.01), min(0.064, 0.01)
    w = np.float32(0.5)
    for a in (0.004, 0.008, 0.01, 0.01):
        x = np.float64(w)
        w = np.float32(x + a * x * (1 - x))
    assert tr.final_weights[0, 0, 0, 0] == w
    # the last snapshot (step 44) came before the last win (step 45): the weights in use lag
    assert tr.weights[0, 0, 0, 0] == tr.snapshots[-1][0, 0, 0, 0] != w


# ----- initial weights, overflow -----------------------------------------------------------

def test_init_weights_follow_the_reference_recipe():
    w = init_weights(CONV1)
    assert w.shape == (30, 2, 5, 5) and w.dtype == np.float32
    rng = np.random.RandomState(0)
    ref = rng.normal(0.8, 0.01, 1500)
    ref[(ref >= 1) | (ref <= 0)] = 0.8
    ref = ref.astype(np.float32).reshape(1, 1, 25, 2, 30)  # the reference's storage order
    np.testing.assert_array_equal(w[7, 1, 2, 3], ref[0, 0, 2 * 5 + 3, 1, 7])
    wide = init_weights(ConvOptions(init_std=1.0))
    assert ((wide > 0) & (wide < 1)).all() and (wide == np.float32(0.8)).sum() > 800  # P(outside (0,1)) = 0.63 -> ~945


def test_worst_case_potential_never_overflows_paper_precision():
    fmt = preset("paper-float-equivalent")  # 24-bit weights
    arith = int_arithmetic(CONV1, fmt)
    bound = fmt.potential_bound(2, 5)
    assert bound == 50 * (2 ** 24 - 1) and bound < 2 ** 31 - 1
    assert np.iinfo(arith.potential_dtype).max >= bound
    spikes = [(0, c, y, x) for c in range(2) for y in range(27) for x in range(27)]
    ev = events([spikes], (2, 27, 27))
    w = np.full((30, 2, 5, 5), 2 ** 24 - 1, dtype=np.int64)
    # threshold set just at the bound: only the exact worst case reaches it
    opts = ConvOptions(threshold=50 * (2 ** 24 - 1) / 2 ** 24)
    run = run_conv(ev, w, opts, int_arithmetic(opts, fmt), record=True)
    assert run.spike_counts[0] == 23 * 23
    assert set(run.spike_list(0)[:, 1].tolist()) == {0}  # all maps tie: map 0 everywhere


# ----- kernel == dense transcription on real images ----------------------------------------

@pytest.fixture(scope="module")
def sample_images():
    from spykehw.data import load_sample
    return load_sample().train_images[:24]


@pytest.mark.parametrize("fmt_name", [None, "fpga-16", "fpga-8"])
def test_inference_kernel_equals_dense_reference(sample_images, fmt_name):
    fmt = preset(fmt_name) if fmt_name else None
    enc = EncoderOptions()
    ev = encode_events(sample_images, enc, fmt)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.3, 1.0, (30, 2, 5, 5)).astype(np.float32)  # diverse maps, many spikes
    w = w if fmt is None else quantize_weights(w, fmt.conv.weight_bits)
    arith = float_arithmetic(CONV1) if fmt is None else int_arithmetic(CONV1, fmt)
    run = run_conv(ev, w, CONV1, arith, record=True)
    dense = dense_conv([dense_from_events(ev, n) for n in range(len(ev))], w, CONV1, fmt=fmt)
    assert run.spike_counts.sum() > 20 * len(ev)
    for n in range(len(ev)):
        np.testing.assert_array_equal(run.spike_tensor(n, 12), dense["spikes"][n], err_msg=f"image {n}")
    np.testing.assert_array_equal(run.features, dense["features"])


@pytest.mark.parametrize("fmt_name,rounding,competition", [
    (None, None, "greedy"), (None, None, "per_map"),
    ("fpga-16", "half_up", "greedy"), ("fpga-16", "truncate", "per_map"),
    ("fpga-8", "stochastic", "greedy"), ("edge-4", "stochastic", "greedy"),
])
def test_training_kernel_equals_dense_reference(sample_images, fmt_name, rounding, competition):
    opts = ConvOptions(competition=competition, lr_inc_rate=2, sample_interval=3)  # schedule fires
    fmt = preset(fmt_name).replace(**{"stdp.rounding": rounding}) if fmt_name else None
    ev = encode_events(sample_images, EncoderOptions(), fmt)
    w0 = initial_conv1_weights(opts, fmt)
    arith = float_arithmetic(opts) if fmt is None else int_arithmetic(opts, fmt)
    tr = train_conv(ev, w0, opts, arith, chunk=7)  # chunked calls must not change anything
    dense = dense_conv([dense_from_events(ev, n) for n in range(len(ev))], w0, opts, fmt=fmt, train=True)
    assert len(tr.winners) > 30
    assert [tuple(r) for r in tr.winners.tolist()] == [tuple(int(v) for v in r) for r in dense["winners"]]
    np.testing.assert_array_equal(tr.final_weights, dense["weights"])
    np.testing.assert_array_equal(tr.snapshot_steps, dense["snapshot_steps"])
    for a, b in zip(tr.snapshots, dense["snapshots"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tr.winners_per_step, dense["winners_per_step"])
