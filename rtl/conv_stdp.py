"""The weight update engine of the conv core's learning unit: homeostatic decay and integer STDP,
one weight read-modify-write per cycle (see :mod:`spykehw.rtl.conv_learning`, step 5).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.fixed import LFSR_TAPS
from .conv_config import ConvCoreConfig
from .layouts import index_bits

__all__ = ["DECAY", "LTP", "LTD", "weight_write_signature", "UpdateEngine"]

DECAY, LTP, LTD = 0, 1, 2


def weight_write_signature(cfg: ConvCoreConfig) -> wiring.Signature:
    """A write of one weight: word ``addr`` of the weight memories, lane one-hot in ``lanes``."""
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(cfg.weight_words)),
                             "data": Out(cfg.weight_bits), "lanes": Out(cfg.parallelism)})


def weight_read_signature(cfg: ConvCoreConfig) -> wiring.Signature:
    """A read of one weight word (the data comes back one cycle later on every lane)."""
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(cfg.weight_words))})


class UpdateEngine(wiring.Component):
    """Updates the ``C x K x K`` weights of one map, in ``(c, kr, kc)`` order: an issue stage
    reads weight ``k`` (and the *pre* flag of its input), the next cycle computes the new weight
    and writes it. The operation is the homeostatic decay (``load_decay``) or STDP (LTP when
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
    pre_row : Out (absent with ``C*S == 1``); pre_col : Out; pre_bit : In(1)
        The *pre* flag of the input of the weight being issued.
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
            "pre_col": Out(index_bits(S)), "pre_bit": In(1),
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
        upd_r = Signal(index_bits(H), name="upd_r")
        upd_c = Signal(index_bits(H), name="upd_c")
        k_iss = Signal(range(CKK + 1), name="upd_k")
        ch = Signal(index_bits(C), name="upd_ch")
        kr = Signal(index_bits(K), name="upd_kr")
        kc = Signal(index_bits(K), name="upd_kc")
        addr = Signal(index_bits(cfg.weight_words) + 1, name="upd_addr")
        p_valid = Signal(name="upd_p_valid")
        p_addr = Signal(index_bits(cfg.weight_words), name="upd_p_addr")
        p_pre = Signal(name="upd_p_pre")
        op = Signal(2, name="upd_op")           # DECAY or STDP (LTP/LTD chosen per weight)
        group_of = Array(Const(i // L, index_bits(G)) for i in range(M))
        lane_of = Array(Const(i % L, index_bits(L)) for i in range(M))
        lane = Signal(index_bits(L), name="upd_lane")
        m.d.comb += lane.eq(lane_of[self.m])

        # pre[ch, r + kr, c + kc] of the weight being issued
        if C * S > 1:
            m.d.comb += self.pre_row.eq(ch * S + upd_r + kr)
        m.d.comb += self.pre_col.eq(upd_c + kc)

        new_w, lfsr_step = self._new_weight(m, lane, op, p_pre)
        m.d.comb += [
            self.wr.en.eq(p_valid), self.wr.addr.eq(p_addr), self.wr.data.eq(new_w),
            self.wr.lanes.eq(Mux(p_valid, Cat(*(lane == i for i in range(L))), 0)),
        ]
        if lfsr_step is not None:
            with m.If(p_valid):
                m.d.sync += lfsr_step

        with m.If(self.select):
            m.d.sync += [k_iss.eq(0), ch.eq(0), kr.eq(0), kc.eq(0)]
            with m.If(self.load):
                m.d.sync += [self.m.eq(self.load_m), op.eq(Mux(self.load_decay, DECAY, LTP)),
                             addr.eq(group_of[self.load_m])]
        with m.If(self.load_rc):
            m.d.sync += [upd_r.eq(self.r), upd_c.eq(self.c)]

        # Issue stage: read weight k of the map.
        issue = Signal(name="upd_issue")
        m.d.comb += [issue.eq(self.run & (k_iss < CKK)),
                     self.finished.eq((k_iss == CKK) & ~p_valid),
                     self.rd.en.eq(issue), self.rd.addr.eq(addr)]
        m.d.sync += p_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [k_iss.eq(k_iss + 1), addr.eq(addr + G), p_addr.eq(addr),
                         p_pre.eq(self.pre_bit)]
            with m.If(kc == K - 1):
                m.d.sync += kc.eq(0)
                with m.If(kr == K - 1):
                    m.d.sync += [kr.eq(0), ch.eq(ch + 1)]
                with m.Else():
                    m.d.sync += kr.eq(kr + 1)
            with m.Else():
                m.d.sync += kc.eq(kc + 1)
        return m

    def _new_weight(self, m: Module, lane: Signal, op: Signal, p_pre: Signal):
        """The new weight (compute stage, one cycle after the read), and the LFSR's step (an
        assignment) with stochastic rounding, else None."""
        cfg = self._cfg
        B, L = cfg.weight_bits, cfg.parallelism
        st = cfg.formats.stdp
        homeo = bool(cfg.options.homeostasis)
        smax, smin, rounding = st.stdp_shift, st.stdp_shift_min, st.rounding
        lfsr_step = None
        if rounding == "stochastic":
            lfsr = Signal(32, init=st.lfsr_seed, name="lfsr")
            lfsr_next = Signal(32, name="lfsr_next")
            m.d.comb += lfsr_next.eq((lfsr >> 1) ^ Mux(lfsr[0], LFSR_TAPS, 0))
            lfsr_step = lfsr.eq(lfsr_next)
        w = Signal(B, name="upd_w")
        m.d.comb += w.eq(Array(self.w_data)[lane] if L > 1 else self.w_data[0])
        p = Signal(2 * B + 1, name="upd_p")
        m.d.comb += p.eq(w * ((1 << B) - w))
        kind = Signal(2, name="upd_kind")
        m.d.comb += kind.eq(Mux(op == DECAY, DECAY, Mux(p_pre, LTP, LTD)))
        hmult = st.homeostasis_mult
        # (an expression, not a signal: the low bits of x are shifted out)
        x = Mux(kind == DECAY, p * hmult, Mux(kind == LTP, p, p * 3))
        # The shift n of each possible rounding, then one adder and one shift selected by n.
        ns = sorted({B + s for s in range(smin, smax + 1)} | {B + s + 2 for s in range(smin, smax + 1)}
                    | ({B + st.homeostasis_shift} if homeo else set()))
        nsel = Signal(range(len(ns)), name="upd_nsel")
        with m.Switch(kind):
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

        def addend(n):
            if rounding == "half_up":
                return Const(1 << (n - 1), n)
            k = min(n, 32)
            return Cat(Const(0, n - k), lfsr_next[:k]) if n > k else lfsr_next[:k]

        if rounding == "truncate":
            width_sum = len(x)
            total = x
        else:
            width_sum = max(len(x), max(ns)) + 1
            add = Signal(max(ns), name="upd_add")
            m.d.comb += add.eq(Array(addend(n) for n in ns)[nsel])
            total = x + add     # (an expression: its low bits are shifted out)
        d = Signal(width_sum, name="upd_d")
        m.d.comb += d.eq(Array(total >> n for n in ns)[nsel])
        wmax = (1 << B) - 1
        inc = Signal(B + 1 + width_sum, name="upd_inc")
        m.d.comb += inc.eq(w + d)
        new_w = Signal(B, name="upd_new_w")
        with m.If(kind == LTP):
            m.d.comb += new_w.eq(Mux(inc > wmax, wmax, inc))
        with m.Else():
            m.d.comb += new_w.eq(Mux(d > w, 0, w - d))
        return new_w, lfsr_step
