"""Amaranth-simulator helpers for ``amaranth.lib.stream`` interfaces (async testbench style).

Amaranth 0.5 ships no stream test helpers and its stream docs tell users to copy
``stream_put``/``stream_get``; these are those helpers, shared by every RTL unit test, plus a
small harness that runs producer and consumer testbenches concurrently under one clock.

Timing (Amaranth 0.5): ``await ctx.tick()`` returns after the edge with registers updated, and
``ctx.tick().sample(x)`` yields the value *at* the edge, which is what a transfer carries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from amaranth.sim import Simulator

__all__ = ["stream_put", "stream_get", "stream_put_all", "stream_get_n", "simulate", "TransferLog"]

CLOCK_PERIOD = 1e-6


async def stream_put(ctx, stream, payload: Any) -> None:
    """Offer ``payload`` (an int, or a dict for a struct payload) until the consumer takes it."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream) -> Any:
    """Take one transfer; returns the payload sampled at the handshake edge (ints are signed
    when the payload shape is; struct payloads come back as ``lib.data.Const`` views)."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_put_all(ctx, stream, payloads: Iterable[Any], *, stall: Callable[[], int] | None = None
                         ) -> None:
    """Send every payload in order; ``stall()`` (if given) returns idle cycles before each one,
    to exercise the consumer's handling of a bubbly producer."""
    for p in payloads:
        if stall is not None and (n := stall()):
            await ctx.tick().repeat(n)
        await stream_put(ctx, stream, p)


async def stream_get_n(ctx, stream, n: int, *, stall: Callable[[], int] | None = None) -> list[Any]:
    """Receive ``n`` payloads; ``stall()`` (if given) returns cycles to hold ``ready`` low first."""
    out = []
    for _ in range(n):
        if stall is not None and (k := stall()):
            await ctx.tick().repeat(k)
        out.append(await stream_get(ctx, stream))
    return out


class TransferLog:
    """Records the clock edge (0-based) of every transfer on some streams, from a background
    process that samples ``valid & ready`` *at* each edge, so cycle counts are exact.

    ``log = TransferLog(i=dut.i_stream, o=dut.o_stream)``; after the run ``log.edges["o"]``
    lists the edges at which ``o`` transferred.
    """

    def __init__(self, **streams) -> None:
        self._streams = streams
        self.edges: dict[str, list[int]] = {name: [] for name in streams}

    async def process(self, ctx) -> None:
        signals = [sig for s in self._streams.values() for sig in (s.valid, s.ready)]
        edge = 0
        async for _clk, _rst, *values in ctx.tick().sample(*signals):
            for k, name in enumerate(self._streams):
                if values[2 * k] and values[2 * k + 1]:
                    self.edges[name].append(edge)
            edge += 1


def simulate(dut, *testbenches: Callable[[Any], Awaitable[None]], vcd: str | Path | None = None,
             log: TransferLog | None = None, period: float = CLOCK_PERIOD) -> None:
    """Run ``testbenches`` concurrently against ``dut`` on a ``sync`` clock until all return.

    ``vcd`` writes a waveform (for debugging a failing test); ``log`` is attached as a
    background process.
    """
    sim = Simulator(dut)
    sim.add_clock(period)
    for tb in testbenches:
        sim.add_testbench(tb)
    if log is not None:
        sim.add_process(log.process)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
