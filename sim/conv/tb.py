"""cocotb testbench: the generated ConvHarness (a ConvCore inside) against a ``conv-infer`` file.

Environment (set by :func:`spykehw.sim.framework.runners.run_tests`): ``SPYKEHW_VECTORS`` (the vector
file), ``SPYKEHW_PORTS`` (the JSON written beside the Verilog), ``SPYKEHW_WAVEFORM`` (named in
mismatch reports), ``SPYKEHW_REPORT`` (JSON mismatch report), and optionally ``SPYKEHW_STALL``
(any probability > 0 turns on the harness's pseudo-random stalls on all three streams),
``SPYKEHW_CONV_IMAGES`` (comma-separated image indices: run only those, e.g. to record the
waveform of one failing image) and ``SPYKEHW_CONV_STATS`` (a JSON file for the run's cycle
counts and wall times).

Flow: the weight set of the first image is written through the weight bus (one word per
clock) and read back and compared; images are grouped into batches that share a weight set and
fit the harness's memories; for each batch the tokens are written straight into the harness's
event memory (VPI), ``start`` is pulsed, and the testbench sleeps until ``done`` while the
simulator runs free under a C-level clock; then the capture memories are read (VPI) and every
image is compared step by step (spikes as a set per step, features as a set per image). Each
difference is reported with the vector file, image (and its case label), step, map, position,
expected and found.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.handle import Immediate
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, with_timeout

from ..framework.batches import plan_batches
from ..framework.cocotb_support import (
    ENV_REPORT,
    ENV_VECTORS,
    ENV_WAVEFORM,
    Checker,
    Mismatch,
    env_path,
    load_design,
    reset,
    stall_from_env,
    start_clock,
)
from ..framework.vectors import read_vectors
from .packing import (
    compare_image,
    image_tokens,
    max_outputs_per_image,
    pack_tokens,
    pack_words,
    split_outputs,
    unpack_words,
    weight_words,
)
from .vector_gen import KIND, image_events, image_spikes

__all__ = ["conv_matches_vectors", "ENV_IMAGES", "ENV_STATS", "check_design_matches", "plan_conv_batches",
           "run_batch", "write_stats"]

ENV_IMAGES = "SPYKEHW_CONV_IMAGES"
ENV_STATS = "SPYKEHW_CONV_STATS"


def check_design_matches(params: dict, vs) -> None:
    """Refuse to compare a design built for other parameters than the vectors' own."""
    want = {"options": vs.options["conv"], "steps": vs.options["steps"],
            "max_spikes_per_input": vs.options["max_spikes_per_input"],
            "weight_bits": vs.formats.conv.weight_bits, "threshold": vs.options["threshold"],
            "potential_bits": vs.options["potential_bits"]}
    got = {k: params.get(k) for k in want}
    assert got == want, f"the design was built with {got}, vector file {vs.name} needs {want}"


def plan_conv_batches(params: dict, images: list[int], weight_set, token_counts: dict[int, int]) -> list[list[int]]:
    """Consecutive images sharing a weight set, as many as the harness memories surely hold
    (the worst-case output of an image, not the expected one, so a wrong design cannot
    overflow them unnoticed)."""
    depth = params["harness"]
    spk_max, ft_max = max_outputs_per_image(params)
    batches = plan_batches(
        [(token_counts[i], spk_max, ft_max) for i in images],
        (depth["ev_depth"], depth["spike_depth"], depth["feature_depth"]),
        groups=[weight_set[i] for i in images], names=("events", "spikes", "features"))
    return [[images[j] for j in batch] for batch in batches]


async def read_weights(dut, n_words: int, clk, base: int = 0) -> list[int]:
    """Read words ``base .. base+n_words-1`` back over the weight bus (the core must be idle)."""
    back = []
    dut.weights__r_en.value = 1
    for addr in range(base, base + n_words):
        dut.weights__addr.value = addr
        await ReadOnly()
        assert int(dut.weights__r_ready.value) == 1, "the core refused a weight read while idle"
        await RisingEdge(clk)
        await ReadOnly()
        assert int(dut.weights__r_valid.value) == 1
        back.append(int(dut.weights__r_data.value))
        await FallingEdge(clk)
    dut.weights__r_en.value = 0
    return back


async def load_weights(dut, params: dict, words: list[int], clk) -> list[int]:
    """Write every word through the bus, then read them all back."""
    lanes = (1 << params["parallelism"]) - 1
    await FallingEdge(clk)
    dut.weights__w_en.value = lanes
    for addr, word in enumerate(words):
        dut.weights__addr.value = addr
        dut.weights__w_data.value = word
        await FallingEdge(clk)
    dut.weights__w_en.value = 0
    return await read_weights(dut, len(words), clk)


async def run_batch(dut, harness, clk, words: list[int], n_tokens: int, n_images: int,
                    bound: int) -> float:
    """Write a batch's packed token words into the harness's event memory (idle: all at once),
    start it and wait for ``done``, at most ``bound`` cycles (10 ns each); the seconds the
    simulation took."""
    mem = harness.ev_mem
    for k, w in enumerate(words):
        mem[k].set(Immediate(w))
    await FallingEdge(clk)
    dut.n_tokens.value = n_tokens
    dut.n_images.value = n_images
    dut.start.value = 1
    await FallingEdge(clk)
    dut.start.value = 0
    t_sim = time.perf_counter()
    await with_timeout(RisingEdge(dut.done), bound * 10, "ns")
    await ReadOnly()
    return time.perf_counter() - t_sim


def write_stats(stats: dict) -> None:
    """The run's statistics as JSON into ``$SPYKEHW_CONV_STATS``, when set."""
    path = env_path(ENV_STATS, required=False)
    if path is not None:
        path.write_text(json.dumps(stats, indent=1) + "\n")


def _child(handle, name: str):
    try:
        return getattr(handle, name)
    except AttributeError:
        return None


@cocotb.test()
async def conv_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind=KIND)
    design = load_design()
    params = dict(design.params)
    check_design_matches(params, vs)
    cases = list(vs.options["cases"])
    n_all = len(cases)
    sel = os.environ.get(ENV_IMAGES, "")
    images = [int(s) for s in sel.split(",") if s.strip()] if sel else list(range(n_all))
    prob, _seed = stall_from_env()
    waveform = env_path(ENV_WAVEFORM, required=False)
    checker = Checker(vector=vs.name, waveform=waveform,
                      report_path=env_path(ENV_REPORT, required=False),
                      item_label=lambda i: cases[i])

    clk = dut.clk
    harness = _child(dut, "harness")
    if harness is None:         # the bare harness: cocotb drives the clock
        harness = dut
        start_clock(dut)        # (under the simulation top the clock runs by itself)
    await reset(dut, idle={"start": 0, "stall": 0, "weights__w_en": 0, "weights__r_en": 0,
                           "n_tokens": 0, "n_images": 0, "cap_addr": 0})
    dut.stall.value = int(prob > 0)

    tokens = {i: pack_tokens(params, image_tokens(image_events(vs, i), params["steps"])) for i in images}
    pk = params["harness"]["pack"]
    tok_bits, spk_bits, ft_bits = (sum(f["width"] for f in params["layouts"][k])
                                   for k in ("token", "spike", "feature"))
    weight_set = [int(w) for w in vs["weight_set"]]
    batches = plan_conv_batches(params, images, weight_set, {i: len(t) for i, t in tokens.items()})
    stats = {"images": 0, "cycles": 0, "batches": [], "wall_s": 0.0}
    t_start = time.perf_counter()
    loaded = None
    for batch in batches:
        ws = weight_set[batch[0]]
        if ws != loaded:
            words = weight_words(params, vs["weights"][ws])
            t_w = time.perf_counter()
            back = await load_weights(dut, params, words, clk)
            stats["weights_s"] = stats.get("weights_s", 0.0) + time.perf_counter() - t_w
            checker.checked += len(words)
            for addr, (want, got) in enumerate(zip(words, back)):
                if want != got:
                    checker.mismatches.append(Mismatch(vs.name, batch[0], f"weight set {ws} word {addr}",
                                                       hex(want), hex(got), "weight read-back"))
            loaded = ws
        flat = [w for i in batch for w in tokens[i]]
        t0 = time.perf_counter()
        bound = sum(len(tokens[i]) * params["kernel"] ** 2 * params["groups"] + params["steps"]
                    * (params["out_size"] ** 2 * params["groups"] + 16) for i in batch)
        bound = bound * (4 if prob > 0 else 1) + 1000
        t_sim = await run_batch(dut, harness, clk, pack_words(flat, tok_bits, pk["ev"]), len(flat),
                                len(batch), bound)
        n_spk, n_ft = int(dut.spike_count.value), int(dut.feature_count.value)
        cycles = int(dut.cycles.value)
        overflow = int(dut.overflow.value)
        spk = harness.spike_cap
        ft = harness.feature_cap
        spike_words = unpack_words([int(spk[k].value) for k in range(-(-n_spk // pk["spike"]))],
                                   spk_bits, pk["spike"], n_spk)
        feature_words = unpack_words([int(ft[k].value) for k in range(-(-n_ft // pk["feature"]))],
                                     ft_bits, pk["feature"], n_ft)
        stats["batches"].append({"images": len(batch), "cycles": cycles, "sim_s": t_sim,
                                 "wall_s": time.perf_counter() - t0})
        stats["images"] += len(batch)
        stats["cycles"] += cycles
        outs = split_outputs(params, spike_words, feature_words, len(batch))
        for i, out in zip(batch, outs):
            if overflow:
                out.problems.append("a capture memory overflowed")
            spikes, features = image_spikes(vs, i), vs["features"][i]
            checker.checked += len(spikes) + int(features.sum()) + params["steps"]
            for mm in compare_image(i, out, spikes, features):
                checker.mismatches.append(Mismatch(vs.name, i, mm.field(), mm.expected, mm.found,
                                                   cases[i]))
        await FallingEdge(clk)
    stats["wall_s"] = time.perf_counter() - t_start
    write_stats(stats)
    checker.finish()
