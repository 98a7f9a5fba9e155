"""The second layer (issue 17): Pool1 options on hand-made spike lists, Pool1 spike trains against
the conv kernel's own pool, Conv2 float vs integer, and a short ``run --layers 2``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spykehw.cli import main
from spykehw.data import load_dataset
from spykehw.golden.conv import ConvRun
from spykehw.golden.formats import preset
from spykehw.golden.options import CONV1, NetworkOptions, OptionsError, PoolOptions
from spykehw.golden.pipeline import extract_features, train_conv1
from spykehw.golden.pipeline2 import extract_conv2, pool1_spikes, train_conv2
from spykehw.golden.pool import max_pool_spikes, pool_spikes
from spykehw.golden.spikes import dense_from_events

NO, INH, ACC = PoolOptions(), PoolOptions(lateral_inhibition=True), PoolOptions(spike_accumulation=True)


def _run(spikes: list[tuple[int, int, int, int, float]]) -> ConvRun:
    """One image's conv spikes ``(t, m, u, v, potential)`` in firing order, as run_conv records."""
    k = len(spikes)
    out = {f: np.zeros((1, 529), np.int16) for f in "tmuv"}
    out["p"] = np.zeros((1, 529), np.float64)
    for i, s in enumerate(spikes):
        for f, x in zip("tmuvp", s):
            out[f][0, i] = x
    return ConvRun(np.zeros((1, 3630), np.uint8), np.zeros((1, 30), np.int32), np.array([k]), out)


def _pool(spikes, pool, steps=12):
    r = pool_spikes(_run(spikes), 30, 11, steps, pool)
    return sorted(map(tuple, r.events.image(0).tolist())), r


# Conv spikes (t, m, u, v, V): window (0,0) gets map 3 and map 1 at step 2 with equal V, then
# map 5 at step 4; window (1,2) gets map 7 (V 16) and map 2 (V 20) at step 3; row 22 is dropped.
SPIKES = [(2, 3, 0, 1, 15.5), (2, 1, 1, 0, 15.5), (3, 7, 2, 4, 16.0), (3, 2, 3, 5, 20.0),
          (4, 5, 1, 1, 30.0), (5, 0, 22, 0, 40.0), (6, 3, 0, 0, 15.0)]


def test_pool1_lateral_inhibition_by_hand():
    ev, r = _pool(SPIKES, INH)
    # (0,0): first step 2, maps 1 and 3 tie at 15.5 -> map 1; the later spikes (step 4 map 5,
    # step 6 map 3) are blocked. (1,2): map 2 has the larger potential. Row 22: no pool row.
    assert ev == [(2, 1, 0, 0), (3, 2, 1, 2)]
    assert r.pool_counts[0].sum() == 2 and r.pool_counts[0, 1] == 1 and r.pool_counts[0, 2] == 1
    f = r.features[0].reshape(30, 11, 11)
    assert f.sum() == 2 and f[1, 0, 0] == 1 and f[2, 1, 2] == 1


def test_pool1_inhibition_ignores_accumulation():
    assert _pool(SPIKES, INH)[0] == _pool(SPIKES, PoolOptions(True, True))[0]


def test_pool1_without_inhibition_by_hand():
    ev, r = _pool(SPIKES, NO)
    assert ev == [(2, 1, 0, 0), (2, 3, 0, 0), (3, 2, 1, 2), (3, 7, 1, 2), (4, 5, 0, 0), (6, 3, 0, 0)]
    assert r.pool_counts[0, 3] == 2  # map 3 at (0,0): steps 2 and 6


def test_pool1_accumulation_by_hand():
    ev, _ = _pool(SPIKES, ACC)
    want = {(t, m, i, j) for m, i, j, t0 in [(1, 0, 0, 2), (3, 0, 0, 2), (7, 1, 2, 3), (2, 1, 2, 3), (5, 0, 0, 4)]
            for t in range(t0, 12)}
    assert ev == sorted(want)


def test_at_most_one_pool_spike_per_location_on_real_images():
    ds = load_dataset("mnist-sample", None)
    opts = NetworkOptions(stdp_images=200)
    w = train_conv1(ds.train_images[:200], opts, None).weights
    opts = dataclasses.replace(opts, pool1=INH)
    r = pool1_spikes(ds.test_images[:200], w, opts, None)
    for n in range(200):
        d = dense_from_events(r.events, n)  # (T, M, P, P)
        assert d.sum(axis=(0, 1)).max() <= 1
    assert max_pool_spikes(INH, 12) == 1 and max_pool_spikes(NO, 12) == 4 and max_pool_spikes(ACC, 12) == 12


@pytest.mark.parametrize("fmt", [None, "fpga-16"])
def test_pool1_trains_match_the_conv_kernels_pool(fmt):
    """Two implementations of the default Pool1: the conv kernel's own binarised features and
    per-map counts, and pool_spikes on the recorded spikes."""
    f = None if fmt is None else preset(fmt)
    ds = load_dataset("mnist-sample", None)
    opts = NetworkOptions(stdp_images=300)
    w = train_conv1(ds.train_images[:300], opts, f).weights
    ref = extract_features(ds.test_images[:500], w, opts, f)
    r = pool1_spikes(ds.test_images[:500], w, opts, f)
    assert np.array_equal(ref.features, r.features) and np.array_equal(ref.pool_counts, r.pool_counts)
    # the event lists hold exactly the counted spikes
    assert int(r.events.offsets[-1]) == int(r.pool_counts.sum())


def test_conv2_float_and_integer_agree():
    """Float vs integer Conv2 on the same Pool1 trains, with the float constants set to the
    integer model's powers of two (A+ = 2^-12, homeostasis 5 * 2^-14, cap 2^-3), 24-bit weights:
    only rounding differs. Bound: weights within 2e-4 of each other after 300 images (about 60
    updates per map), Pool2 features identical on >= 95% of 300 images."""
    ds = load_dataset("mnist-sample", None)
    base = NetworkOptions(stdp_images=300)
    w1 = train_conv1(ds.train_images[:300], base, None).weights
    opts = dataclasses.replace(base, conv2=dataclasses.replace(
        base.conv2, a_plus=2.0 ** -12, homeostasis_coeff=5 * 2.0 ** -14, rate_cap=0.125), conv2_images=300)
    fmt = preset("paper-float-equivalent")
    assert fmt.conv2_stdp.stdp_shift == 12 and fmt.conv2_stdp.homeostasis_mult == 5
    p1 = pool1_spikes(ds.train_images[:300], w1, opts, None)
    tf = train_conv2(p1.events, opts, None)
    ti = train_conv2(p1.events, opts, fmt)
    diff = np.abs(tf.final_weights.astype(np.float64) - ti.final_weights / 2.0 ** 24)
    assert diff.max() < 2e-4
    assert np.abs(tf.weights - 0.8).max() > 1e-2  # it did learn
    ff = extract_conv2(p1.events, tf.weights, opts, None).features
    fi = extract_conv2(p1.events, ti.weights, opts, fmt).features
    assert ff.shape == (300, 1800)
    assert np.all(ff == fi, axis=1).mean() >= 0.95


def test_conv2_options_and_formats_are_checked():
    with pytest.raises(OptionsError, match=r"^conv2\.in_channels: must equal conv\.maps \(20\)"):
        NetworkOptions().replace(**{"conv.maps": 20})
    with pytest.raises(OptionsError, match=r"^conv2\.threshold: must be > 0"):
        NetworkOptions().replace(**{"conv2.threshold": 0})
    fmt = preset("fpga-16")
    assert fmt.conv2_formats().stdp == fmt.conv2_stdp and fmt.conv2_formats().conv == fmt.conv
    assert fmt.replace(**{"conv2_stdp.stdp_shift": 11}).conv2_stdp.stdp_shift == 11
    assert CONV1 == NetworkOptions().conv


def test_run_layers_2_on_the_sample(tmp_path, capsys):
    """``spykehw run --layers 2`` at CI size: files, figures, results."""
    out = tmp_path / "runs"
    main(["run", "--layers", "2", "--pool1-inhibition", "--conv2-images", "60", "--conv2-epochs", "2",
          "--train-limit", "150", "--test-limit", "40", "--stdp-images", "40", "--epochs", "1",
          "--hidden", "8", "--no-hardware", "--quiet", "--out", str(out)])
    (folder,) = list(out.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["args"]["options"]["pool1"] == {"lateral_inhibition": True, "spike_accumulation": True}
    for tag in ("float", "int"):
        for name in ("conv2-spikes-per-image.png", "conv2-updates-per-map.png", "convergence-both-layers.png",
                     "conv2-features.png", "conv2-features.gif", "conv2_state.npz", "pool2_features.npz"):
            assert (folder / f"{tag}_{name}").is_file(), f"{tag}_{name}"
    results = manifest["results"]
    l2 = results["float layer2"]
    assert l2["conv2"]["images"] == 60 and l2["conv2"]["epochs"] == 2
    assert set(l2["test_acc"]) == {"pool2", "pool1+pool2"}
    assert "compare layer2" in results
    report = (folder / "report.txt").read_text()
    assert "Pool1 (lateral inhibition, accumulation)" in report and "Conv2 STDP: 60 images x 2 epoch" in report


@pytest.mark.parametrize("fmt_name,pool", [(None, NO), ("fpga-16", NO), ("fpga-16", INH), (None, ACC)])
def test_conv2_training_on_pool1_trains_equals_dense_reference(fmt_name, pool):
    """The Conv2 path end to end against the dense transcription of the authors' layer
    (golden/conv_dense.py) on real Pool1 trains (inputs spiking several times), with the
    integer model's Conv2 formats (``conv2_stdp``) and a schedule that fires within the run."""
    from spykehw.golden.conv_dense import dense_conv

    fmt = preset(fmt_name) if fmt_name else None
    ds = load_dataset("mnist-sample", None)
    opts = NetworkOptions(stdp_images=200, pool1=pool)
    w1 = train_conv1(ds.train_images[:200], opts, fmt).weights
    p1 = pool1_spikes(ds.train_images[200:206], w1, opts, fmt)
    opts = dataclasses.replace(opts, conv2=dataclasses.replace(opts.conv2, lr_inc_rate=2, sample_interval=2),
                               conv2_images=6)
    tr = train_conv2(p1.events, opts, fmt)
    from spykehw.golden.pipeline2 import initial_conv2_weights
    dense = dense_conv([dense_from_events(p1.events, n) for n in range(6)], initial_conv2_weights(opts, fmt),
                       opts.conv2, fmt=None if fmt is None else fmt.conv2_formats(), train=True)
    assert len(tr.winners) >= 10  # about 2 per image with Pool1 inhibition, 10 without
    assert [tuple(r) for r in tr.winners.tolist()] == [tuple(int(v) for v in r) for r in dense["winners"]]
    np.testing.assert_array_equal(tr.final_weights, dense["weights"])
    run = extract_conv2(p1.events, tr.final_weights, opts, fmt)
    dense_inf = dense_conv([dense_from_events(p1.events, n) for n in range(6)], tr.final_weights, opts.conv2,
                           fmt=None if fmt is None else fmt.conv2_formats())
    np.testing.assert_array_equal(run.features, dense_inf["features"])
