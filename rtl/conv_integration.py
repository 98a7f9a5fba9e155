"""Potential integration of the conv core: token register, pick stage, read-modify-write of the
potentials with forwarding, and the pending-list append (see :mod:`spykehw.rtl.conv_core`,
"Integration").

:class:`Integration` is the component the core instantiates; it is made of
:class:`TokenStage` (stage T), :class:`PickStage` (stage P, registering stage I),
:class:`Accumulate` (stages I, R, X, W and Q) and the per-position *fired* flags with the input spike's
:class:`~spykehw.rtl.conv_blocks.WindowMask`.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import FlagGrid, LaneUpdate, WindowMask, at_most_one, drive, member_or_zero, select_bit, table
from .conv_config import ConvCoreConfig
from .conv_memories import FlagMemory
from .conv_ports import flag_set_signature, read_signature, write_signature
from .layouts import index_bits, token_layout

__all__ = ["TokenStage", "PickStage", "Accumulate", "Integration"]


def _idx(n: int, name: str) -> Signal:
    # An index 0..n-1; one bit even when n == 1, so no zero-width wire reaches Verilog.
    return Signal(index_bits(n), name=name)


def _token_regs(cfg: ConvCoreConfig, flow) -> dict:
    """The token register's fields: the input spike's row and column and its base addresses
    ``(y*H + x)*G`` and ``c*K*K*G``."""
    S, G = cfg.in_size, cfg.groups
    return {"y": flow(index_bits(S)), "x": flow(index_bits(S)),
            "pbase": flow(index_bits(S * S * G)), "wbase": flow(index_bits(cfg.weight_words))}


def _item(cfg: ConvCoreConfig, flow) -> dict:
    """An item of stage I (one read-modify-write): group 0 of its position (``first``), the
    position's word of group 0 (``pg``), the potential and weight addresses, the position."""
    H, G = cfg.out_size, cfg.groups
    return {"valid": flow(1), "first": flow(1), "pg": flow(index_bits(H * H * G)),
            "paddr": flow(index_bits(H * H * G)), "waddr": flow(index_bits(cfg.weight_words)),
            "u": flow(index_bits(H)), "v": flow(index_bits(H))}


class TokenStage(wiring.Component):
    """The token register T: a token is accepted into T (while ``active``, and not while T's
    end-of-step marker leaves it) and taken from T (``take``) when the pick stage is done with
    the previous input spike (``finishing``).

    Members
    -------
    i_events : In(stream.Signature(token_layout(C, S)))
    active : In(1); finishing : In(1)
    accept : Out(1); take : Out(1); valid : Out(1); end : Out(1)
        A token is accepted; T's token is taken; T holds a token; it is an end-of-step marker.
    y, x, pbase, wbase : Out
        The registered input spike (``(y*H + x)*G`` and ``c*K*K*G``, from tables).
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "i_events": In(stream.Signature(token_layout(cfg.channels, cfg.in_size))),
            "active": In(1), "finishing": In(1),
            "accept": Out(1), "take": Out(1), "valid": Out(1), "end": Out(1),
            **_token_regs(cfg, Out),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        S, H, G, C, KK = cfg.in_size, cfg.out_size, cfg.groups, cfg.channels, cfg.kernel ** 2
        ie, tok = self.i_events, self.i_events.payload
        # (y*H + x)*G and c*K*K*G of the token: tables of the coordinates' multiples (an
        # operand that is a slice of the payload would be zero-extended implicitly)
        tok_pbase = Signal(len(self.pbase), name="tok_pbase")
        tok_ybase = Signal(len(self.pbase), name="tok_ybase")
        tok_xbase = Signal(len(self.pbase), name="tok_xbase")
        m.d.comb += [tok_ybase.eq(table([y * H * G for y in range(S)], tok.y, len(tok_ybase))),
                     tok_xbase.eq(table([x * G for x in range(S)], tok.x, len(tok_xbase))),
                     tok_pbase.eq(tok_ybase + tok_xbase)]
        tok_wbase = Signal(len(self.wbase), name="tok_wbase")
        if C > 1:
            m.d.comb += tok_wbase.eq(table([c * KK * G for c in range(C)], tok.c, len(tok_wbase)))
        m.d.comb += [
            self.take.eq(self.active & self.valid & self.finishing),
            ie.ready.eq(self.active & (~self.valid | (self.take & ~self.end))),
            self.accept.eq(ie.valid & ie.ready),
        ]
        with m.If(self.accept):
            m.d.sync += [self.valid.eq(1), self.end.eq(tok.step_end), self.y.eq(tok.y),
                         self.x.eq(tok.x), self.pbase.eq(tok_pbase), self.wbase.eq(tok_wbase)]
        with m.Elif(self.take):
            m.d.sync += self.valid.eq(0)
        return m


class PickStage(wiring.Component):
    """Stage P: takes the lowest set bit of the current input spike's mask (one output
    position, group ``g``) and registers its addresses into stage I. Each set bit costs ``G``
    cycles, one per group; the next input spike is loaded from the token register when
    ``take & ~end`` (in the cycle the last bit is picked: ``finishing``).

    Members
    -------
    take, end : In(1); y, x, pbase, wbase : In; mask : In(K*K)
        The token register and the input spike's window mask.
    finishing : Out(1)
        The current input spike is done after this cycle.
    busy : Out(1)
        Bits of the current input spike are left.
    i_valid, i_first, i_pg, i_paddr, i_waddr, i_u, i_v : Out
        Stage I (registers).
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "take": In(1), "end": In(1), **_token_regs(cfg, In), "mask": In(cfg.kernel ** 2),
            "finishing": Out(1), "busy": Out(1),
            **{f"i_{k}": v for k, v in _item(cfg, Out).items()},
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        S, H, K, G = cfg.in_size, cfg.out_size, cfg.kernel, cfg.groups
        KK = K * K
        cur_mask = Signal(KK)       # output positions of the current input spike still to do
        cur_y = _idx(S, "cur_y")
        cur_x = _idx(S, "cur_x")
        cur_pbase = _idx(S * S * G, "cur_pbase")            # (y*H + x)*G (>= every offset used)
        cur_wbase = _idx(cfg.weight_words, "cur_wbase")     # c*K*K*G
        g = _idx(G, "g") if G > 1 else Const(0, 1)
        g_last = Signal()
        m.d.comb += g_last.eq(g == G - 1)

        # The lowest set bit of the mask, one-hot; its offsets by OR-ing table rows (a tree of
        # LUTs, not a priority chain): weight offset b*G, position offset (kr*H + kc)*G, kr, kc.
        low = Signal(KK)
        m.d.comb += low.eq(cur_mask & (-cur_mask.as_signed()).as_unsigned()[:KK])

        def onehot_table(values: list[int], width: int, name: str) -> Signal:
            # (as wide as the other operand: Verilator's WIDTHEXPAND sees through the Cat)
            out = Signal(width, name=name)
            bits = [Cat(*(low[i] for i in range(KK) if (values[i] >> j) & 1)).any()
                    for j in range(len(out))]
            m.d.comb += out.eq(Cat(*bits))
            return out

        off_b = onehot_table([i * G for i in range(KK)], len(cur_wbase), "off_b")
        off_p = onehot_table([((i // K) * H + i % K) * G for i in range(KK)], len(cur_pbase), "off_p")
        kr = onehot_table([i // K for i in range(KK)], len(cur_y), "kr")
        kc = onehot_table([i % K for i in range(KK)], len(cur_x), "kc")
        issue = Signal()
        # at most one bit left in the mask: from the mask itself, not from the carry chain of
        # its lowest bit, since it decides the token's take and so the next token's accept
        single = at_most_one(m, cur_mask, "single")
        # A single-port potential memory (spram) reads in stage I and writes in stage W, three
        # cycles later: items issued only in every other cycle keep reads and writes in
        # alternate cycles.
        slot = Signal()
        if cfg.spram:
            m.d.sync += slot.eq(~slot)
        m.d.comb += [
            issue.eq(cur_mask.any() & ~slot),
            self.finishing.eq(~cur_mask.any() | (single & g_last & ~slot)),
            self.busy.eq(cur_mask.any()),
        ]
        with m.If(issue):
            with m.If(g_last):
                m.d.sync += cur_mask.eq(cur_mask ^ low)
                if G > 1:
                    m.d.sync += g.eq(0)
            if G > 1:
                with m.Else():
                    m.d.sync += g.eq(g + 1)

        # Stage I: registered addresses. Full-width arithmetic on whole nets; truncated only
        # into registers.
        pg_now = Signal(len(cur_pbase), name="pg_now")
        m.d.comb += pg_now.eq(cur_pbase - off_p)        # >= 0 by the mask
        m.d.sync += self.i_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [self.i_first.eq(g == 0), self.i_pg.eq(pg_now), self.i_paddr.eq(pg_now + g),
                         self.i_waddr.eq(cur_wbase + off_b + g),
                         self.i_u.eq(cur_y - kr), self.i_v.eq(cur_x - kc)]
        # The next input spike (after the updates above: its mask wins).
        with m.If(self.take & ~self.end):
            m.d.sync += [cur_mask.eq(self.mask), cur_y.eq(self.y), cur_x.eq(self.x),
                         cur_pbase.eq(self.pbase), cur_wbase.eq(self.wbase)]
        return m


class Accumulate(wiring.Component):
    """Stages I, R, X, W and Q of a read-modify-write, one item per cycle, never stalling:

    I
        reads the potential word (``p_rd``) and the position's *touched* flag, which its group
        0 sets (groups after 0 use the flag as group 0 read it).
    R
        registers the potential word as the memory outputs it (nothing between the block
        RAM's output and a register: its clock-to-output delay is a third of a 100 MHz cycle)
        and reads the weight word (``w_rd``). The read missed the writes of the two items
        ahead, in X (writing now) and W (written in the previous cycle): an item there with
        the same address forwards its new word (X's before W's: it is newer).
    X
        adds (:class:`~spykehw.rtl.conv_blocks.LaneUpdate`, the old word read as 0 for an
        untouched position), writes back and registers the sum and the lanes' threshold tests.
    W
        reduces the tests to "a lane crossed" and reads the position's *pending* flag (with
        Q's append forwarded).
    Q
        appends a crossed, not-yet-pending position to the pending list (a stage of its own:
        the append fans out to every pending flag).

    The potential memories need no transparency: every hazard is forwarded here.

    Members
    -------
    i_valid, i_first, i_pg, i_paddr, i_waddr, i_u, i_v : In
        Stage I (registers of the pick stage).
    p_rd : Out(read_signature(H*H*G, V, L)); w_rd : Out(read_signature(C*K*K*G, B, L))
        The potential read (in I) and the weight read (in R).
    p_wr : Out(write_signature(H*H*G, V, L))
    q_wr : Out(write_signature(H*H, pending_layout))
    n_pend : Out(range(H*H + 1))
        Entries on the pending list.
    step_clear, image_clear : In(1)
        Empty the pending list and flags (end of a step); clear the touched flags (of an image).
    draining : Out(1); q_valid : Out(1)
        Stage I, R, X or W holds an item (a write or an append is still to come, and the
        append of Q's item happens in this cycle); stage Q holds one.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        G, L, NPOS = cfg.groups, cfg.parallelism, cfg.out_size ** 2
        super().__init__({
            **{f"i_{k}": v for k, v in _item(cfg, In).items()},
            "p_rd": Out(read_signature(NPOS * G, cfg.potential_bits, L)),
            "w_rd": Out(read_signature(cfg.weight_words, cfg.weight_bits, L)),
            "p_wr": Out(write_signature(NPOS * G, cfg.potential_bits, L)),
            "q_wr": Out(write_signature(NPOS, cfg.pending_layout())),
            "n_pend": Out(range(NPOS + 1)),
            "step_clear": In(1), "image_clear": In(1),
            "draining": Out(1), "q_valid": Out(1),
            **({"clearing": Out(1)} if cfg.spram else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        H, P, G, L, NPOS = cfg.out_size, cfg.pool_size, cfg.groups, cfg.parallelism, cfg.out_size ** 2
        V, NWIN = cfg.potential_bits, P * P

        def stage(name: str, *fields: str) -> dict:
            make = {"valid": lambda: Signal(name=f"{name}_valid"),
                    "pg": lambda: _idx(NPOS * G, f"{name}_pg"),
                    "paddr": lambda: _idx(NPOS * G, f"{name}_paddr"),
                    "u": lambda: _idx(H, f"{name}_u"), "v": lambda: _idx(H, f"{name}_v"),
                    "touched": lambda: Signal(name=f"{name}_touched"),
                    "first": lambda: Signal(name=f"{name}_first")}
            return {k: make[k]() for k in fields}

        def advance(dst: dict, src: dict) -> list:
            return [dst[k].eq(src[k]) for k in dst]

        # ----- stage I: the potential read; the touched flag ---------------------------------
        seq_touched = Signal()      # the position's touched flag, as its group 0 read it
        m.d.comb += [self.p_rd.en.eq(self.i_valid), self.p_rd.addr.eq(self.i_paddr)]
        every = ("valid", "pg", "paddr", "u", "v", "touched")
        i = {"valid": self.i_valid, "pg": self.i_pg, "paddr": self.i_paddr, "u": self.i_u,
             "v": self.i_v}
        if cfg.spram:
            # The flags in block RAM: group 0's read in I is on the read port in R.
            m.submodules.touched = touched = FlagMemory(rows=H, cols=H, row_reads=1)
            m.d.comb += [touched.row0_en.eq(self.i_valid & self.i_first),
                         *drive(member_or_zero(touched, "row0_idx"), self.i_u),
                         touched.set_en.eq(self.i_valid & self.i_first),
                         *drive(member_or_zero(touched, "set_row"), self.i_u),
                         touched.set_col.eq(self.i_v), touched.clear.eq(self.image_clear)]
            r = stage("r", "valid", "pg", "paddr", "u", "v", "first")
            m.d.sync += advance(r, {**i, "first": self.i_first})
            r_flag = select_bit(m, touched.row0, r["v"], "r_touched_flag")
            with m.If(r["valid"] & r["first"]):
                m.d.sync += seq_touched.eq(r_flag)
            r_touched = Mux(r["first"], r_flag, seq_touched)
        else:
            m.submodules.touched = touched = FlagGrid(rows=H, cols=H, bit_reads=1)
            m.d.comb += [*drive(member_or_zero(touched, "bit0_row"), self.i_u),
                         touched.bit0_col.eq(self.i_v),
                         touched.set_en.eq(self.i_valid & self.i_first),
                         *drive(member_or_zero(touched, "set_row"), self.i_u),
                         touched.set_col.eq(self.i_v), touched.clear.eq(self.image_clear)]
            with m.If(self.i_valid & self.i_first):
                m.d.sync += seq_touched.eq(touched.bit0)
            r = stage("r", *every)
            m.d.sync += advance(r, {**i, "touched": Mux(self.i_first, touched.bit0, seq_touched)})
            r_touched = r["touched"]

        # ----- stage R: the read word is registered; the weight read; forwarding -------------
        x = stage("x", *every)
        w = stage("w", "valid", "pg", "paddr", "u", "v")
        q = stage("q", "valid", "pg", "u", "v")
        r_waddr = _idx(cfg.weight_words, "r_waddr")
        m.d.sync += r_waddr.eq(self.i_waddr)
        m.d.comb += [self.w_rd.en.eq(r["valid"]), self.w_rd.addr.eq(r_waddr)]
        m.submodules.lanes = lanes = LaneUpdate(lanes=L, pot_bits=V, weight_bits=cfg.weight_bits,
                                                threshold=cfg.threshold)
        w_new = [Signal(V, name=f"w_new{lane}") for lane in range(L)]
        fwd_x, fwd_w = Signal(), Signal()
        m.d.comb += [fwd_x.eq(x["valid"] & (x["paddr"] == r["paddr"])),
                     fwd_w.eq(w["valid"] & (w["paddr"] == r["paddr"]))]
        x_fwd = Signal()
        x_word = [Signal(V, name=f"x_word{lane}") for lane in range(L)]
        x_fwd_word = [Signal(V, name=f"x_fwd_word{lane}") for lane in range(L)]
        m.d.sync += [*advance(x, {**r, "touched": r_touched}), x_fwd.eq(fwd_x | fwd_w),
                     *(x_word[lane].eq(self.p_rd.data[lane]) for lane in range(L)),
                     *(x_fwd_word[lane].eq(Mux(fwd_x, lanes.new[lane], w_new[lane]))
                       for lane in range(L))]

        # ----- stage X: add and write back ---------------------------------------------------
        m.d.comb += [
            lanes.touched.eq(x_fwd | x["touched"]),
            *(lanes.old[lane].eq(Mux(x_fwd, x_fwd_word[lane], x_word[lane])) for lane in range(L)),
            *(lanes.w[lane].eq(self.w_rd.data[lane]) for lane in range(L)),
        ]
        # A single-port memory writes in W (see PickStage), from W's registers: the forwarding
        # above covers the read of the item behind (in R while W writes).
        wr = w if cfg.spram else x
        wr_word = w_new if cfg.spram else lanes.new
        m.d.comb += [*(self.p_wr.data[lane].eq(wr_word[lane]) for lane in range(L)),
                     self.p_wr.addr.eq(wr["paddr"]), self.p_wr.en.eq(wr["valid"])]

        # ----- stage W: did a lane cross; the pending flag (Q's append forwarded) -------------
        w_crossed = Signal(L)
        m.d.sync += [*advance(w, x), w_crossed.eq(lanes.crossed),
                     *(w_new[lane].eq(lanes.new[lane]) for lane in range(L))]
        # ----- stage Q: append to the pending list -------------------------------------------
        q_crossed = Signal()
        q_pending = Signal()        # already on the list
        push = Signal()
        push_same = Signal()        # Q appends W's position (W's read misses it)
        m.d.comb += push_same.eq(push & (q["u"] == w["u"]) & (q["v"] == w["v"]))
        m.d.sync += [*advance(q, w), q_crossed.eq(w_crossed.any())]
        if cfg.spram:
            # W reads the row from block RAM, Q selects the bit.
            m.submodules.pending = pending = FlagMemory(rows=H, cols=H, row_reads=1)
            q_fwd = Signal()
            m.d.comb += [pending.row0_en.eq(w["valid"]),
                         *drive(member_or_zero(pending, "row0_idx"), w["u"]),
                         q_pending.eq(q_fwd | select_bit(m, pending.row0, q["v"], "q_pending_flag")),
                         self.clearing.eq(touched.busy | pending.busy)]
            m.d.sync += q_fwd.eq(push_same)
        else:
            m.submodules.pending = pending = FlagGrid(rows=H, cols=H, bit_reads=1)
            m.d.comb += [*drive(member_or_zero(pending, "bit0_row"), w["u"]), pending.bit0_col.eq(w["v"])]
            m.d.sync += q_pending.eq(pending.bit0 | push_same)
        m.d.comb += push.eq(q["valid"] & q_crossed & ~q_pending)
        # The entry's pool window, from tables (no halving arithmetic on the fly).
        q_wrow = _idx(NWIN, "q_wrow")
        q_wcol = _idx(P, "q_wcol")
        if NWIN:
            m.d.comb += [
                q_wrow.eq(table([(u // 2) * P if u < 2 * P else 0 for u in range(H)], q["u"], len(q_wrow))),
                q_wcol.eq(table([v // 2 if v < 2 * P else 0 for v in range(H)], q["v"], len(q_wcol))),
            ]
        q_wr = self.q_wr
        m.d.comb += [
            q_wr.addr.eq(self.n_pend),
            q_wr.data.pg.eq(q["pg"]),
            q_wr.data.u.eq(q["u"]), q_wr.data.v.eq(q["v"]),
            q_wr.data.win.eq(q_wrow + q_wcol),
            q_wr.data.win_ok.eq((q["u"] < 2 * P) & (q["v"] < 2 * P)),
            q_wr.en.eq(push),
            pending.set_en.eq(push), *drive(member_or_zero(pending, "set_row"), q["u"]),
            pending.set_col.eq(q["v"]), pending.clear.eq(self.step_clear),
            self.draining.eq(self.i_valid | r["valid"] | x["valid"] | w["valid"]),
            self.q_valid.eq(q["valid"]),
        ]
        with m.If(push):
            m.d.sync += self.n_pend.eq(self.n_pend + 1)
        with m.If(self.step_clear):
            m.d.sync += self.n_pend.eq(0)
        return m


class Integration(wiring.Component):
    """Integration (see :mod:`spykehw.rtl.conv_core`): input spikes in, read-modify-writes of
    the potentials, positions that crossed the threshold onto the pending list.

    Members
    -------
    i_events : In(stream.Signature(token_layout(C, S)))
    active : In(1)
        The core integrates (tokens are accepted and picked only then).
    fired : In(flag_set_signature(H))
        A position fires: it costs nothing from the next step on.
    step_clear, image_clear : In(1)
        End of a step (pending list emptied), of an image (fired and touched flags cleared).
    w_rd : Out(read_signature(C*K*K*G, B, L)); p_rd : Out(read_signature(H*H*G, V, L))
        The weight read (stage R) and the potential read (stage I).
    p_wr : Out(write_signature(H*H*G, V, L)); q_wr : Out(write_signature(H*H, pending_layout))
        Stage X's write-back; stage Q's append to the pending list.
    n_pend : Out(range(H*H + 1))
    accept : Out(1); marker : Out(1)
        A token is accepted; the end-of-step marker is taken from the token register.
    draining : Out(1)
        Stage I, R, X or W holds an item (firing must wait).
    busy : Out(1)
        Anything of an input spike is left (token register, pick, stages I, R, X, W, Q).
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        H, G, L, B, V = cfg.out_size, cfg.groups, cfg.parallelism, cfg.weight_bits, cfg.potential_bits
        NPOS = H * H
        super().__init__({
            "i_events": In(stream.Signature(token_layout(cfg.channels, cfg.in_size))),
            "active": In(1), "fired": In(flag_set_signature(H)),
            "step_clear": In(1), "image_clear": In(1),
            "w_rd": Out(read_signature(cfg.weight_words, B, L)),
            "p_rd": Out(read_signature(NPOS * G, V, L)),
            "p_wr": Out(write_signature(NPOS * G, V, L)),
            "q_wr": Out(write_signature(NPOS, cfg.pending_layout())),
            "n_pend": Out(range(NPOS + 1)),
            "accept": Out(1), "marker": Out(1), "draining": Out(1), "busy": Out(1),
            **({"clearing": Out(1)} if cfg.spram else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        K, H, L = cfg.kernel, cfg.out_size, cfg.parallelism
        if cfg.spram:
            # In block RAM, read as the token is accepted: the rows arrive with the registers
            # the window mask would otherwise load.
            m.submodules.fired_flags = fired = FlagMemory(rows=H, cols=H, row_reads=K)
        else:
            m.submodules.fired_flags = fired = FlagGrid(rows=H, cols=H, row_reads=K)
        m.submodules.window = window = WindowMask(kernel=K, in_size=cfg.in_size, out_size=H,
                                                  registered_rows=cfg.spram)
        m.submodules.token = token = TokenStage(cfg)
        m.submodules.pick = pick = PickStage(cfg)
        m.submodules.accumulate = acc = Accumulate(cfg)
        # the fired flags (set by the firing stage) and the window mask of an accepted token
        m.d.comb += [fired.set_en.eq(self.fired.en), *drive(member_or_zero(fired, "set_row"), self.fired.u),
                     fired.set_col.eq(self.fired.v), fired.clear.eq(self.image_clear)]
        for r in range(K):
            m.d.comb += [*drive(member_or_zero(fired, f"row{r}_idx"), member_or_zero(window, f"row{r}_idx")),
                         getattr(window, f"row{r}_fired").eq(getattr(fired, f"row{r}"))]
        wiring.connect(m, wiring.flipped(self.i_events), token.i_events)
        tok = self.i_events.payload
        m.d.comb += [window.y.eq(tok.y), window.x.eq(tok.x), window.capture.eq(token.accept)]
        if cfg.spram:
            m.d.comb += [*(getattr(fired, f"row{r}_en").eq(window.loading) for r in range(K)),
                         self.clearing.eq(fired.busy | acc.clearing)]
        # token register -> pick stage -> stages I, R, X, W, Q; an input spike is taken once
        # its window mask is registered (a marker has no mask)
        m.d.comb += [token.active.eq(self.active),
                     token.finishing.eq(pick.finishing & (~window.loading | token.end)),
                     pick.take.eq(token.take), pick.end.eq(token.end), pick.mask.eq(window.mask),
                     *(getattr(pick, k).eq(getattr(token, k)) for k in ("y", "x", "pbase", "wbase"))]
        m.d.comb += [getattr(acc, f"i_{k}").eq(getattr(pick, f"i_{k}"))
                     for k in ("valid", "first", "pg", "paddr", "waddr", "u", "v")]
        m.d.comb += [acc.step_clear.eq(self.step_clear), acc.image_clear.eq(self.image_clear)]
        wiring.connect(m, acc.p_rd, wiring.flipped(self.p_rd))
        wiring.connect(m, acc.w_rd, wiring.flipped(self.w_rd))
        wiring.connect(m, acc.p_wr, wiring.flipped(self.p_wr))
        wiring.connect(m, acc.q_wr, wiring.flipped(self.q_wr))
        m.d.comb += [
            self.n_pend.eq(acc.n_pend),
            self.accept.eq(token.accept),
            self.marker.eq(token.take & token.end),
            self.draining.eq(acc.draining),
            self.busy.eq(token.valid | pick.busy | acc.draining | acc.q_valid),
        ]
        return m
