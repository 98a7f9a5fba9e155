"""Property test: small random conv layers (channels, input size, kernel, maps, parallelism,
steps, spikes per input, number formats, potential memory (the ECP5 or the UP5K core), weights and
inputs drawn by hypothesis) in the Amaranth
simulator equal the golden model (:func:`spykehw.golden.conv.run_conv`), spike for spike and
feature for feature, with shuffled tokens and random stalls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spykehw.golden.formats import preset
from spykehw.golden.options import ConvOptions

pytest.importorskip("amaranth")

from spykehw.rtl.conv_config import ConvCoreConfig  # noqa: E402
from test_rtl_conv import assert_rtl_matches, golden, random_images  # noqa: E402


@st.composite
def layers(draw):
    C = draw(st.integers(1, 2))
    S = draw(st.integers(4, 8))
    K = draw(st.integers(2, min(4, S - 1)))
    M = draw(st.integers(1, 6))
    L = draw(st.sampled_from([d for d in range(1, M + 1) if M % d == 0]))
    fmt = draw(st.sampled_from(["fpga-8", "edge-4", "fpga-16"]))
    steps = draw(st.integers(2, 5))
    spikes = draw(st.integers(1, 2))
    threshold = draw(st.sampled_from([1.0, 2.0, 3.0, 5.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    memory = draw(st.sampled_from(["block", "spram"]))      # the ECP5 core or the UP5K one
    return (ConvOptions(in_channels=C, in_size=S, maps=M, kernel=K, threshold=threshold), fmt, steps, L,
            spikes, seed, memory)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_random_small_layers_equal_the_golden_model(layer):
    opts, fmt_name, steps, parallelism, spikes, seed, memory = layer
    fmt = preset(fmt_name)
    rng = np.random.default_rng(seed)
    top = (1 << fmt.conv.weight_bits) - 1
    weights = rng.integers(top // 3, top + 1, size=(opts.maps, opts.in_channels, opts.kernel, opts.kernel))
    images = random_images(rng, opts, steps, 2, spikes, float(rng.uniform(0.2, 0.7)))
    cfg = ConvCoreConfig(options=opts, formats=fmt, steps=steps, parallelism=parallelism,
                         max_spikes_per_input=spikes, potential_memory=memory)
    exp_s, exp_f = [], []
    for ev in images:
        run = golden([ev], weights, opts, fmt, steps, spikes)
        exp_s.append(run.spike_list(0))
        exp_f.append(run.features[0])
    assert_rtl_matches(cfg, [weights], images, exp_s, exp_f, order="shuffled", seed=seed % 1000, stall=0.2)
