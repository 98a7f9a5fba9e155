"""The weight update engine of the conv core's learning unit: homeostatic decay and integer STDP,
one weight read-modify-write per cycle (see :mod:`spykehw.rtl.conv_learning`, step 5), through a
pipeline of :data:`UPDATE_STAGES` registered stages after the read.

No stage forwards a result to a later read: within a step, every weight is read and written once
per map, and a map is updated at most once (a suppressed map decays but cannot win), so a write
never precedes a read of the same weight; the engine reports ``finished`` only once the pipeline
is empty, so the next map, the snapshot copy and the next step see every write.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.fixed import LFSR_TAPS
from .conv_blocks import select_bit
from .conv_config import ConvCoreConfig
from .layouts import index_bits

__all__ = ["DECAY", "LTP", "LTD", "weight_write_signature", "UpdateEngine"]

DECAY, LTP, LTD = 0, 1, 2
UPDATE_STAGES = 4
"""Registers between a weight's read data and its write: the lane's weight; ``w(1-w)``; times
the operation's factor; plus the rounding addend, shifted (the write cycle adds or subtracts
with saturation)."""


def weight_write_signature(cfg: ConvCoreConfig) -> wiring.Signature:
    """A write of one weight: word ``addr`` of the weight memories, lane one-hot in ``lanes``."""
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(cfg.weight_words)),
                             "data": Out(cfg.weight_bits), "lanes": Out(cfg.parallelism)})


def weight_read_signature(cfg: ConvCoreConfig) -> wiring.Signature:
    """A read of one weight word (the data comes back one cycle later on every lane)."""
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(cfg.weight_words))})


class UpdateEngine(wiring.Component):
    """Updates the ``C x K x K`` weights of one map, in ``(c, kr, kc)`` order: an issue stage
    reads weight ``k`` (and the *pre* flag of its input), the pipeline computes the new weight
    and writes it ``UPDATE_STAGES`` cycles later. The operation is the homeostatic decay (``load_decay``) or STDP (LTP when
    the input spiked at a step ``<= t``, LTD otherwise), with the current learning-rate
    ``shift``; with stochastic rounding the 32-bit LFSR steps once per weight.

    Members
    -------
    select : In(1)
        Start a new map (the weight counters go back to 0).
    load, load_m, load_decay : In
        The map to update and whether it decays (else STDP); its first weight word.
    load_rc, r, c : In
        The winner's position (STDP: the patch's top-left input).
    run : In(1)
        Issue the map's weights (one per cycle while any is left).
    shift : In
        The current STDP shift.
    w_data : In(B).array(L)
        The weight memories' read data.
    pre_row : Out (absent with ``C*S == 1``); pre_word : In(S)
        The row of *pre* flags that holds the input of the weight being issued (``pre_row`` is a
        register, stepped with the weight counters, so no adder lies before the row
        multiplexer; the bit is selected in the next cycle from the registered row).
    rd : Out(weight_read_signature(cfg)); wr : Out(weight_write_signature(cfg))
    m : Out(index_bits(M))
        The map being updated.
    finished : Out(1)
        Every weight of the map has been written.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        C, S = cfg.channels, cfg.in_size
        H, M, L = cfg.out_size, cfg.maps, cfg.parallelism
        st = cfg.formats.stdp
        members = {
            "select": In(1), "load": In(1), "load_m": In(index_bits(M)), "load_decay": In(1),
            "load_rc": In(1), "r": In(index_bits(H)), "c": In(index_bits(H)), "run": In(1),
            "shift": In(range(st.stdp_shift + 1)),
            "w_data": In(cfg.weight_bits).array(L),
            "pre_word": In(S),
            "rd": Out(weight_read_signature(cfg)), "wr": Out(weight_write_signature(cfg)),
            "m": Out(index_bits(M)), "finished": Out(1),
        }
        if C * S > 1:
            members["pre_row"] = Out(index_bits(C * S))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        C, S, K, M = cfg.channels, cfg.in_size, cfg.kernel, cfg.maps
        H, L, G, CKK = cfg.out_size, cfg.parallelism, cfg.groups, cfg.kernel_weights
        upd_c = Signal(index_bits(H), name="upd_c")
        k_iss = Signal(range(CKK + 1), name="upd_k")
        kr = Signal(index_bits(K), name="upd_kr")
        kc = Signal(index_bits(K), name="upd_kc")
        addr = Signal(index_bits(cfg.weight_words) + 1, name="upd_addr")
        p_valid = Signal(name="upd_p_valid")
        p_addr = Signal(index_bits(cfg.weight_words), name="upd_p_addr")
        p_word = Signal(S, name="upd_p_word")
        p_col = Signal(index_bits(S), name="upd_p_col")
        p_pre = Signal(name="upd_p_pre")
        op = Signal(2, name="upd_op")           # DECAY or STDP (LTP/LTD chosen per weight)
        group_of = Array(Const(i // L, index_bits(G)) for i in range(M))
        lane_of = Array(Const(i % L, index_bits(L)) for i in range(M))
        lane = Signal(index_bits(L), name="upd_lane")
        m.d.comb += lane.eq(lane_of[self.m])

        # pre[ch, r + kr, c + kc] of the weight being issued: row ch*S + r + kr and column
        # c + kc, kept in registers that step with (kr, kc) (ch is implied: it grows when kr wraps)
        pre_row = Signal(index_bits(C * S), name="upd_pre_row")
        pre_col = Signal(index_bits(S), name="upd_pre_col")
        if C * S > 1:
            m.d.comb += self.pre_row.eq(pre_row)
        m.d.comb += p_pre.eq(select_bit(m, p_word, p_col, "upd_pre_bit"))

        busy = self._pipeline(m, lane, op, p_valid, p_addr, p_pre)

        with m.If(self.select):
            m.d.sync += [k_iss.eq(0), kr.eq(0), kc.eq(0)]
            with m.If(self.load):
                m.d.sync += [self.m.eq(self.load_m), op.eq(Mux(self.load_decay, DECAY, LTP)),
                             addr.eq(group_of[self.load_m])]
        with m.If(self.load_rc):    # (after ``select``: kr = kc = 0, channel 0)
            m.d.sync += [upd_c.eq(self.c), pre_row.eq(self.r), pre_col.eq(self.c)]

        # Issue stage: read weight k of the map.
        issue = Signal(name="upd_issue")
        m.d.comb += [issue.eq(self.run & (k_iss < CKK)),
                     self.finished.eq((k_iss == CKK) & ~p_valid & ~busy),
                     self.rd.en.eq(issue), self.rd.addr.eq(addr)]
        m.d.sync += p_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [k_iss.eq(k_iss + 1), addr.eq(addr + G), p_addr.eq(addr),
                         p_word.eq(self.pre_word), p_col.eq(pre_col)]
            with m.If(kc == K - 1):
                m.d.sync += [kc.eq(0), pre_col.eq(upd_c)]
                with m.If(kr == K - 1):
                    m.d.sync += [kr.eq(0), pre_row.eq(pre_row + (S - (K - 1)))]
                with m.Else():
                    m.d.sync += [kr.eq(kr + 1), pre_row.eq(pre_row + 1)]
            with m.Else():
                m.d.sync += [kc.eq(kc + 1), pre_col.eq(pre_col + 1)]
        return m

    def _pipeline(self, m: Module, lane: Signal, op: Signal, p_valid: Signal, p_addr: Signal,
                  p_pre: Signal) -> Signal:
        """The stages from the read data (``p_valid``: it is on ``w_data``) to the write of the new
        weight (:data:`UPDATE_STAGES`); returns a signal high while any stage holds a weight."""
        cfg = self._cfg
        B, L = cfg.weight_bits, cfg.parallelism
        st = cfg.formats.stdp
        homeo = bool(cfg.options.homeostasis)
        smax, smin, rounding = st.stdp_shift, st.stdp_shift_min, st.rounding
        aw = len(p_addr)

        def stage(k: int, prev: tuple[Signal, Signal, Signal, Signal]):
            """Registers carrying (valid, addr, kind, w) one stage on."""
            regs = (Signal(name=f"upd_v{k}"), Signal(aw, name=f"upd_a{k}"),
                    Signal(2, name=f"upd_kind{k}"), Signal(B, name=f"upd_w{k}"))
            m.d.sync += [r.eq(p) for r, p in zip(regs, prev)]
            return regs

        # 1: the lane's weight and the operation
        w0 = Signal(B, name="upd_w")
        m.d.comb += w0.eq(Array(self.w_data)[lane] if L > 1 else self.w_data[0])
        kind0 = Mux(op == DECAY, DECAY, Mux(p_pre, LTP, LTD))
        v1, a1, kind1, w1 = stage(1, (p_valid, p_addr, kind0, w0))
        # 2: p = w (2^B - w)
        v2, a2, kind2, w2 = stage(2, (v1, a1, kind1, w1))
        p2 = Signal(2 * B + 1, name="upd_p2")
        m.d.sync += p2.eq(w1 * ((1 << B) - w1))
        # 3: x = p times the operation's factor (decay: homeostasis_mult, LTP: 1, LTD: 3); the
        # shift n that rounds it, by the operation and the current rate
        v3, a3, kind3, w3 = stage(3, (v2, a2, kind2, w2))
        hmult = st.homeostasis_mult
        x_expr = Mux(kind2 == DECAY, p2 * hmult, Mux(kind2 == LTP, p2, p2 * 3))
        x3 = Signal(len(x_expr), name="upd_x3")
        m.d.sync += x3.eq(x_expr)
        ns = sorted({B + s for s in range(smin, smax + 1)} | {B + s + 2 for s in range(smin, smax + 1)}
                    | ({B + st.homeostasis_shift} if homeo else set()))
        nsel = Signal(range(len(ns)), name="upd_nsel")
        with m.Switch(kind2):
            if homeo:
                with m.Case(DECAY):
                    m.d.comb += nsel.eq(ns.index(B + st.homeostasis_shift))
            with m.Case(LTP):
                with m.Switch(self.shift):
                    for s in range(smin, smax + 1):
                        with m.Case(s):
                            m.d.comb += nsel.eq(ns.index(B + s))
            with m.Default():
                with m.Switch(self.shift):
                    for s in range(smin, smax + 1):
                        with m.Case(s):
                            m.d.comb += nsel.eq(ns.index(B + s + 2))
        nsel3 = Signal.like(nsel, name="upd_nsel3")
        m.d.sync += nsel3.eq(nsel)
        # 4: d = (x + rounding addend) >> n; with stochastic rounding the LFSR steps here, once
        # per weight, in issue order
        v4, a4, kind4, w4 = stage(4, (v3, a3, kind3, w3))
        if rounding == "stochastic":
            lfsr = Signal(32, init=st.lfsr_seed, name="lfsr")
            lfsr_next = Signal(32, name="lfsr_next")
            m.d.comb += lfsr_next.eq((lfsr >> 1) ^ Mux(lfsr[0], LFSR_TAPS, 0))
            with m.If(v3):
                m.d.sync += lfsr.eq(lfsr_next)

        def addend(n):
            if rounding == "half_up":
                return Const(1 << (n - 1), n)
            k = min(n, 32)
            return Cat(Const(0, n - k), lfsr_next[:k]) if n > k else lfsr_next[:k]

        if rounding == "truncate":
            width_sum = len(x3)
            total = x3
        else:
            width_sum = max(len(x3), max(ns)) + 1
            add = Signal(max(ns), name="upd_add")
            m.d.comb += add.eq(Array(addend(n) for n in ns)[nsel3])
            total = x3 + add     # (an expression: its low bits are shifted out)
        d4 = Signal(width_sum, name="upd_d4")
        m.d.sync += d4.eq(Array(total >> n for n in ns)[nsel3])
        # 5: w + d saturated (LTP) or w - d floored at 0 (LTD, decay); the write
        wmax = (1 << B) - 1
        inc = Signal(B + 1 + width_sum, name="upd_inc")
        m.d.comb += inc.eq(w4 + d4)
        new_w = Signal(B, name="upd_new_w")
        with m.If(kind4 == LTP):
            m.d.comb += new_w.eq(Mux(inc > wmax, wmax, inc))
        with m.Else():
            m.d.comb += new_w.eq(Mux(d4 > w4, 0, w4 - d4))
        m.d.comb += [
            self.wr.en.eq(v4), self.wr.addr.eq(a4), self.wr.data.eq(new_w),
            self.wr.lanes.eq(Mux(v4, Cat(*(lane == i for i in range(L))), 0)),
        ]
        busy = Signal(name="upd_busy")
        m.d.comb += busy.eq(v1 | v2 | v3 | v4)
        return busy
