"""The Pool1 block in the Amaranth simulator: conv spikes streamed in, pool events collected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...rtl.layouts import unpack
from ...rtl.pool1 import Pool1, Pool1Config
from ..framework.streams import TransferLog, simulate
from .packing import spike_payloads, split_events

__all__ = ["Pool1Run", "simulate_pool1"]


@dataclass
class Pool1Run:
    """Per image the output events ``(k, 4)`` rows ``(t, c, y, x)`` in output order, and the
    clock edges of its first input transfer and of its last end-of-step marker."""

    events: list[np.ndarray]
    start_edges: list[int]
    end_edges: list[int]

    @property
    def cycles(self) -> list[int]:
        return [e - s + 1 for s, e in zip(self.start_edges, self.end_edges)]


def simulate_pool1(cfg: Pool1Config, images: Sequence[np.ndarray], *, stall: float = 0.0,
                   seed: int = 0, vcd: str | None = None) -> Pool1Run:
    """Run each image's conv spikes ``(k, 5)`` rows ``(t, m, u, v, p)`` through a Pool1 block.
    ``stall``: probability of an idle input cycle before each payload and of ``ready`` low on
    each output cycle (seeded)."""
    dut = Pool1(cfg)
    inputs = [spike_payloads(cfg, s) for s in images]
    rng = np.random.default_rng(seed)
    out_words: list[int] = []
    log = TransferLog(i=dut.i_spikes, o=dut.o_events)
    n_markers = cfg.steps * len(images)
    lay = cfg.out_layout()

    def maybe() -> bool:
        return stall > 0 and rng.random() < stall

    async def producer(ctx):
        for words in inputs:
            for w in words:
                while maybe():
                    await ctx.tick()
                ctx.set(dut.i_spikes.valid, 1)
                ctx.set(dut.i_spikes.payload.as_value(), w)
                await ctx.tick().until(dut.i_spikes.ready)
                ctx.set(dut.i_spikes.valid, 0)

    async def consumer(ctx):
        markers = 0
        while markers < n_markers:
            ready = not maybe()
            ctx.set(dut.o_events.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o_events.valid,
                                                           dut.o_events.payload.as_value())
            if valid and ready:
                out_words.append(payload)
                markers += unpack(lay, payload)["step_end"]
        ctx.set(dut.o_events.ready, 0)

    simulate(dut, producer, consumer, vcd=vcd, log=log)
    first = np.cumsum([0] + [len(w) for w in inputs[:-1]])
    markers = [k for k, w in enumerate(out_words) if unpack(lay, w)["step_end"]]
    ends = markers[cfg.steps - 1::cfg.steps]
    return Pool1Run(split_events(cfg, out_words),
                    [log.edges["i"][k] for k in first] if images else [],
                    [log.edges["o"][k] for k in ends])

