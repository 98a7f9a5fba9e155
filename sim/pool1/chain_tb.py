"""cocotb testbench: the generated Layer2Chain (Conv1 core -> Pool1 -> Conv2 core) against a
``layer2-chain`` vector file.

Environment: ``SPYKEHW_VECTORS``, ``SPYKEHW_PORTS``, ``SPYKEHW_WAVEFORM``, ``SPYKEHW_REPORT``,
optionally ``SPYKEHW_STALL`` (``"p[:seed]"``: random idle input cycles and ``ready`` low on both
outputs), ``SPYKEHW_CHAIN_IMAGES`` (``"a:b"``: only images ``a .. b-1``) and
``SPYKEHW_CHAIN_STATS`` (a JSON file for the image count and the cycles from the first input
transfer to the last image's final Conv2 marker).

The images' encoder spikes are streamed in back to back (each step's spikes, then its marker);
both outputs are collected, split per image and step, and each image is compared with the
golden Conv2 spikes (a set per step) and Pool2 features (a set per image).
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import with_timeout

from ...rtl.layer2_chain import words_digest
from ...rtl.layouts import pack
from ..conv.packing import compare_image, image_tokens, split_outputs, weight_words
from ..framework.cocotb_support import (
    CLOCK_PERIOD_NS,
    ENV_REPORT,
    ENV_VECTORS,
    ENV_WAVEFORM,
    Checker,
    Mismatch,
    StreamDriver,
    StreamMonitor,
    env_path,
    load_design,
    random_stall,
    reset,
    stall_from_env,
    start_clock,
)
from ..framework.vectors import read_vectors
from .chain import ENV_STATS, KIND

__all__ = ["chain_matches_vectors"]


def _rows(vs, name: str, offsets: str, n: int):
    o = vs[offsets]
    return vs[name][o[n]:o[n + 1]].astype(int)


@cocotb.test()
async def chain_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind=KIND)
    design = load_design()
    p = design.params
    for key in ("conv1", "pool1", "conv2"):
        assert json.dumps(p[key], sort_keys=True) == json.dumps(vs.options[key], sort_keys=True), \
            f"design {design.name}: its {key} is not the one vector {vs.name} needs"
    for key in ("conv1", "conv2"):
        words = weight_words(p[key], vs[f"{key}_weights"])
        assert p[f"{key}_weights_sha256"] == words_digest(words), \
            f"design {design.name} holds other {key} weights than vector {vs.name}"
    a, _, b = os.environ.get("SPYKEHW_CHAIN_IMAGES", "").partition(":")
    first = int(a) if a else 0
    last = int(b) if b else len(vs["images"])
    images = list(range(first, last))
    T = int(p["conv2"]["steps"])
    cases = list(vs.options["cases"])

    tokens = [tok for i in images for tok in image_tokens(_rows(vs, "events", "event_offsets", i), T)]
    n_spikes = sum(len(_rows(vs, "spikes", "spike_offsets", i)) for i in images) + T * len(images)
    n_features = int(vs["features"][first:last].sum()) + len(images)

    prob, seed = stall_from_env()
    start_clock(dut)
    driver = StreamDriver(dut, "i_events", design, stall=random_stall(prob, seed))
    spikes_mon = StreamMonitor(dut, "o_spikes", design, stall=random_stall(prob, seed + 1))
    features_mon = StreamMonitor(dut, "o_features", design, stall=random_stall(prob, seed + 2))
    await reset(dut)
    checker = Checker(vector=vs.name, waveform=env_path(ENV_WAVEFORM, required=False),
                      report_path=env_path(ENV_REPORT, required=False),
                      item_label=lambda i: cases[i] if i < len(cases) else "")
    t0 = get_sim_time("ns")
    cocotb.start_soon(driver.send(tokens))
    features_task = cocotb.start_soon(features_mon.receive(n_features))
    bound_ns = (len(tokens) + n_spikes) * 400 * CLOCK_PERIOD_NS * (4 if prob else 1) + 10 ** 6
    spike_items = await with_timeout(spikes_mon.receive(n_spikes), bound_ns, "ns")
    t1 = get_sim_time("ns")
    feature_items = await with_timeout(features_task, bound_ns, "ns")

    lay = p["conv2"]["layouts"]
    spike_words = [pack(lay["spike"], d) for d in spike_items]
    feature_words = [pack(lay["feature"], d) for d in feature_items]
    outputs = split_outputs(p["conv2"], spike_words, feature_words, len(images))
    for k, i in enumerate(images):
        spikes = _rows(vs, "spikes", "spike_offsets", i)
        features = vs["features"][i]
        checker.checked += len(spikes) + int(features.sum()) + T
        for mm in compare_image(i, outputs[k], spikes, features):
            checker.mismatches.append(Mismatch(vs.name, i, mm.field(), mm.expected, mm.found,
                                               cases[i] if i < len(cases) else ""))
    stats = env_path(ENV_STATS, required=False)
    if stats is not None:
        stats.write_text(json.dumps({"images": len(images),
                                     "cycles": int(round((t1 - t0) / CLOCK_PERIOD_NS))}) + "\n")
    checker.finish()
