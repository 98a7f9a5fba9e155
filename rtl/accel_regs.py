"""The accelerator's AXI4-Lite register file: control, status, counters, error flags, ID, weights.

Why one block: the host sees the accelerator only through these 32-bit registers (byte
addresses, 32-bit accesses; ``wstrb`` is ignored, a write replaces the whole register). The map
(:data:`REGISTERS`) is data, so the Verilog JSON, the README and the testbenches take it from
here rather than restating it.

Weight window: the host selects a memory (``WSEL``, codes from the accelerator's
:class:`WeightTarget` list), sets the word address (``WADDR``), then writes the word as 32-bit
chunks, least significant first, to ``WDATA + 4*k``; writing the last chunk
(``k = WCHUNKS - 1``) commits the word to ``WADDR`` and increments ``WADDR``, so a whole memory
is one ``WSEL``, one ``WADDR`` and its chunks in order. A commit to a target or address that does
not exist raises ``LOAD_ADDR``, a commit while an image is in flight ``LOAD_BUSY``; both are
dropped (the blocks' load buses must only be used while they are idle).

Responses: ``SLVERR`` for an address outside the map, a misaligned address (not a multiple of
4) or a write to a read-only register (the write has no effect); ``OKAY`` otherwise. One write and one read are handled at a time (AW and W
may come in either order); a read answers one cycle after its address is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, RESP_SLVERR, AxiLiteSignature
from .event_checker import ERROR_BITS, ErrorFlag
from .weight_memory import WriteBusSignature

__all__ = ["Register", "REGISTERS", "REG", "WDATA_BASE", "MAX_CHUNKS", "MAGIC", "CONSTANT_REGISTERS",
           "WeightTarget", "RegisterFile", "register_map"]

MAGIC = 0x53504B48      # "SPKH"
WDATA_BASE = 0x400
MAX_CHUNKS = 256        # WDATA window: 0x400 .. 0x7FC
ADDR_BITS = 12
OUTSIDE = (1 << (ADDR_BITS - 2)) - 1     # the word index 0xFFC >> 2: no register there


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str         # "ro", "rw", "w1c", "wo"
    doc: str


REGISTERS: tuple[Register, ...] = (
    Register("MAGIC", 0x00, "ro", "0x53504B48 ('SPKH')"),
    Register("POINT_ID", 0x04, "ro", "DesignPoint.id32: first 32 bits of the design point's SHA-256"),
    Register("SHAPE0", 0x08, "ro", "in_channels [7:0], in_size [15:8], kernel [23:16], steps [31:24]"),
    Register("SHAPE1", 0x0C, "ro", "maps [15:0], hidden [31:16]"),
    Register("SHAPE2", 0x10, "ro", "classes [15:0], features [31:16]"),
    Register("FORMATS", 0x14, "ro", "conv weight bits [7:0], hidden weight bits [15:8], output weight "
                                    "bits [23:16], softmax bits [31:24]"),
    Register("HW", 0x18, "ro", "conv lanes [11:0], classifier lanes [27:12], W2 external [31]"),
    Register("CONTROL", 0x20, "rw", "bit 0 ENABLE (accept events), bit 1 SOFT_RESET (write 1: clears "
                                    "the datapath, counters and errors; reads 0)"),
    Register("STATUS", 0x24, "ro", "bit 0 BUSY (an image in flight), bit 1 IDLE (weights may be "
                                   "written), bit 2 ERROR (ERRORS != 0), bit 3 ENABLED"),
    Register("ERRORS", 0x28, "w1c", "sticky error flags (ErrorFlag bits); write 1 to clear"),
    Register("IMAGES_DONE", 0x2C, "ro", "result frames sent"),
    Register("IMAGES_IN", 0x30, "ro", "event frames taken (images handed to the conv core)"),
    Register("BUSY_CYCLES", 0x34, "ro", "cycles with an image in flight"),
    Register("STALL_IN_CYCLES", 0x38, "ro", "cycles inside an event frame without a beat offered"),
    Register("STALL_OUT_CYCLES", 0x3C, "ro", "cycles with a result beat offered and not taken"),
    Register("WSEL", 0x40, "rw", "weight target code"),
    Register("WADDR", 0x44, "rw", "word address in the target; +1 after each commit"),
    Register("WDEPTH", 0x48, "ro", "words of the selected target (0: no such target)"),
    Register("WCHUNKS", 0x4C, "ro", "32-bit chunks per word of the selected target"),
    Register("W2_BASE", 0x50, "rw", "external variant: byte address of W2 row 0 in the AXI4 memory"),
    Register("W2_STRIDE", 0x54, "ro", "external variant: bytes between W2 rows (0: W2 on chip)"),
    Register("WDATA", WDATA_BASE, "wo", "chunk k of the word at WDATA + 4k; the last chunk commits"),
)
REG = {r.name: r.offset for r in REGISTERS}
CONSTANT_REGISTERS = ("MAGIC", "POINT_ID", "SHAPE0", "SHAPE1", "SHAPE2", "FORMATS", "HW", "W2_STRIDE")


@dataclass(frozen=True)
class WeightTarget:
    """A memory behind the weight window: its ``WSEL`` code, words and word width."""
    name: str
    code: int
    depth: int
    word_bits: int

    @property
    def chunks(self) -> int:
        return -(-self.word_bits // 32)


def register_map(targets: tuple[WeightTarget, ...], constants: dict[str, int]) -> dict:
    """The JSON-friendly register map (for the Verilog JSON and the host)."""
    return {
        "data_bits": 32, "addr_bits": ADDR_BITS,
        "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "doc": r.doc,
                       **({"value": constants[r.name]} if r.name in constants else {})}
                      for r in REGISTERS],
        "errors": {f.name: int(f) for f in ErrorFlag},
        "weight_targets": [{"name": t.name, "code": t.code, "depth": t.depth, "word_bits": t.word_bits,
                            "chunks": t.chunks} for t in targets],
    }


class RegisterFile(wiring.Component):
    """AXI4-Lite slave with the registers of :data:`REGISTERS` (see the module docstring).

    Members
    -------
    bus : In(AxiLiteSignature(12, 32))
    enable, soft_reset : Out(1)
        ``CONTROL`` bit 0; a one-cycle pulse after a write of ``CONTROL`` bit 1.
    busy, idle, image_in, image_out, stall_in, stall_out : In(1)
        Status and the counters' events (one per cycle).
    errors : In(ERROR_BITS)
        Flags raised this cycle by the datapath (made sticky here).
    axi_read_sticky : Out(1)
        The ``ERRORS`` register's ``AXI_READ`` flag (every later result carries it).
    w2_base : Out(32)
        The ``W2_BASE`` register.
    weights : Out(WriteBusSignature(max depth, max word bits, select=unsigned(8)))
        One committed word (``sel`` = target code, ``addr``, ``data``, ``en``).
    """

    def __init__(self, targets: tuple[WeightTarget, ...], constants: dict[str, int]) -> None:
        if not targets:
            raise ValueError("the register file needs at least one weight target")
        for t in targets:
            if t.chunks > MAX_CHUNKS:
                raise ValueError(f"weight target {t.name}: {t.word_bits}-bit words exceed the "
                                 f"{MAX_CHUNKS * 32}-bit window")
        missing = set(CONSTANT_REGISTERS) - set(constants) - {"MAGIC"}
        if missing:
            raise ValueError(f"constant registers without a value: {sorted(missing)}")
        self._targets = tuple(targets)
        self._constants = {"MAGIC": MAGIC, **constants}
        self._depth = max(t.depth for t in targets)
        self._bits = max(t.chunks for t in targets) * 32
        super().__init__({
            "bus": In(AxiLiteSignature(ADDR_BITS, 32)),
            "enable": Out(1), "soft_reset": Out(1),
            "busy": In(1), "idle": In(1), "image_in": In(1), "image_out": In(1),
            "stall_in": In(1), "stall_out": In(1),
            "errors": In(ERROR_BITS), "axi_read_sticky": Out(1), "w2_base": Out(32),
            "weights": Out(WriteBusSignature(self._depth, self._bits, select=unsigned(8))),
        })

    @property
    def constants(self) -> dict[str, int]:
        return dict(self._constants)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        chunks = self._bits // 32
        counters = {n: Signal(32, name=n.lower()) for n in
                    ("IMAGES_DONE", "IMAGES_IN", "BUSY_CYCLES", "STALL_IN_CYCLES", "STALL_OUT_CYCLES")}
        errors = Signal(ERROR_BITS)
        enable = Signal()
        wsel = Signal(8)
        waddr = Signal(32)
        shadow = [Signal(32, name=f"wdata_{k}") for k in range(chunks)]
        w2_base = Signal(32)
        m.d.comb += [self.enable.eq(enable), self.axi_read_sticky.eq((errors & ErrorFlag.AXI_READ).any()), self.w2_base.eq(w2_base)]

        # The selected target's depth and chunk count (a small table).
        depth = Signal(32)
        nchunks = Signal(range(MAX_CHUNKS + 1))
        with m.Switch(wsel):
            for t in self._targets:
                with m.Case(t.code):
                    m.d.comb += [depth.eq(t.depth), nchunks.eq(t.chunks)]

        # ----- counters and sticky errors ----------------------------------------------------
        own_err = Signal(ERROR_BITS)
        clear_err = Signal(ERROR_BITS)
        m.d.sync += errors.eq((errors & ~clear_err) | self.errors | own_err)
        for name, event in (("IMAGES_DONE", self.image_out), ("IMAGES_IN", self.image_in),
                            ("BUSY_CYCLES", self.busy), ("STALL_IN_CYCLES", self.stall_in),
                            ("STALL_OUT_CYCLES", self.stall_out)):
            with m.If(event):
                m.d.sync += counters[name].eq(counters[name] + 1)
        m.d.sync += self.soft_reset.eq(0)
        with m.If(self.soft_reset):
            m.d.sync += [c.eq(0) for c in counters.values()] + [errors.eq(0)]

        # ----- write channel -----------------------------------------------------------------
        aw_full, w_full = Signal(), Signal()
        aw_addr, w_data = Signal(ADDR_BITS), Signal(32)
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full & ~bus.bvalid)
        ok = Signal()
        commit = Signal()                   # registered: the word in `shadow` goes out now
        commit_ok = Signal()
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1),
                         bus.bresp.eq(Mux(ok, RESP_OKAY, RESP_SLVERR))]
            word = Mux(aw_addr[:2] == 0, aw_addr[2:], OUTSIDE)     # a misaligned address is outside
            with m.Switch(word):
                with m.Case(REG["CONTROL"] >> 2):
                    m.d.comb += ok.eq(1)
                    m.d.sync += [enable.eq(w_data[0]), self.soft_reset.eq(w_data[1])]
                with m.Case(REG["ERRORS"] >> 2):
                    m.d.comb += [ok.eq(1), clear_err.eq(w_data[:ERROR_BITS])]
                with m.Case(REG["WSEL"] >> 2):
                    m.d.comb += ok.eq(1)
                    m.d.sync += wsel.eq(w_data)
                with m.Case(REG["W2_BASE"] >> 2):
                    m.d.comb += ok.eq(1)
                    m.d.sync += w2_base.eq(w_data)
                with m.Case(REG["WADDR"] >> 2):
                    m.d.comb += ok.eq(1)
                    m.d.sync += waddr.eq(w_data)
                for k in range(chunks):
                    with m.Case((WDATA_BASE >> 2) + k):
                        m.d.comb += ok.eq(1)
                        m.d.sync += shadow[k].eq(w_data)
                        with m.If(nchunks == k + 1):
                            m.d.sync += [commit.eq(1), commit_ok.eq(0)]
                            with m.If((depth == 0) | (waddr >= depth)):
                                m.d.comb += own_err.eq(ErrorFlag.LOAD_ADDR)
                            with m.Elif(~self.idle):
                                m.d.comb += own_err.eq(ErrorFlag.LOAD_BUSY)
                            with m.Else():
                                m.d.sync += commit_ok.eq(1)
        wb = self.weights
        m.d.comb += [wb.sel.eq(wsel), wb.addr.eq(waddr), wb.data.eq(Cat(*shadow)),
                     wb.en.eq(commit & commit_ok)]
        with m.If(commit):
            m.d.sync += [commit.eq(0), waddr.eq(waddr + commit_ok)]

        # ----- read channel ------------------------------------------------------------------
        values = {REG[n]: Const(v & 0xFFFFFFFF, 32) for n, v in self._constants.items()}
        values[REG["CONTROL"]] = Cat(enable, Const(0, 31))
        values[REG["STATUS"]] = Cat(self.busy, self.idle, errors.any(), enable, Const(0, 28))
        values[REG["ERRORS"]] = errors
        values.update({REG[n]: c for n, c in counters.items()})
        values[REG["WSEL"]] = wsel
        values[REG["WADDR"]] = waddr
        values[REG["W2_BASE"]] = w2_base
        values[REG["WDEPTH"]] = depth
        values[REG["WCHUNKS"]] = nchunks
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(RESP_SLVERR)]
            with m.Switch(Mux(bus.araddr[:2] == 0, bus.araddr[2:], OUTSIDE)):
                for offset, value in sorted(values.items()):
                    with m.Case(offset >> 2):
                        m.d.sync += [bus.rdata.eq(value), bus.rresp.eq(RESP_OKAY)]
        return m
