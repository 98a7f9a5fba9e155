"""Firing and lateral inhibition of the conv core: the pending list read back, the comparator tree
over a word's lanes and the combination of the groups (see :mod:`spykehw.rtl.conv_core`, "Firing").

:class:`Firing` is the component the core instantiates: :class:`PendingRead` (stages A, E and B)
feeds :class:`MapSelect` (stage C, the comparator tree's registers, the group combine, stage Z).
Every stage moves while not ``stall`` (an output register is full and not being taken).
"""

from __future__ import annotations

from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import LaneArgmax, member_or_zero, table
from .conv_config import ConvCoreConfig
from .conv_ports import capture_signature, lookahead_signature, read_signature
from .layouts import index_bits

__all__ = ["PendingRead", "MapSelect", "Firing"]


def _idx(n: int, name: str) -> Signal:
    # An index 0..n-1; one bit even when n == 1, so no zero-width wire reaches Verilog.
    return Signal(index_bits(n), name=name)


class PendingRead(wiring.Component):
    """Stage A reads entry ``f_idx`` of the pending list; stage E has it on the list's read
    port; stage B registers it and reads its ``G`` potential words, one per cycle, from its
    own address register (one pending position per ``G`` cycles). The registers between the
    list's block RAM and the potential memories' address inputs keep the RAM's clock-to-output
    delay and the address fan-out to every lane's memory in different cycles.

    Members
    -------
    active, stall, step_clear : In(1)
        The core fires; the pipeline stalls; the step ends (``f_idx`` back to 0).
    n_pend : In(range(H*H + 1))
    q_rd : Out(read_signature(H*H, pending_layout))
    p_en, p_addr : Out
        Read of a potential word (group ``b_g`` of the entry).
    b_valid, b_last : Out(1); b_g : Out(index_bits(G)) (absent for one group)
        Stage B: an entry's group ``b_g`` is read (the last group: ``b_last``).
    entry : Out(pending_layout)
        Stage B's entry.
    empty : Out(1)
        Every entry was read and stages E and B are empty.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        NPOS, G = cfg.out_size ** 2, cfg.groups
        members = {
            "active": In(1), "stall": In(1), "step_clear": In(1), "n_pend": In(range(NPOS + 1)),
            "q_rd": Out(read_signature(NPOS, cfg.pending_layout())),
            "p_en": Out(1), "p_addr": Out(index_bits(NPOS * G)),
            "b_valid": Out(1), "b_last": Out(1), "entry": Out(cfg.pending_layout()), "empty": Out(1),
        }
        if G > 1:
            members["b_g"] = Out(index_bits(G))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        G, NPOS = self._cfg.groups, self._cfg.out_size ** 2
        stall, q_rd, b_valid, b_last = self.stall, self.q_rd, self.b_valid, self.b_last
        f_idx = Signal(range(NPOS + 1))
        e_valid = Signal()
        b_g = member_or_zero(self, "b_g")
        m.d.comb += b_last.eq(b_g == G - 1)
        a_go, e_move = Signal(), Signal()
        m.d.comb += [
            e_move.eq(e_valid & ~stall & (~b_valid | b_last)),
            # the read port holds E's entry until it moves on
            a_go.eq(self.active & (f_idx < self.n_pend) & ~stall & (~e_valid | e_move)),
            q_rd.addr.eq(f_idx), q_rd.en.eq(a_go),
        ]
        with m.If(a_go):
            m.d.sync += f_idx.eq(f_idx + 1)
        with m.If(self.step_clear):
            m.d.sync += f_idx.eq(0)
        with m.If(~stall):
            m.d.sync += e_valid.eq(a_go | (e_valid & ~e_move))
        m.d.comb += self.p_en.eq(b_valid & ~stall)
        with m.If(e_move):
            m.d.sync += [b_valid.eq(1), self.entry.eq(q_rd.data), self.p_addr.eq(q_rd.data.pg)]
            if G > 1:
                m.d.sync += b_g.eq(0)
        with m.Elif(self.p_en):
            with m.If(b_last):
                m.d.sync += b_valid.eq(0)
            if G > 1:
                with m.Else():
                    m.d.sync += [b_g.eq(b_g + 1), self.p_addr.eq(self.p_addr + 1)]
        m.d.comb += self.empty.eq((f_idx == self.n_pend) & ~e_valid & ~b_valid)
        return m


class MapSelect(wiring.Component):
    """Stage C has an entry's potential words on the read ports; the item then goes through
    the comparator tree's registers (:class:`~spykehw.rtl.conv_blocks.LaneArgmax`, stage
    ``s_k`` = register ``k``), with several groups through a combining stage (strict ``>``:
    the lower group keeps ties), and is captured in stage Z: the lowest map among the maxima.

    Members
    -------
    stall : In(1)
    b_valid, b_last : In(1); b_g : In(index_bits(G)) (absent for one group); entry : In(pending_layout)
        Stage B and its pending-list entry.
    p_data : In(V).array(L)
        The potential word read in stage B.
    capture : Out(capture_signature(cfg, value=learning or spike_potentials))
        Stage Z captures a position (``en`` = the item's last group is in Z and nothing stalls).
    ahead : Out(lookahead_signature(cfg))
        The items one and two stages before Z (for the feature flags).
    busy : Out(1)
        A stage from C to Z holds an item.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        members = {"stall": In(1), "b_valid": In(1), "b_last": In(1),
                   "entry": In(cfg.pending_layout()),
                   "p_data": In(cfg.potential_bits).array(cfg.parallelism),
                   "capture": Out(capture_signature(cfg, value=cfg.captures_value)),
                   "ahead": Out(lookahead_signature(cfg)), "busy": Out(1)}
        if cfg.groups > 1:
            members["b_g"] = In(index_bits(cfg.groups))
        super().__init__(members)

    def _stage(self, name: str, groups: bool = True) -> dict[str, Any]:
        H, G, NWIN = self._cfg.out_size, self._cfg.groups, self._cfg.pool_size ** 2
        return {"valid": Signal(name=f"{name}_valid"), "last": Signal(name=f"{name}_last"),
                "g": _idx(G, f"{name}_g") if G > 1 and groups else Const(0, 1),
                "u": _idx(H, f"{name}_u"), "v": _idx(H, f"{name}_v"),
                "win": _idx(NWIN, f"{name}_win"), "win_ok": Signal(name=f"{name}_win_ok")}

    @staticmethod
    def _advance(dst: dict[str, Any], src: dict[str, Any]) -> list:
        return [dst[k].eq(src[k]) for k in dst if not isinstance(dst[k], Const)]

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        M, L, G, V = cfg.maps, cfg.parallelism, cfg.groups, cfg.potential_bits
        stall, q, cap = self.stall, self.entry, self.capture
        b = {"valid": self.b_valid, "last": self.b_last, "g": member_or_zero(self, "b_g"),
             "u": q.u, "v": q.v, "win": q.win, "win_ok": q.win_ok}
        c = self._stage("c")
        with m.If(~stall):
            m.d.sync += self._advance(c, b)
        m.submodules.lane_max = lane_max = LaneArgmax(lanes=L, pot_bits=V,
                                                      need_value=G > 1 or cfg.captures_value)
        m.d.comb += [lane_max.values[lane].eq(self.p_data[lane]) for lane in range(L)]
        chain = [c] + [self._stage(f"s{k}") for k in range(lane_max.latency)]
        for k in range(1, len(chain)):
            with m.If(~stall):
                m.d.sync += self._advance(chain[k], chain[k - 1])
        # Operand isolation: the tree's registers load only real items.
        m.d.comb += [lane_max.en[k].eq(chain[k]["valid"] & ~stall) for k in range(lane_max.latency)]
        top = chain[-1]             # the tree's result is on lane_max.index / lane_max.value
        if G > 1:
            run_val = Signal(V)         # best of the groups so far
            run_m = _idx(M, "run_m")
            take = Signal()
            y_m = _idx(M, "y_m")
            y_val = Signal(V, name="y_val")
            gbase = _idx(M, "gbase")
            m.d.comb += [
                gbase.eq(table([gi * L for gi in range(G)], top["g"], len(gbase))),
                take.eq((top["g"] == 0) | (lane_max.value > run_val)),  # strict: lower group keeps ties
                y_val.eq(Mux(take, lane_max.value, run_val)),
                y_m.eq(Mux(take, gbase + lane_max.lane_index(), run_m)),
            ]
            with m.If(top["valid"] & ~stall):
                m.d.sync += [run_val.eq(y_val), run_m.eq(y_m)]
            z = self._stage("z", groups=False)
            with m.If(~stall):
                m.d.sync += [*self._advance(z, top), z["valid"].eq(top["valid"] & top["last"]),
                             cap.m.eq(y_m)]
                if cfg.captures_value:
                    m.d.sync += cap.val.eq(y_val)
            pre_z, pre_z2 = top, chain[-2]
        else:
            z = top
            m.d.comb += cap.m.eq(lane_max.lane_index())
            if cfg.captures_value:
                m.d.comb += cap.val.eq(lane_max.value)
            pre_z = chain[-2]
            pre_z2 = chain[-3] if len(chain) > 2 else b
        m.d.comb += [
            self.busy.eq(Cat(*(st["valid"] for st in chain), z["valid"]).any()),
            cap.en.eq(z["valid"] & z["last"] & ~stall),
            cap.u.eq(z["u"]), cap.v.eq(z["v"]), cap.win.eq(z["win"]), cap.win_ok.eq(z["win_ok"]),
            # The window's flag word is read as the item enters the stage before Z and
            # registered as it enters Z (see FeatureOutput).
            self.ahead.rd_en.eq(pre_z2["valid"] & pre_z2["last"] & ~stall),
            self.ahead.rd_win.eq(pre_z2["win"]),
            self.ahead.load.eq(pre_z["valid"] & pre_z["last"] & ~stall),
            self.ahead.load_win.eq(pre_z["win"]),
        ]
        return m


class Firing(wiring.Component):
    """Firing (see :mod:`spykehw.rtl.conv_core`): each pending position's ``G`` words are read
    again and reduced to the lowest map among the maxima; the pipeline takes one pending
    position per ``G`` cycles and stalls as a whole while ``stall``.

    Members
    -------
    active, stall, step_clear : In(1); n_pend : In(range(H*H + 1))
    q_rd : Out(read_signature(H*H, pending_layout))
        Reads of the pending list.
    p_rd : Out(read_signature(H*H*G, V, L))
        Reads of the potentials.
    capture : Out(capture_signature(cfg, value=learning or spike_potentials)); ahead : Out(lookahead_signature(cfg))
    done : Out(1)
        Every pending position has been captured.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        NPOS, G, L = cfg.out_size ** 2, cfg.groups, cfg.parallelism
        super().__init__({
            "active": In(1), "stall": In(1), "step_clear": In(1), "n_pend": In(range(NPOS + 1)),
            "q_rd": Out(read_signature(NPOS, cfg.pending_layout())),
            "p_rd": Out(read_signature(NPOS * G, cfg.potential_bits, L)),
            "capture": Out(capture_signature(cfg, value=cfg.captures_value)),
            "ahead": Out(lookahead_signature(cfg)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.read = rd = PendingRead(cfg)
        m.submodules.select = sel = MapSelect(cfg)
        m.d.comb += [rd.active.eq(self.active), rd.stall.eq(self.stall),
                     rd.step_clear.eq(self.step_clear), rd.n_pend.eq(self.n_pend),
                     sel.stall.eq(self.stall), sel.b_valid.eq(rd.b_valid), sel.b_last.eq(rd.b_last),
                     sel.entry.eq(rd.entry),
                     self.p_rd.en.eq(rd.p_en), self.p_rd.addr.eq(rd.p_addr),
                     *(sel.p_data[lane].eq(self.p_rd.data[lane]) for lane in range(cfg.parallelism)),
                     self.done.eq(rd.empty & ~sel.busy)]
        if cfg.groups > 1:
            m.d.comb += sel.b_g.eq(rd.b_g)
        m.d.comb += [self.q_rd.en.eq(rd.q_rd.en), self.q_rd.addr.eq(rd.q_rd.addr),
                     rd.q_rd.data.eq(self.q_rd.data)]
        wiring.connect(m, sel.capture, wiring.flipped(self.capture))
        wiring.connect(m, sel.ahead, wiring.flipped(self.ahead))
        return m
