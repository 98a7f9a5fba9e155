"""cocotb 2.x helpers shared by the testbenches: clock, reset, valid/ready streams, checking.

Everything here runs inside the simulator's embedded Python (imported by ``sim/tb_*.py``).

Timing (cocotb 2.x): inputs are driven just after a *falling* clock edge, then the testbench
waits for ``ReadOnly()`` to sample ``valid``/``ready``/``payload``. Registers only change at
rising edges, so the values seen then are exactly those the next rising edge acts on: a transfer
is recorded when ``valid & ready`` holds at that point. This avoids relying on whether a
simulator shows pre- or post-edge values right after ``RisingEdge`` (Icarus and Verilator
differ), and ``ready`` may depend combinationally on ``valid``.

Signedness: Amaranth emits every port as a plain unsigned vector, so values are decoded with the
port description that :func:`spykehw.rtl.verilog.generate` writes (``SPYKEHW_PORTS``): signed
ports and fields are read with ``to_signed()`` semantics, struct payloads are unpacked into
dicts of fields.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from ...rtl.verilog import FieldInfo, GeneratedVerilog, PortInfo

__all__ = [
    "ENV_VECTORS",
    "ENV_PORTS",
    "ENV_WAVEFORM",
    "ENV_REPORT",
    "ENV_STALL",
    "env_path",
    "load_design",
    "start_clock",
    "reset",
    "decode",
    "encode",
    "StreamDriver",
    "StreamMonitor",
    "random_stall",
    "stall_from_env",
    "Mismatch",
    "CaptureTimes",
    "Checker",
    "mismatch_message",
]

ENV_VECTORS = "SPYKEHW_VECTORS"      # vector file to drive and check
ENV_PORTS = "SPYKEHW_PORTS"          # JSON port description written by rtl.verilog.generate
ENV_WAVEFORM = "SPYKEHW_WAVEFORM"    # where the simulator writes the waveform ("" if none)
ENV_REPORT = "SPYKEHW_REPORT"        # where the checker writes its JSON mismatch report
ENV_STALL = "SPYKEHW_STALL"          # "probability" or "probability:seed": random stalls, "" none

CLOCK_PERIOD_NS = 10


def env_path(name: str, *, required: bool = True) -> Path | None:
    value = os.environ.get(name, "")
    if not value:
        if required:
            raise RuntimeError(f"environment variable {name} is not set (the runner sets it)")
        return None
    return Path(value)


def load_design() -> GeneratedVerilog:
    """The port description of the design under test (``SPYKEHW_PORTS``)."""
    return GeneratedVerilog.load(env_path(ENV_PORTS))


def start_clock(dut, *, clk: str = "clk", period_ns: int = CLOCK_PERIOD_NS) -> Clock:
    clock = Clock(getattr(dut, clk), period_ns, unit="ns", impl="gpi")
    clock.start(start_high=False)
    return clock


async def reset(dut, *, cycles: int = 2, clk: str = "clk", rst: str = "rst",
                idle: Mapping[str, int] | None = None) -> None:
    """Hold the synchronous reset for ``cycles`` rising edges with ``idle`` inputs (e.g. every
    ``valid``/``ready`` at 0), then release it after a falling edge."""
    for name, value in (idle or {}).items():
        getattr(dut, name).value = value
    getattr(dut, rst).value = 1
    for _ in range(cycles):
        await RisingEdge(getattr(dut, clk))
    await FallingEdge(getattr(dut, clk))
    getattr(dut, rst).value = 0


def _field_value(raw: int, f: FieldInfo) -> int:
    v = (raw >> f.offset) & ((1 << f.width) - 1)
    if f.signed and v >> (f.width - 1):
        v -= 1 << f.width
    return v


def decode(value: Any, port: PortInfo) -> int | dict[str, int]:
    """A port's ``LogicArray`` (or int) as Amaranth declared it: signed int, unsigned int, or a
    dict of struct fields. Raises ValueError on X/Z bits."""
    if isinstance(value, int):
        raw = value
    else:
        try:
            if not port.fields:
                return value.to_signed() if port.signed else value.to_unsigned()
            raw = value.to_unsigned()
        except ValueError:
            raise ValueError(f"{port.name} holds non-0/1 bits: {value}") from None
    if port.fields:
        return {f.name: _field_value(raw, f) for f in port.fields}
    return _field_value(raw, FieldInfo(port.name, 0, port.width, port.signed))


def encode(payload: int | Mapping[str, int], port: PortInfo) -> int:
    """The unsigned bit pattern of a payload (int or dict of fields) for ``port``."""
    if isinstance(payload, Mapping):
        if set(payload) != {f.name for f in port.fields}:
            raise ValueError(f"{port.name}: fields {sorted(payload)} != {[f.name for f in port.fields]}")
        raw = 0
        for f in port.fields:
            raw |= _fit(int(payload[f.name]), f.width, f"{port.name}.{f.name}") << f.offset
        return raw
    return _fit(int(payload), port.width, port.name)


def _fit(v: int, width: int, what: str) -> int:
    if not -(1 << (width - 1)) <= v <= (1 << width) - 1:
        raise ValueError(f"{what}: {v} does not fit {width} bits")
    return v & ((1 << width) - 1)


def random_stall(probability: float, seed: int = 0) -> Callable[[], bool] | None:
    """A seeded "stall this cycle?" function, or None for never (the fast path)."""
    if probability <= 0:
        return None
    rng = random.Random(seed)
    return lambda: rng.random() < probability


def stall_from_env(default_seed: int = 0) -> tuple[float, int]:
    """``SPYKEHW_STALL`` as ``(probability, seed)``; ``(0, seed)`` when unset."""
    text = os.environ.get(ENV_STALL, "")
    if not text:
        return 0.0, default_seed
    prob, _, seed = text.partition(":")
    return float(prob), int(seed) if seed else default_seed


class _Stream:
    def __init__(self, dut, prefix: str, design: GeneratedVerilog, *, clk: str = "clk") -> None:
        self.clk = getattr(dut, clk)
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.port = design.port(f"{prefix}__payload")
        self.log = logging.getLogger(f"spykehw.tb.{prefix}")


class StreamDriver(_Stream):
    """Drives a stream the DUT consumes (``In(stream.Signature(...))``): ``valid``, ``payload``."""

    def __init__(self, dut, prefix: str, design: GeneratedVerilog, *, clk: str = "clk",
                 stall: Callable[[], bool] | None = None) -> None:
        super().__init__(dut, prefix, design, clk=clk)
        self.stall = stall
        self.sent = 0
        self.valid.value = 0

    async def send(self, payloads: Iterable[int | Mapping[str, int]]) -> None:
        """Send every payload in order; returns after the last transfer's edge."""
        for p in payloads:
            raw = encode(p, self.port)
            await FallingEdge(self.clk)
            while self.stall is not None and self.stall():
                self.valid.value = 0
                await FallingEdge(self.clk)
            self.payload.value = raw
            self.valid.value = 1
            while True:
                await ReadOnly()
                if self.ready.value == 1:
                    break
                if self.stall is None:
                    # Nothing to do until the consumer is ready: sleep until it says so.
                    await RisingEdge(self.ready)
                await FallingEdge(self.clk)
            await RisingEdge(self.clk)          # the transfer
            self.sent += 1
        await FallingEdge(self.clk)
        self.valid.value = 0


class StreamMonitor(_Stream):
    """Receives a stream the DUT produces (``Out(stream.Signature(...))``), driving ``ready``."""

    def __init__(self, dut, prefix: str, design: GeneratedVerilog, *, clk: str = "clk",
                 stall: Callable[[], bool] | None = None) -> None:
        super().__init__(dut, prefix, design, clk=clk)
        self.stall = stall
        self.ready.value = 0

    async def receive(self, n: int, *, on_item: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Collect ``n`` decoded payloads (``on_item(index, payload)`` as each arrives)."""
        out: list[Any] = []
        while len(out) < n:
            await FallingEdge(self.clk)
            ready = not (self.stall is not None and self.stall())
            self.ready.value = int(ready)
            await ReadOnly()
            if self.valid.value == 1:
                if ready:
                    item = decode(self.payload.value, self.port)
                    if on_item is not None:
                        on_item(len(out), item)
                    out.append(item)
            elif self.stall is None:
                await RisingEdge(self.valid)    # idle until the producer has something
        await FallingEdge(self.clk)
        self.ready.value = 0
        return out


def mismatch_message(vector: str, item: int | str, fld: str, expected: Any, found: Any,
                     waveform: str | Path | None = None) -> str:
    """``vector <name> item <i> field <f>: expected X, found Y`` (+ where the waveform is)."""
    msg = f"vector {vector} item {item} field {fld}: expected {expected}, found {found}"
    return msg + (f" (waveform: {waveform})" if waveform else "")


@dataclass
class Mismatch:
    """One differing value. ``signal``, ``cycle`` and ``time_ns`` say where to look in the
    waveform, when the testbench knows: the design signal that carried the value (hierarchical
    name), the design's cycle counter and the simulation time when it was complete."""

    vector: str
    item: int
    field: str
    expected: Any
    found: Any
    note: str = ""
    signal: str = ""
    cycle: int | None = None
    time_ns: float | None = None

    def where(self) -> str:
        if self.cycle is None and self.time_ns is None:
            return ""
        at = [] if self.cycle is None else [f"cycle {self.cycle}"]
        at += [] if self.time_ns is None else [f"{self.time_ns:g} ns"]
        return f" [{self.signal}, {', '.join(at)}]" if self.signal else f" [{', '.join(at)}]"


class CaptureTimes:
    """When each word a harness captured arrived: ``times[k]`` is ``(cycle, time_ns)`` of word
    ``k`` since the counter ``count`` last went to 0 (a capture count that steps by one per
    word, as the harnesses' ``spike_count``/``feature_count`` do), with ``cycle`` read from the
    harness's cycle counter ``cycles``.

    Value-change callbacks on the count, not a coroutine per clock cycle, so a run that lets
    the design free-run keeps its speed.
    """

    def __init__(self, count, cycles) -> None:
        self.times: list[tuple[int, float]] = []
        self._count, self._cycles = count, cycles
        self._task = cocotb.start_soon(self._watch())

    async def _watch(self) -> None:
        while True:
            await self._count.value_change
            await ReadOnly()        # every update of this time step done (the cycle counter too)
            n = int(self._count.value)
            if n < len(self.times):
                del self.times[n:]
            at = (int(self._cycles.value), get_sim_time("ns"))
            self.times += [at] * (n - len(self.times))

    def at(self, k: int | None) -> tuple[int | None, float | None]:
        return self.times[k] if k is not None and 0 <= k < len(self.times) else (None, None)

    def stop(self) -> None:
        self._task.cancel()


@dataclass
class Checker:
    """Collects comparisons; :meth:`finish` writes the JSON report and fails on any mismatch.

    ``item_label(i)`` may add context to an item (e.g. the adversarial case's name).
    """

    vector: str
    waveform: Path | None = None
    report_path: Path | None = None
    item_label: Callable[[int], str] | None = None
    max_listed: int = 20
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def check(self, item: int, fld: str, expected: Any, found: Any, *, signal: str = "",
              cycle: int | None = None, time_ns: float | None = None) -> bool:
        """Count one comparison; record a :class:`Mismatch` (with where it shows, if known)."""
        self.checked += 1
        if expected == found:
            return True
        note = self.item_label(item) if self.item_label is not None else ""
        self.mismatches.append(Mismatch(self.vector, item, fld, expected, found, note, signal, cycle, time_ns))
        return False

    def message(self, m: Mismatch) -> str:
        item = f"{m.item} ({m.note})" if m.note else m.item
        return mismatch_message(m.vector, item, m.field, m.expected, m.found) + m.where()

    def summary(self) -> str:
        if not self.mismatches:
            return f"vector {self.vector}: {self.checked} values checked, all equal"
        lines = [self.message(m) for m in self.mismatches[: self.max_listed]]
        if len(self.mismatches) > self.max_listed:
            lines.append(f"... and {len(self.mismatches) - self.max_listed} more")
        wave = f"; waveform: {self.waveform}" if self.waveform else "; no waveform recorded"
        return (f"{len(self.mismatches)} of {self.checked} values differ{wave}\n" + "\n".join(lines))

    def finish(self) -> None:
        if self.report_path is not None:
            self.report_path.write_text(json.dumps({
                "vector": self.vector,
                "checked": self.checked,
                "waveform": str(self.waveform) if self.waveform else None,
                "mismatches": [m.__dict__ | {"message": self.message(m)} for m in self.mismatches],
            }, indent=1, default=str) + "\n")
        cocotb.log.info(self.summary().splitlines()[0])
        assert not self.mismatches, self.summary()
