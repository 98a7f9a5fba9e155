"""The learning core's weight snapshot: one copy of the weight memory, taken at the end of every
snapshot step, that the host reads over the weight bus (the golden ``last_snapshot_weights``).

The golden ``train_conv`` snapshots the weights after the STDP updates of every step whose
epoch-local index ``s`` satisfies ``s % snapshot_period == 0`` (2,399 for Conv1, so a snapshot
falls inside an image), and hands the last one to inference. The core keeps only that last one:
one memory of ``weight_words`` words, each the ``L*B`` bits of one weight-bus word (lane ``l``
in bits ``l*B ..``), written by a copy pass over the weight memories (one word per cycle,
``weight_words + 1`` cycles, the LEARN phase of a snapshot step) and read by the host at bus
addresses ``snapshot_base + word``.

Why a full copy rather than stopping the core at a snapshot step for the host to read the
weights: the copy keeps the host out of the step loop (training is not interrupted inside an
image) for ``C*K*K*M*B`` bits (24,000 for Conv1 at fpga-16: a 50 x 480 memory, 14 DP16KD
at 512 x 36 or LUT RAM, against 30 per-lane memories for a second weight memory), one wide
memory because the copy and the host both move whole words.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .conv_config import ConvCoreConfig
from .conv_stdp import weight_read_signature
from .layouts import index_bits

__all__ = ["Snapshot"]


class Snapshot(wiring.Component):
    """The snapshot copy and its copy pass.

    Members
    -------
    start : In(1)
        A step's learning starts (the copy pass goes back to word 0).
    run : In(1)
        Copy: read word ``k`` of the weight memories, write it one cycle later.
    w_data : In(B).array(L)
        The weight memories' read data.
    rd : Out(weight_read_signature(cfg))
        The copy pass's weight read.
    finished : Out(1)
        Every word has been copied.
    host_en, host_addr : In
        A host read of snapshot word ``host_addr``; ``host_data`` holds it one cycle later.
    host_data : Out(L*B)
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        W = cfg.weight_words
        super().__init__({
            "start": In(1), "run": In(1), "w_data": In(cfg.weight_bits).array(cfg.parallelism),
            "rd": Out(weight_read_signature(cfg)), "finished": Out(1),
            "host_en": In(1), "host_addr": In(index_bits(W)),
            "host_data": Out(cfg.weight_bits * cfg.parallelism),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        W = cfg.weight_words
        m.submodules.snap_mem = mem = memory.Memory(
            shape=unsigned(cfg.weight_bits * cfg.parallelism), depth=W, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        k = Signal(range(W + 1), name="snap_k")
        p_valid = Signal(name="snap_p_valid")
        p_addr = Signal(index_bits(W), name="snap_p_addr")
        issue = Signal(name="snap_issue")
        m.d.comb += [
            issue.eq(self.run & (k < W)),
            self.rd.en.eq(issue), self.rd.addr.eq(k),
            self.finished.eq((k == W) & ~p_valid),
            wp.en.eq(p_valid), wp.addr.eq(p_addr), wp.data.eq(Cat(*self.w_data)),
            rp.en.eq(self.host_en), rp.addr.eq(self.host_addr), self.host_data.eq(rp.data),
        ]
        m.d.sync += p_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [k.eq(k + 1), p_addr.eq(k)]
        with m.If(self.start):
            m.d.sync += k.eq(0)
        return m
