"""The bare conv core in the Amaranth simulator: weights written over the bus, images streamed,
outputs collected (the fast unit-test level of the verification ladder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...rtl.conv_config import ConvCoreConfig
from ...rtl.conv_core import ConvCore
from ...rtl.layouts import unpack
from ..framework.streams import TransferLog, simulate
from .packing import (
    ImageOutput,
    _layouts,
    image_tokens,
    pack_tokens,
    split_outputs,
    weight_words,
)

__all__ = [
    "PysimRun",
    "simulate_core",
]


# ----- the Amaranth simulator ----------------------------------------------------------------------

@dataclass
class PysimRun:
    """Result of :func:`simulate_core`: outputs per image, and per image the clock edge of its
    first token and of its last end-of-step marker (so ``end - start + 1`` cycles)."""

    outputs: list[ImageOutput]
    start_edges: list[int]
    end_edges: list[int]
    read_back: list[list[int]] = field(default_factory=list)

    @property
    def cycles(self) -> list[int]:
        return [e - s + 1 for s, e in zip(self.start_edges, self.end_edges)]


def simulate_core(cfg: ConvCoreConfig, weight_sets: Sequence[np.ndarray], images: Sequence[np.ndarray],
                  *, weight_set_of: Sequence[int] | None = None, order: str = "given", seed: int = 0,
                  stall: float = 0.0, read_back: bool = False, count_cycles: bool = False,
                  vcd: str | None = None) -> PysimRun:
    """Run ``images`` (each ``(k, 4)`` rows ``(t, c, y, x)``) through a ConvCore in the Amaranth
    simulator.

    Before the first image and whenever ``weight_set_of[i]`` changes, the producer waits for
    ``idle`` and writes that weight set through the weight bus (whole words); with
    ``read_back`` it then reads every word back (``PysimRun.read_back``, one list per load).
    ``stall`` is the probability of an idle cycle before each token and of ``ready`` low on
    each output cycle (seeded by ``seed``, as is ``order="shuffled"``). ``count_cycles`` fills
    ``start_edges``/``end_edges`` (a process samples the streams at every edge: slower).
    """

    core = ConvCore(cfg, hierarchy=True)      # submodules: faster in the Amaranth simulator
    rng = np.random.default_rng(seed)
    sets = [int(s) for s in (weight_set_of if weight_set_of is not None else [0] * len(images))]
    if len(sets) != len(images):
        raise ValueError("weight_set_of must give one weight set per image")
    token_lists = [pack_tokens(cfg, image_tokens(ev, cfg.steps, order=order, rng=rng)) for ev in images]
    lay = _layouts(cfg)
    n = len(images)
    spike_words: list[int] = []
    feature_words: list[int] = []
    run = PysimRun([], [], [])
    log = TransferLog(i=core.i_events, o=core.o_spikes)
    stall_rng = np.random.default_rng(seed + 1)

    def maybe() -> bool:
        return stall > 0 and stall_rng.random() < stall

    async def producer(ctx):
        bus = core.weights
        loaded = None
        for i in range(n):
            if sets[i] != loaded:
                await ctx.tick().until(core.idle)
                words = weight_words(cfg, weight_sets[sets[i]])
                ctx.set(bus.w_en, (1 << cfg.parallelism) - 1)
                for addr, word in enumerate(words):
                    ctx.set(bus.addr, addr)
                    ctx.set(bus.w_data, word)
                    await ctx.tick()
                ctx.set(bus.w_en, 0)
                if read_back:
                    got = []
                    ctx.set(bus.r_en, 1)
                    for addr in range(len(words)):
                        ctx.set(bus.addr, addr)
                        await ctx.tick().until(bus.r_ready)
                        got.append(ctx.get(bus.r_data))
                    ctx.set(bus.r_en, 0)
                    run.read_back.append(got)
                loaded = sets[i]
            for tok in token_lists[i]:
                while maybe():
                    await ctx.tick()
                ctx.set(core.i_events.valid, 1)
                ctx.set(core.i_events.payload.as_value(), tok)
                await ctx.tick().until(core.i_events.ready)
                ctx.set(core.i_events.valid, 0)

    async def consumer(ctx, s, words, is_end):
        done = 0
        while done < n:
            if stall > 0:
                ready = not maybe()
                ctx.set(s.ready, int(ready))
                _, _, valid, payload = await ctx.tick().sample(s.valid, s.payload.as_value())
                if not (valid and ready):
                    continue
            else:
                ctx.set(s.ready, 1)
                payload, = await ctx.tick().sample(s.payload.as_value()).until(s.valid)
            words.append(payload)
            if is_end(payload):
                done += 1
        ctx.set(s.ready, 0)

    def spike_end(raw):
        p = unpack(lay["spike"], raw)
        return p["step_end"] and p["last"]

    def feature_end(raw):
        return unpack(lay["feature"], raw)["last"]

    async def spikes(ctx):
        await consumer(ctx, core.o_spikes, spike_words, spike_end)

    async def features(ctx):
        await consumer(ctx, core.o_features, feature_words, feature_end)

    simulate(core, producer, spikes, features, vcd=vcd, log=log if count_cycles else None)
    run.outputs = split_outputs(cfg, spike_words, feature_words, n)
    if count_cycles:
        first_token = np.cumsum([0] + [len(t) for t in token_lists[:-1]])
        run.start_edges = [log.edges["i"][k] for k in first_token] if n else []
        run.end_edges = [log.edges["o"][k] for k, w in enumerate(spike_words) if spike_end(w)]
    return run
