"""TODO docstring"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from amaranth.sim import Simulator

from ...rtl.classifier import Classifier, ClassifierConfig
from ..framework.memory_model import (
    PyMemoryModel,
)
from ..framework.streams import stream_get, stream_put
from .packing import (
    ClassifierOutputs,
    feature_tokens,
    load_words,
    split_outputs,
    w2_rows,
    write_bus,
)

__all__ = [
    "run_pysim",
]


# ----- the bare classifier in the Amaranth simulator -----------------------------------------

@dataclass
class PysimRun:
    outputs: ClassifierOutputs
    cycles: int                 # from the first feature offered to the last output word
    requests: int
    words: int
    output_edges: list[int]     # edge of the last output transfer of each image
    hidden_edges: list[int]     # edge of the last hidden-tap word of each image (stage A done)


def run_pysim(cfg: ClassifierConfig, params: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
              images: Sequence[Sequence[int]], *, latency: int = 1, stall: float = 0.0, seed: int = 0,
              vcd: str | Path | None = None) -> PysimRun:
    """Load ``params`` (W2q, b2q, W3q, b3q), stream ``images`` (lists of active indices) and
    collect every output, in the Amaranth simulator.

    ``W2`` is served by a :class:`PyMemoryModel` (``latency``, ``stall`` probability) unless
    the configuration keeps it on chip; ``stall`` also inserts gaps in the feature stream and
    holds the output's ``ready`` low at random.
    """


    dut = Classifier(cfg)
    W2q, b2q, W3q, b3q = params
    writes = load_words(cfg, W2q, b2q, W3q, b3q)
    tokens = feature_tokens(images)
    n = len(images)
    rng_in, rng_out = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    hidden_items: list[dict] = []
    logit_items: list[dict] = []
    out_items: list[dict] = []
    out_edges: list[int] = []
    hidden_edges: list[int] = []
    mem = None if cfg.w2_on_chip else PyMemoryModel(w2_rows(cfg, W2q), latency=latency,
                                                    stall_prob=stall, seed=seed)
    state = {"start": 0, "edge": 0}

    async def loader_and_producer(ctx):
        await write_bus(ctx, dut.load, writes)
        state["start"] = state["edge"]
        for tok in tokens:
            while stall and rng_in.random() < stall:
                await ctx.tick()
            await stream_put(ctx, dut.i_features, tok)

    async def consumer(ctx):
        for _ in range(n * cfg.classes):
            while stall and rng_out.random() < stall:
                await ctx.tick()
            p = await stream_get(ctx, dut.o_stream)
            out_items.append({"word": p.word, "argmax": p.argmax, "last": p.last})
            if p.last:
                out_edges.append(state["edge"])

    async def taps(ctx):
        async for _clk, _rst, hv, hp, lv, lp in ctx.tick().sample(
                dut.o_hidden.valid, dut.o_hidden.payload, dut.o_logits.valid, dut.o_logits.payload):
            state["edge"] += 1
            if hv:
                hidden_items.append({"bits": hp.bits, "last": hp.last})
                if hp.last:
                    hidden_edges.append(state["edge"])
            if lv:
                logit_items.append({"logit": lp.logit, "last": lp.last})

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(loader_and_producer)
    sim.add_testbench(consumer)
    sim.add_process(taps)
    if mem is not None:
        sim.add_testbench(mem.run(dut.w2), background=True)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    outputs = split_outputs(cfg, n, hidden_items, logit_items, out_items)
    return PysimRun(outputs, state["edge"] - state["start"], mem.requests if mem else 0,
                    mem.words if mem else 0, [e - state["start"] for e in out_edges],
                    [e - state["start"] for e in hidden_edges])
