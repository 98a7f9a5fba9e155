"""cocotb testbench: the generated ConvHarness around a *learning* ConvCore against a ``conv-learn`` file.

Environment (set by :func:`spykehw.sim.learning.cosim.run_learn_cosim`): ``SPYKEHW_VECTORS``,
``SPYKEHW_PORTS``, ``SPYKEHW_WAVEFORM``, ``SPYKEHW_REPORT`` (as for :mod:`spykehw.sim.conv.tb`),
and optionally ``SPYKEHW_STALL`` (random stalls on all streams), ``SPYKEHW_LEARN_IMAGES`` (train
only the first ``n`` images of the sequence), ``SPYKEHW_LEARN_EVERY`` (``1``, the default: one
image per batch and the weights read back and compared after every image; ``0``: as many images
per batch as the harness memories surely hold, weights compared after each batch),
``SPYKEHW_CONV_STATS`` (a JSON file for cycle counts and wall times) and ``SPYKEHW_LEARN_OUT`` (an
``.npz`` file for the weights and the snapshot copy read from the core after the last image:
``weights``, ``snapshot``, (M, C, K, K) int64).

Flow: reset (which also resets the core's learning state), write ``weights0`` through the
weight bus and read it back; then per batch (batches never cross an epoch boundary; ``new_epoch``
is pulsed before an epoch's first batch, the first epoch's excepted): tokens into the event
memory (VPI), ``start``, sleep until ``done`` (the harness raises it once the core is idle with
every output drained), read the winners capture memory and compare each image's winners
``(t, m, r, c)`` in order, then read every weight word and every word of the snapshot copy back
over the bus and compare with the expected weights and last snapshot after the batch's last
image. Each difference names the file, image, step (or weight ``map/c/kr/kc``), expected and found.
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from ...golden.files import atomic_write
from ..conv.packing import (
    image_tokens,
    max_outputs_per_image,
    pack_tokens,
    pack_words,
    unpack_words,
    weight_words,
)
from ..conv.tb import _child, load_weights, read_weights, run_batch, write_stats
from ..conv.vector_gen import image_events
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
from .harness import winners_by_image, words_to_weights
from .vector_gen import KIND, image_winners

__all__ = ["learning_matches_vectors", "ENV_LEARN_IMAGES", "ENV_LEARN_EVERY", "ENV_LEARN_OUT",
           "learn_batches"]

ENV_LEARN_IMAGES = "SPYKEHW_LEARN_IMAGES"
ENV_LEARN_EVERY = "SPYKEHW_LEARN_EVERY"
ENV_LEARN_OUT = "SPYKEHW_LEARN_OUT"


def check_design_matches(params: dict, vs) -> None:
    want = {"options": vs.options["conv"], "steps": vs.options["steps"],
            "max_spikes_per_input": vs.options["max_spikes_per_input"],
            "weight_bits": vs.formats.conv.weight_bits, "threshold": vs.options["threshold"],
            "learning": True, "stdp": vs.formats.to_dict()["stdp"]}
    got = {k: params.get(k) for k in want}
    assert got == want, f"the design was built with {got}, vector file {vs.name} needs {want}"


def learn_batches(params: dict, n_images: int, token_counts: list[int], every: bool,
                  epoch_images: int | None = None) -> list[list[int]]:
    """Consecutive images in batches the harness memories surely hold (worst-case outputs),
    none across the start of an epoch (every ``epoch_images`` images)."""
    if every:
        return [[i] for i in range(n_images)]
    e = epoch_images or n_images
    depth = params["harness"]
    spk_max, ft_max = max_outputs_per_image(params)
    win_max = min(params["maps"], params["out_size"] ** 2) + params["steps"]
    out = []
    for a in range(0, n_images, e):
        b = min(n_images, a + e)
        plan = plan_batches([(token_counts[i], spk_max, ft_max, win_max) for i in range(a, b)],
                            (depth["ev_depth"], depth["spike_depth"], depth["feature_depth"],
                             depth["winner_depth"]), names=("events", "spikes", "features", "winners"))
        out += [[a + i for i in batch] for batch in plan]
    return out


@cocotb.test()
async def learning_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind=KIND)
    design = load_design()
    params = dict(design.params)
    check_design_matches(params, vs)
    cases = list(vs.options["cases"])
    n_sel = os.environ.get(ENV_LEARN_IMAGES, "")
    n = min(len(cases), int(n_sel)) if n_sel else len(cases)
    every = os.environ.get(ENV_LEARN_EVERY, "1") != "0"
    prob, _seed = stall_from_env()
    checker = Checker(vector=vs.name, waveform=env_path(ENV_WAVEFORM, required=False),
                      report_path=env_path(ENV_REPORT, required=False), item_label=lambda i: cases[i])

    clk = dut.clk
    harness = _child(dut, "harness")
    if harness is None:
        harness = dut
        start_clock(dut)
    await reset(dut, idle={"start": 0, "stall": 0, "weights__w_en": 0, "weights__r_en": 0,
                           "n_tokens": 0, "n_images": 0, "cap_addr": 0, "new_epoch": 0})
    dut.stall.value = int(prob > 0)

    words0 = weight_words(params, vs["weights0"])
    back = await load_weights(dut, params, words0, clk)
    checker.checked += len(words0)
    for addr, (want, got) in enumerate(zip(words0, back)):
        if want != got:
            checker.mismatches.append(Mismatch(vs.name, 0, f"initial weight word {addr}", hex(want),
                                               hex(got), "weight read-back"))

    tokens = [pack_tokens(params, image_tokens(image_events(vs, i), params["steps"])) for i in range(n)]
    pk = params["harness"]["pack"]
    tok_bits, win_bits = (sum(f["width"] for f in params["layouts"][k]) for k in ("token", "winner"))
    stats = {"images": 0, "cycles": 0, "batches": [], "wall_s": 0.0, "sim_s": 0.0}
    t_start = time.perf_counter()
    K, C, M = params["kernel"], params["channels"], params["maps"]
    snap_base = params["snapshot_base"]
    epoch_images = int(vs.options["epoch_images"])
    for batch in learn_batches(params, n, [len(t) for t in tokens], every, epoch_images):
        if batch[0] and batch[0] % epoch_images == 0:
            await FallingEdge(clk)
            dut.new_epoch.value = 1
            await FallingEdge(clk)
            dut.new_epoch.value = 0
        flat = [w for i in batch for w in tokens[i]]
        t0 = time.perf_counter()
        per_image = (params["steps"] * (params["out_size"] ** 2 + 2) * (M + 2)
                     + params["steps"] * 2 * M * (C * K * K + 4) + 1000)
        bound = sum(len(tokens[i]) * K * K * params["groups"] + per_image for i in batch)
        bound = bound * (4 if prob > 0 else 1) + 1000
        t_sim = await run_batch(dut, harness, clk, pack_words(flat, tok_bits, pk["ev"]), len(flat),
                                len(batch), bound)
        n_win = int(dut.winner_count.value)
        cycles = int(dut.cycles.value)
        overflow = int(dut.overflow.value)
        cap = harness.winner_cap
        words = unpack_words([int(cap[k].value) for k in range(-(-n_win // pk["winner"]))],
                             win_bits, pk["winner"], n_win)
        got_w, problems = winners_by_image(params, words, len(batch))
        if overflow:
            problems.append("a capture memory overflowed")
        for p in problems:
            checker.mismatches.append(Mismatch(vs.name, batch[0], "protocol", "well-formed streams", p,
                                               cases[batch[0]]))
        for i, got in zip(batch, got_w):
            exp = image_winners(vs, i)
            checker.checked += len(exp) + 1
            exp_l = [tuple(int(x) for x in r) for r in exp]
            got_l = [tuple(int(x) for x in r) for r in got]
            if exp_l != got_l:
                checker.mismatches.append(Mismatch(vs.name, i, "winners (t, m, r, c)", str(exp_l),
                                                   str(got_l), cases[i]))
        await FallingEdge(clk)
        last = batch[-1]
        read_back = {}
        for what, key, base in (("weight", "weights", 0), ("snapshot weight", "snapshots", snap_base)):
            wb = read_back[key] = words_to_weights(params, await read_weights(dut, len(words0), clk, base))
            exp_w = vs[key][last]
            checker.checked += exp_w.size
            diff = list(zip(*(exp_w != wb).nonzero()))
            for m, c, kr, kc in diff[:5]:
                checker.mismatches.append(Mismatch(vs.name, last, f"{what} map {m} c {c} kr {kr} kc {kc}",
                                                   int(exp_w[m, c, kr, kc]), int(wb[m, c, kr, kc]),
                                                   cases[last]))
            if len(diff) > 5:
                checker.mismatches.append(Mismatch(vs.name, last, key, "equal",
                                                   f"{len(diff)} weights differ", cases[last]))
        stats["batches"].append({"images": len(batch), "cycles": cycles, "sim_s": t_sim,
                                 "wall_s": time.perf_counter() - t0})
        stats["images"] += len(batch)
        stats["cycles"] += cycles
        stats["sim_s"] += t_sim
    stats["wall_s"] = time.perf_counter() - t_start
    write_stats(stats)
    out = os.environ.get(ENV_LEARN_OUT, "")
    if out and stats["images"]:
        with atomic_write(out) as f:
            np.savez(f, weights=read_back["weights"], snapshot=read_back["snapshots"])
    checker.finish()
