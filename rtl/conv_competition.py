"""The STDP competition of the conv core's learning unit: the candidate list, the per-image
blocked positions and won maps, and the greedy pass (see :mod:`spykehw.rtl.conv_learning`, steps
2 and 4).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import select_bit
from .conv_config import ConvCoreConfig
from .conv_ports import capture_signature
from .layouts import index_bits

__all__ = ["Competition"]


class Competition(wiring.Component):
    """Candidates are appended while firing (``cap``) unless their position is inside an
    earlier winner's window or their map has won in this image; a pass (``scan``) reads the
    list once and keeps the live candidate with the largest potential, ties to the lowest
    row-major position; ``win`` applies the best one: its map is marked won and its clipped
    ``window x window`` square blocked, and the next pass may start.

    Members
    -------
    cap : In(capture_signature(cfg, value=True))
        A position fires (``en``, ``m``, ``u``, ``v``, ``val``; the window fields are unused).
    supp : In(M)
        Suppressed maps (their candidates do not compete).
    start, scan, win : In(1)
        Before the first pass; a pass is running; the best candidate wins.
    step_done, last_step : In(1)
        The step ends (the list is emptied); it is the image's last (blocked and won cleared).
    empty : Out(1)
        No candidate in this step.
    pass_done : Out(1)
        The pass has seen every candidate.
    have, best_m, best_u, best_v : Out
        The pass found a live candidate; the best one.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        H, M = cfg.out_size, cfg.maps
        super().__init__({
            "cap": In(capture_signature(cfg, value=True)), "supp": In(M),
            "start": In(1), "scan": In(1), "win": In(1), "step_done": In(1), "last_step": In(1),
            "empty": Out(1), "pass_done": Out(1),
            "have": Out(1), "best_m": Out(index_bits(M)),
            "best_u": Out(index_bits(H)), "best_v": Out(index_bits(H)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        M, H, V, NPOS = cfg.maps, cfg.out_size, cfg.potential_bits, cfg.out_size ** 2
        cap = self.cap
        blk = [Signal(H, name=f"blk_r{r}") for r in range(H)]     # inside a winner's window
        won = Signal(M, name="won")                               # map won in this image

        def blk_bit(u, v, name):
            row = Signal(H, name=f"{name}_row")
            m.d.comb += row.eq(Array(blk)[u])
            return select_bit(m, row, v, name)

        # ----- the candidate list (filled while firing) -----------------------------------------
        entry = data.StructLayout({"m": unsigned(index_bits(M)), "u": unsigned(index_bits(H)),
                                   "v": unsigned(index_bits(H)), "val": unsigned(V)})
        m.submodules.cand_mem = cmem = memory.Memory(shape=entry, depth=NPOS, init=[])
        c_wr = cmem.write_port()
        c_rd = cmem.read_port()
        n_cand = Signal(range(NPOS + 1), name="n_cand")
        cap_ok = Signal(name="cap_ok")
        m.d.comb += [
            cap_ok.eq(cap.en & ~blk_bit(cap.u, cap.v, "cap_blk")
                      & ~select_bit(m, won, cap.m, "cap_won")),
            c_wr.addr.eq(n_cand), c_wr.en.eq(cap_ok),
            c_wr.data.m.eq(cap.m), c_wr.data.u.eq(cap.u), c_wr.data.v.eq(cap.v),
            c_wr.data.val.eq(cap.val),
            self.empty.eq(n_cand == 0),
        ]
        with m.If(cap_ok):
            m.d.sync += n_cand.eq(n_cand + 1)

        # ----- competition pass -----------------------------------------------------------------
        # read (ri) -> the entry registered as it leaves the block RAM (e0) -> whether it is
        # alive, registered with it (e1, live1) -> compared with the best so far. The entry is
        # registered before the blocked/won look-up because the block RAM's clock-to-output and
        # the two 23:1 multiplexers of that look-up did not fit one cycle at 75 MHz. blk, won
        # and supp change only between passes, so the registered alive flag is the one the
        # comparison would compute.
        ri = Signal(range(NPOS + 1), name="pass_idx")
        s_valid = Signal(name="pass_valid")     # the read issued in the last cycle was an entry
        have, b_m, b_u, b_v = self.have, self.best_m, self.best_u, self.best_v
        b_val = Signal(V, name="best_val")
        e0 = Signal(entry, name="pass_e0")
        v0 = Signal(name="pass_v0")             # e0 holds an entry
        e1 = Signal(entry, name="pass_e1")
        live1 = Signal(name="pass_live1")       # a valid, alive entry is in e1
        better = Signal(name="cand_better")
        m.d.comb += [
            better.eq(~have | (e1.val > b_val)
                      | ((e1.val == b_val) & ((e1.u < b_u) | ((e1.u == b_u) & (e1.v < b_v))))),
            c_rd.addr.eq(ri),
            self.pass_done.eq((ri == n_cand) & ~s_valid & ~v0 & ~live1),
        ]
        with m.If(self.start):
            m.d.sync += [ri.eq(0), have.eq(0), s_valid.eq(0), v0.eq(0), live1.eq(0)]
        with m.If(self.scan):
            m.d.comb += c_rd.en.eq(ri < n_cand)
            m.d.sync += [
                s_valid.eq(ri < n_cand), e0.eq(c_rd.data), v0.eq(s_valid), e1.eq(e0),
                live1.eq(v0 & ~blk_bit(e0.u, e0.v, "pass_blk")
                         & ~select_bit(m, won | self.supp, e0.m, "pass_won")),
            ]
            with m.If(ri < n_cand):
                m.d.sync += ri.eq(ri + 1)
            with m.If(live1 & better):
                m.d.sync += [have.eq(1), b_m.eq(e1.m), b_u.eq(e1.u), b_v.eq(e1.v), b_val.eq(e1.val)]
        with m.If(self.win):
            m.d.sync += [won.eq(won | Cat(*(b_m == i for i in range(M)))), ri.eq(0), have.eq(0)]
        self._block_window(m, blk)

        # ----- end of step / image ------------------------------------------------------------
        with m.If(self.step_done):
            m.d.sync += n_cand.eq(0)
            with m.If(self.last_step):
                m.d.sync += [won.eq(0), *(row.eq(0) for row in blk)]
        return m

    def _block_window(self, m: Module, blk: list[Signal]) -> None:
        """On ``win``, block the window of the winner at ``(best_u, best_v)``: rows and columns within
        ``inhibition_offset`` (clipped by construction: only existing rows/columns have flags)."""
        H, off = self._cfg.out_size, self._cfg.options.inhibition_offset
        row_in = [Signal(name=f"win_row{k}") for k in range(H)]
        col_in = Signal(H, name="win_cols")

        def near(a, k):
            lo, hi = k - off, k + off       # (only the comparisons that are not constant)
            return (a >= lo if lo > 0 else Const(1)) & (a <= hi if hi < H - 1 else Const(1))

        for k in range(H):
            m.d.comb += [row_in[k].eq(near(self.best_u, k)), col_in[k].eq(near(self.best_v, k))]
        with m.If(self.win):
            for k in range(H):
                with m.If(row_in[k]):
                    m.d.sync += blk[k].eq(blk[k] | col_in)
