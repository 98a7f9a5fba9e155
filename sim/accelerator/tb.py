"""cocotb testbench of the whole accelerator, driven only through its AXI buses by cocotbext-axi.

Why a third-party bus model: the AXI4-Stream source/sink and the AXI4-Lite master are
cocotbext-axi's (``AxiStreamSource``/``AxiStreamSink`` with random ``set_pause_generator``
back-pressure and gaps, ``AxiLiteMaster``), so the top is checked against someone else's reading
of the protocol, not against our own drivers. The expectations come from the job file
(:mod:`spykehw.sim.accelerator.vectors`: the integer golden model), never from the RTL.

Tests (selected by the runner with ``testcase``):

``accelerator_matches_golden``
    ID registers, weight loading through the window, every frame of the job through the top
    with random stalls on both streams; each result frame compared field by field (header:
    class, flags, sequence number; every softmax word and its class index); the number of result
    frames must equal the number of event frames; counters read back. Malformed frames in the
    job must come back flagged (class ``0xFFFF``) and raise the sticky ``ERRORS`` bits, and the
    good frames around them must still be bit-exact. External points: ``W2`` sits in
    cocotbext-axi's ``AxiRamRead`` with random pauses on AR and R (latency, back-pressure); a job
    with ``poison_from >= 0`` makes the model answer ``SLVERR``, and every frame must come back
    flagged ``AXI_READ``.
``registers_and_soft_reset``
    ``MAGIC``/``POINT_ID`` read back, ``SLVERR`` for an unmapped read and a write to a read-only
    register, W1C of ``ERRORS``, a weight commit to a missing address flagged, and a soft reset
    that clears the counters but keeps the weights (the next image is still bit-exact).

Statistics (cycles, images, wall time) go to ``SPYKEHW_ACCEL_STATS`` as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiRamRead,
    AxiReadBus,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from ...rtl.accel_regs import REG, WDATA_BASE
from ...rtl.result_stream import NO_CLASS
from ..framework.cocotb_support import (
    ENV_REPORT,
    ENV_VECTORS,
    ENV_WAVEFORM,
    Checker,
    env_path,
    start_clock,
)
from .vectors import Job, read_job

ENV_STATS = "SPYKEHW_ACCEL_STATS"
ENV_PROGRESS = "SPYKEHW_ACCEL_PROGRESS"
PROGRESS_EVERY = 20
CLOCK_NS = 10
RESP_SLVERR = 2
CYCLES_PER_BEAT_BOUND = 400     # generous: a frame's result must come within this many cycles per beat


def _pauses(probability: float, seed: int):
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


class PoisonedRam(AxiRamRead):
    """cocotbext-axi's AXI4 RAM (read side), failing reads from ``poison_from`` on: the model
    then answers ``SLVERR`` itself."""

    def __init__(self, *args, poison_from: int = -1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.poison_from = poison_from
        self.beats = 0

    async def _read(self, address, length):
        self.beats += 1
        if 0 <= self.poison_from <= address:
            raise OSError(f"poisoned address {address:#x}")
        return await super()._read(address, length)


class Bench:
    """The DUT with its bus models; :meth:`start` resets it."""

    def __init__(self, dut, job: Job) -> None:
        self.dut, self.job = dut, job
        start_clock(dut, period_ns=CLOCK_NS)
        tok_bits = len(dut.s_axis_tdata)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, byte_size=tok_bits)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, byte_size=32)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        # cocotbext-axi logs every frame at INFO: far too much for long runs.
        logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
        if job.stall:
            self.src.set_pause_generator(_pauses(job.stall, job.seed))
            self.sink.set_pause_generator(_pauses(job.stall, job.seed + 1))
        if job.point.weights == "external":
            size = 1 << max(12, (len(job.memory) - 1).bit_length())
            self.ram = PoisonedRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=size,
                                   poison_from=job.poison_from)
            self.ram.write(0, job.memory)
            # Random memory latency and back-pressure: pauses on the AR and R channels.
            self.ram.ar_channel.set_pause_generator(_pauses(max(job.stall, 0.3), job.seed + 2))
            self.ram.r_channel.set_pause_generator(_pauses(max(job.stall, 0.3), job.seed + 3))

    async def start(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def read(self, name_or_addr) -> tuple[int, int]:
        addr = REG[name_or_addr] if isinstance(name_or_addr, str) else name_or_addr
        r = await self.axil.read(addr, 4)
        return int.from_bytes(r.data, "little"), int(r.resp)

    async def reg(self, name: str) -> int:
        value, resp = await self.read(name)
        assert resp == 0, f"read of {name} answered {resp}"
        return value

    async def write(self, name_or_addr, value: int) -> int:
        addr = REG[name_or_addr] if isinstance(name_or_addr, str) else name_or_addr
        r = await self.axil.write(addr, int(value).to_bytes(4, "little"))
        return int(r.resp)

    async def load_weights(self) -> None:
        for addr, value in self.job.writes:
            resp = await self.write(addr, value)
            assert resp == 0, f"weight write to {addr:#x} answered {resp}"


def check_frame(checker: Checker, job: Job, i: int, data: list[int], seq: int) -> None:
    C = job.point.classes
    if not checker.check(i, "beats", C + 1, len(data)):
        return
    hdr = data[0]
    flags = int(job.flags[i])
    checker.check(i, "flags", flags, (hdr >> 16) & 0xFF)
    checker.check(i, "sequence", seq & 0xFF, hdr >> 24)
    checker.check(i, "class", NO_CLASS if flags else int(job.classes[i]), hdr & 0xFFFF)
    for k in range(C):
        checker.check(i, f"class_index[{k}]", k, data[1 + k] >> 16)
        if not flags:
            checker.check(i, f"word[{k}]", int(job.words[i, k]), data[1 + k] & 0xFFFF)


async def run_frames(bench: Bench, checker: Checker, first_seq: int = 0) -> dict:
    """Send every frame of the job, receive as many result frames, check them."""
    job = bench.job
    t0, c0 = time.perf_counter(), get_sim_time("ns")
    for beats in job.frames:
        await bench.src.send(AxiStreamFrame(beats))
    received = 0
    classes = []
    for i in range(len(job.frames)):
        bound = CLOCK_NS * CYCLES_PER_BEAT_BOUND * (len(job.frames[i]) + 50)
        frame = await with_timeout(bench.sink.recv(), bound, "ns")
        check_frame(checker, job, i, [int(x) for x in frame.tdata], first_seq + i)
        received += 1
        classes.append(int(frame.tdata[0]) & 0xFFFF)
        if received % PROGRESS_EVERY == 0:
            _write_progress(received)
    return {"frames": len(job.frames), "frames_received": received, "rtl_classes": classes, "wall_s": time.perf_counter() - t0,
            "sim_cycles": (get_sim_time("ns") - c0) / CLOCK_NS}


def _checker() -> Checker:
    return Checker("accelerator", waveform=env_path(ENV_WAVEFORM, required=False) or None,
                   report_path=env_path(ENV_REPORT, required=False))


def _write_progress(frames: int) -> None:
    """Result frames received so far, for the runner's progress line (atomic replace)."""
    path = os.environ.get(ENV_PROGRESS, "")
    if path:
        tmp = Path(f"{path}.{os.getpid()}.tmp")
        tmp.write_text(f"{frames}\n")
        os.replace(tmp, path)


def _write_stats(stats: dict) -> None:
    path = os.environ.get(ENV_STATS, "")
    if path:
        Path(path).write_text(json.dumps(stats, indent=1) + "\n")


async def _start(dut) -> tuple[Job, Bench, Checker]:
    """The job of this run, the bench (reset done) and the checker: what every test begins with."""
    job = read_job(env_path(ENV_VECTORS))
    bench = Bench(dut, job)
    await bench.start()
    return job, bench, _checker()


@cocotb.test()
async def accelerator_matches_golden(dut):
    job, bench, checker = await _start(dut)
    checker.check(-1, "POINT_ID", job.point.id32, await bench.reg("POINT_ID"))
    await bench.load_weights()
    checker.check(-1, "ERRORS after loading", 0, await bench.reg("ERRORS"))
    await bench.write("CONTROL", 1)
    stats = await run_frames(bench, checker)
    expected_errors = 0
    for f in job.flags:
        expected_errors |= int(f)
    for name, expected in (("IMAGES_DONE", len(job.frames)), ("IMAGES_IN", len(job.frames)),
                           ("ERRORS", expected_errors)):
        checker.check(-1, name, expected, await bench.reg(name))
    checker.check(-1, "STATUS.BUSY", 0, (await bench.reg("STATUS")) & 1)
    counters = {n: await bench.reg(n) for n in ("BUSY_CYCLES", "STALL_IN_CYCLES", "STALL_OUT_CYCLES")}
    n = len(job.frames)
    if job.point.weights == "external":
        word_bytes = len(dut.m_axi_rdata) // 8
        stats["w2_beats"] = bench.ram.beats
        stats["w2_bytes"] = bench.ram.beats * word_bytes
    _write_stats({**stats, **{k.lower(): v for k, v in counters.items()},
                  "images": n, "good_images": int((job.flags == 0).sum()),
                  "cycles_per_image": stats["sim_cycles"] / max(1, n),
                  "busy_cycles_per_image": counters["BUSY_CYCLES"] / max(1, n),
                  "images_per_s_sim": n / stats["wall_s"] if stats["wall_s"] else None,
                  "golden_classes": [int(c) for c in job.classes]})
    checker.finish()


@cocotb.test()
async def registers_and_soft_reset(dut):
    job, bench, checker = await _start(dut)
    checker.check(-1, "MAGIC", 0x53504B48, await bench.reg("MAGIC"))
    checker.check(-1, "POINT_ID", job.point.id32, await bench.reg("POINT_ID"))
    checker.check(-1, "unmapped read resp", RESP_SLVERR, (await bench.read(0x3F0))[1])
    # cocotbext-axi sends a one-byte read's own address: misaligned, so outside the map.
    checker.check(-1, "misaligned read resp", RESP_SLVERR, int((await bench.axil.read(REG["MAGIC"] + 1, 1)).resp))
    checker.check(-1, "write to MAGIC resp", RESP_SLVERR, await bench.write("MAGIC", 0))
    checker.check(-1, "MAGIC after the write", 0x53504B48, await bench.reg("MAGIC"))
    # A commit past the end of the selected memory is flagged and dropped.
    await bench.write("WSEL", 0)
    depth, chunks = await bench.reg("WDEPTH"), await bench.reg("WCHUNKS")
    await bench.write("WADDR", depth)
    for k in range(chunks):
        await bench.write(WDATA_BASE + 4 * k, 0xFFFFFFFF)
    checker.check(-1, "ERRORS after a write past the end", 1 << 5, await bench.reg("ERRORS"))
    await bench.write("ERRORS", 1 << 5)
    checker.check(-1, "ERRORS after W1C", 0, await bench.reg("ERRORS"))
    await bench.load_weights()
    await bench.write("CONTROL", 1)
    await run_frames(bench, checker)
    checker.check(-1, "IMAGES_DONE", len(job.frames), await bench.reg("IMAGES_DONE"))
    await bench.write("CONTROL", 0b11)          # soft reset, stay enabled
    await RisingEdge(dut.clk)
    checker.check(-1, "IMAGES_DONE after soft reset", 0, await bench.reg("IMAGES_DONE"))
    checker.check(-1, "CONTROL after soft reset", 1, await bench.reg("CONTROL"))
    await run_frames(bench, checker)            # the weights survived: bit-exact again
    checker.check(-1, "IMAGES_DONE at the end", len(job.frames), await bench.reg("IMAGES_DONE"))
    checker.finish()
