"""The learning unit of the conv core: STDP competition, homeostasis and the integer STDP update.

``ConvCoreConfig(learning=True)`` elaborates this unit inside :class:`~spykehw.rtl.conv_core.ConvCore`
(the inference datapath is reused as is: integration, firing, pool features); with
``learning=False`` nothing here exists and the core is the inference core, unchanged.

What it computes: the training part of :mod:`spykehw.golden.conv` (``_train_kernel`` with the
integer :mod:`spykehw.golden.arithmetic`), bit for bit, for ``competition="greedy"`` (the
authors' code; ``per_map`` is refused by :class:`ConvCoreConfig` with a ConvCoreError). After the
firing stage of every step ``t`` of an image:

1. if homeostasis is on and the image counter is a multiple of ``homeostasis_const``, the
   per-map win counts are cleared (at every step of such an image, as the reference does);
2. the *candidates* are this step's new spikes ``(m, u, v, V)`` (``V`` the winning map's
   potential) whose position is not inside an earlier winner's window and whose map has not
   won in this image; they were appended to a candidate list while firing. If there is none,
   nothing else happens in this step;
3. maps with more than ``homeostasis_limit`` wins in the window (integer test
   ``count >= floor(limit) + 1``) are suppressed: their candidates do not compete;
4. greedy competition: one pass over the list finds the live candidate with the largest ``V``,
   ties to the lowest row-major position (the list is in firing order, so the position is
   compared explicitly); it wins: its map and its clipped ``window x window`` square are blocked
   at once (which is exactly the reference's removal of that map's candidates and of the
   window's, and also its ``StdpAllowed`` update for the rest of the image); its win count
   rises; the pass repeats until no live candidate is left;
5. the weights of every suppressed map decay (maps ascending), then every winner of the step
   updates its ``C x K x K`` patch by STDP (maps ascending), weights in ``(c, kr, kc)`` order, one
   weight read-modify-write per cycle; with stochastic rounding the 32-bit LFSR steps once per
   weight, in that order (:mod:`spykehw.golden.fixed`);
6. at the end of the step the learning-rate shift drops by one (never below
   ``stdp_shift_min``) when the global step ``g`` satisfies ``g % lr_period == 0`` and
   (``g > 0`` or ``step0_doubling``).

Host-visible state: **all learning state is internal and starts at reset**: the global step
counter (``g mod lr_period`` and whether ``g > 0``), the current STDP shift, the image counter
modulo ``homeostasis_const``, the per-map win counts (saturating at the suppression limit) and
the LFSR (seeded with ``stdp.lfsr_seed``). One reset = one training run of one epoch from image
0; weights are loaded over the weight bus before the first image and read back after the last
(or between images, while ``idle``).

Not covered: several epochs (the golden model restarts the homeostasis image index at each
epoch while the global step goes on; the core's image counter keeps counting, which agrees only
when the epoch length is a multiple of ``homeostasis_const``), and the snapshots behind
``last_snapshot_weights`` (taken at global steps ``g % snapshot_period == 0``, which can fall
inside an image): the core holds the current weights, i.e. the golden ``final_weights`` and
``weights_per_image``.

Per-image state (cleared at the end of every image): the ``H x H`` blocked-position flags, the
``M`` won-map flags and the ``C x S x S`` *pre* flags (an input spiked at a step ``<= t`` of
this image: set when its token is accepted).

Winners stream ``o_winners`` (:func:`~spykehw.rtl.layouts.spike_layout`): each step's winners
``(m, u=r, v=c, t)`` in ascending map order (the golden order), as they are applied, then an
end-of-step marker (``step_end``, ``last`` on the image's last step), like ``o_spikes``.

Cycles of the LEARN phase of a step with ``n`` candidates, ``w`` winners and ``d`` suppressed
maps (no stalls): ``(w + 1) * (n + 2) + w`` for the competition (one pass per winner, plus the
last, empty-handed one), ``d * (CKK + 3) + w * (CKK + 4)`` for the weight updates
(``CKK = C*K*K`` read-modify-writes per map, pipelined), plus 3; 2 cycles when ``n = 0``.
Conv1 on MNIST (L = 30): about 6,100 cycles per training image in all, against about 5,500
for inference.
"""

from __future__ import annotations

import math

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory

from ..golden.fixed import LFSR_TAPS
from .conv_blocks import Block, FlagGrid, select_bit
from .layouts import index_bits

__all__ = ["LearningUnit", "suppression_count"]

_DECAY, _LTP, _LTD = 0, 1, 2


def suppression_count(limit: float) -> int:
    """Smallest integer win count that is ``> limit`` (the homeostasis test on integers)."""
    return math.floor(limit) + 1


def _lowest(m: Module, bits: Signal, width: int, name: str) -> Signal:
    """Index of the lowest set bit of ``bits`` (0 when none is set)."""
    out = Signal(index_bits(width), name=name)
    for i in reversed(range(width)):
        with m.If(bits[i]):
            m.d.comb += out.eq(i)
    return out


class LearningUnit(Block):
    """The learning logic of one ConvCore (built into the core's module; see the module
    docstring). The core connects the attributes below.

    From the core: ``cap_en``/``cap_m``/``cap_u``/``cap_v``/``cap_val`` (a position fires, in
    the firing stage's capture cycle), ``pre_en``/``pre_c``/``pre_y``/``pre_x`` (an input token
    is accepted), ``req`` (the core waits in its LEARN state), ``step_done`` (the core ends a
    step this cycle), ``t``, ``last_step``, ``w_lane`` (the weight memories' read data).
    To the core: ``done`` (one cycle: the step's learning is over), ``rd_en``/``rd_addr``
    (weight read), ``wr_en``/``wr_addr``/``wr_data``/``wr_lane`` (weight write of one lane),
    ``win_free`` (the winners register can take the end-of-step marker).
    """

    def __init__(self, cfg, o_winners) -> None:
        self.cfg = cfg
        C, S, M, H = cfg.channels, cfg.in_size, cfg.maps, cfg.out_size
        B, L = cfg.weight_bits, cfg.parallelism
        self.owin = o_winners
        self.w_lane = [Signal(B, name=f"lrn_w{lane}") for lane in range(L)]
        self.t = Signal(index_bits(cfg.steps), name="lrn_t")
        self.last_step = Signal(name="lrn_last_step")
        self.cap_en = Signal(name="lrn_cap_en")
        self.cap_m = Signal(index_bits(M), name="lrn_cap_m")
        self.cap_u = Signal(index_bits(H), name="lrn_cap_u")
        self.cap_v = Signal(index_bits(H), name="lrn_cap_v")
        self.cap_val = None     # the core sets its firing stage's maximum here (a value)
        self.pre_en = Signal(name="lrn_pre_en")
        self.pre_c = Signal(index_bits(C), name="lrn_pre_c")
        self.pre_y = Signal(index_bits(S), name="lrn_pre_y")
        self.pre_x = Signal(index_bits(S), name="lrn_pre_x")
        self.req = Signal(name="lrn_req")
        self.step_done = Signal(name="lrn_step_done")
        self.done = Signal(name="lrn_done")
        self.rd_en = Signal(name="lrn_rd_en")
        self.rd_addr = Signal(index_bits(cfg.weight_words), name="lrn_rd_addr")
        self.wr_en = Signal(name="lrn_wr_en")
        self.wr_addr = Signal(index_bits(cfg.weight_words), name="lrn_wr_addr")
        self.wr_data = Signal(B, name="lrn_wr_data")
        self.wr_lane = Signal(L, name="lrn_wr_lane")
        self.win_free = Signal(name="lrn_win_free")
        self.pre = FlagGrid(C * S, S, "pre")
        self._pre_read = self.pre.read_bit("pre_now")    # read ports before the grid is built

    def build(self, m: Module) -> None:  # noqa: C901 - one FSM, read top to bottom
        cfg = self.cfg
        opts, st = cfg.options, cfg.formats.stdp
        C, S, M, K, H = cfg.channels, cfg.in_size, cfg.maps, cfg.kernel, cfg.out_size
        V, B, L, G = cfg.potential_bits, cfg.weight_bits, cfg.parallelism, cfg.groups
        CKK, NPOS = cfg.kernel_weights, H * H
        off = opts.inhibition_offset
        owin = self.owin
        homeo = bool(opts.homeostasis)
        hconst = opts.homeostasis_const
        thr = suppression_count(opts.homeostasis_limit)
        smax, smin = st.stdp_shift, st.stdp_shift_min
        lr_period = opts.lr_period
        rounding = st.rounding

        def idx(n, name):
            return Signal(index_bits(n), name=name)

        # ----- the pre flags (inputs that spiked so far in this image) ----------------------
        pre = self.pre
        m.d.comb += [pre.set_en.eq(self.pre_en), pre.set_col.eq(self.pre_x)]
        if C * S > 1:
            # row c*S + y from a table indexed by Cat(y, c): no adder on the token's slices
            yb = len(self.pre_y)
            rows = Array(Const(min(c * S + y, C * S - 1), len(pre.set_row))
                         for c in range(1 << len(self.pre_c)) for y in range(1 << yb))
            m.d.comb += pre.set_row.eq(rows[Cat(self.pre_y, self.pre_c)])

        # ----- per-image learning masks ---------------------------------------------------
        blk = [Signal(H, name=f"blk_r{r}") for r in range(H)]     # inside a winner's window
        won = Signal(M, name="won")                               # map won in this image

        def blk_bit(u, v, name):
            row = Signal(H, name=f"{name}_row")
            m.d.comb += row.eq(Array(blk)[u])
            return select_bit(m, row, v, name)

        # ----- the candidate list (filled while firing) ---------------------------------------
        entry = data.StructLayout({"m": unsigned(index_bits(M)), "u": unsigned(index_bits(H)),
                                   "v": unsigned(index_bits(H)), "val": unsigned(V)})
        m.submodules.cand_mem = cmem = memory.Memory(shape=entry, depth=NPOS, init=[])
        c_wr = cmem.write_port()
        c_rd = cmem.read_port()
        n_cand = Signal(range(NPOS + 1), name="n_cand")
        cap_ok = Signal(name="cap_ok")
        m.d.comb += [
            cap_ok.eq(self.cap_en & ~blk_bit(self.cap_u, self.cap_v, "cap_blk")
                      & ~select_bit(m, won, self.cap_m, "cap_won")),
            c_wr.addr.eq(n_cand), c_wr.en.eq(cap_ok),
            c_wr.data.m.eq(self.cap_m), c_wr.data.u.eq(self.cap_u), c_wr.data.v.eq(self.cap_v),
            c_wr.data.val.eq(self.cap_val),
        ]
        with m.If(cap_ok):
            m.d.sync += n_cand.eq(n_cand + 1)

        # ----- learning state across images ----------------------------------------------------
        counts = [Signal(range(thr + 1), name=f"wins{i}") for i in range(M)] if homeo else []
        img_mod = Signal(range(max(2, hconst)), name="img_mod")
        lr_cnt = Signal(range(max(2, lr_period)), name="lr_cnt")
        g_started = Signal(name="g_started")
        shift = Signal(range(smax + 1), init=smax, name="stdp_shift")
        if rounding == "stochastic":
            lfsr = Signal(32, init=st.lfsr_seed, name="lfsr")
            lfsr_next = Signal(32, name="lfsr_next")
            m.d.comb += lfsr_next.eq((lfsr >> 1) ^ Mux(lfsr[0], LFSR_TAPS, 0))

        supp = Signal(M, name="supp")          # suppressed maps still to decay
        step_won = Signal(M, name="step_won")  # this step's winners still to update
        m.submodules.win_tab = wtab = memory.Memory(
            shape=data.StructLayout({"u": unsigned(index_bits(H)), "v": unsigned(index_bits(H))}),
            depth=M, init=[])
        wt_wr = wtab.write_port()
        wt_rd = wtab.read_port()

        # ----- competition pass -----------------------------------------------------------------
        ri = Signal(range(NPOS + 1), name="pass_idx")
        s_valid = Signal(name="pass_valid")
        have = Signal(name="have_best")
        b_m = idx(M, "best_m")
        b_u = idx(H, "best_u")
        b_v = idx(H, "best_v")
        b_val = Signal(V, name="best_val")
        e = c_rd.data
        alive = Signal(name="cand_alive")
        better = Signal(name="cand_better")
        m.d.comb += [
            alive.eq(~blk_bit(e.u, e.v, "pass_blk") & ~select_bit(m, won | supp, e.m, "pass_won")),
            better.eq(~have | (e.val > b_val)
                      | ((e.val == b_val) & ((e.u < b_u) | ((e.u == b_u) & (e.v < b_v))))),
            c_rd.addr.eq(ri),
        ]

        # The window of a winner at (b_u, b_v): rows and columns within ``off`` (clipped by
        # construction: only existing rows/columns have flags).
        row_in = [Signal(name=f"win_row{k}") for k in range(H)]
        col_in = Signal(H, name="win_cols")
        def near(a, k):
            lo, hi = k - off, k + off       # (only the comparisons that are not constant)
            return (a >= lo if lo > 0 else Const(1)) & (a <= hi if hi < H - 1 else Const(1))

        for k in range(H):
            m.d.comb += [row_in[k].eq(near(b_u, k)), col_in[k].eq(near(b_v, k))]

        # ----- weight update engine ---------------------------------------------------------------
        upd_m = idx(M, "upd_m")
        op = Signal(2, name="upd_op")           # _DECAY or STDP (LTP/LTD chosen per weight)
        upd_r = idx(H, "upd_r")
        upd_c = idx(H, "upd_c")
        k_iss = Signal(range(CKK + 1), name="upd_k")
        ch = idx(C, "upd_ch")
        kr = idx(K, "upd_kr")
        kc = idx(K, "upd_kc")
        addr = Signal(index_bits(cfg.weight_words) + 1, name="upd_addr")
        p_valid = Signal(name="upd_p_valid")
        p_addr = idx(cfg.weight_words, "upd_p_addr")
        p_pre = Signal(name="upd_p_pre")
        lane_of = Array(Const(i % L, index_bits(L)) for i in range(M))
        group_of = Array(Const(i // L, index_bits(G)) for i in range(M))
        lane = idx(L, "upd_lane")
        m.d.comb += lane.eq(lane_of[upd_m])

        # pre[ch, r + kr, c + kc] of the weight being issued
        pr_row, pr_col, pre_now = self._pre_read
        if C * S > 1:
            m.d.comb += pr_row.eq(ch * S + upd_r + kr)
        m.d.comb += pr_col.eq(upd_c + kc)

        # The new weight (compute stage, one cycle after the read).
        w = Signal(B, name="upd_w")
        m.d.comb += w.eq(Array(self.w_lane)[lane] if L > 1 else self.w_lane[0])
        p = Signal(2 * B + 1, name="upd_p")
        m.d.comb += p.eq(w * ((1 << B) - w))
        kind = Signal(2, name="upd_kind")
        m.d.comb += kind.eq(Mux(op == _DECAY, _DECAY, Mux(p_pre, _LTP, _LTD)))
        hmult = st.homeostasis_mult
        # (an expression, not a signal: the low bits of x are shifted out)
        x = Mux(kind == _DECAY, p * hmult, Mux(kind == _LTP, p, p * 3))
        # The shift n of each possible rounding, then one adder and one shift selected by n.
        ns = sorted({B + s for s in range(smin, smax + 1)} | {B + s + 2 for s in range(smin, smax + 1)}
                    | ({B + st.homeostasis_shift} if homeo else set()))
        nsel = Signal(range(len(ns)), name="upd_nsel")
        with m.Switch(kind):
            if homeo:
                with m.Case(_DECAY):
                    m.d.comb += nsel.eq(ns.index(B + st.homeostasis_shift))
            with m.Case(_LTP):
                with m.Switch(shift):
                    for s in range(smin, smax + 1):
                        with m.Case(s):
                            m.d.comb += nsel.eq(ns.index(B + s))
            with m.Default():
                with m.Switch(shift):
                    for s in range(smin, smax + 1):
                        with m.Case(s):
                            m.d.comb += nsel.eq(ns.index(B + s + 2))

        def addend(n):
            if rounding == "truncate":
                return Const(0, 1)
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
        with m.If(kind == _LTP):
            m.d.comb += new_w.eq(Mux(inc > wmax, wmax, inc))
        with m.Else():
            m.d.comb += new_w.eq(Mux(d > w, 0, w - d))

        m.d.comb += [
            self.wr_en.eq(p_valid), self.wr_addr.eq(p_addr), self.wr_data.eq(new_w),
            self.wr_lane.eq(Mux(p_valid, Cat(*(lane == i for i in range(L))), 0)),
        ]
        if rounding == "stochastic":
            with m.If(p_valid):
                m.d.sync += lfsr.eq(lfsr_next)

        # ----- winners output register ------------------------------------------------------------
        win_free = self.win_free
        m.d.comb += win_free.eq(~owin.valid | owin.ready)
        with m.If(owin.valid & owin.ready):
            m.d.sync += owin.valid.eq(0)

        # ----- control ---------------------------------------------------------------------------
        sup_now = Signal(M, name="supp_now")
        if homeo:
            m.d.comb += sup_now.eq(Mux(img_mod == 0, 0, Cat(*(cnt >= thr for cnt in counts))))
        supp_lo = _lowest(m, supp, M, "supp_lo")
        won_lo = _lowest(m, step_won, M, "won_lo")
        issue = Signal(name="upd_issue")
        with m.FSM(init="IDLE", name="learn_fsm"):
            with m.State("IDLE"):
                with m.If(self.req):
                    if homeo:
                        with m.If(img_mod == 0):
                            m.d.sync += [cnt.eq(0) for cnt in counts]
                    m.d.sync += [supp.eq(sup_now), ri.eq(0), have.eq(0), s_valid.eq(0)]
                    with m.If(n_cand == 0):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += c_rd.en.eq(ri < n_cand)
                m.d.sync += s_valid.eq(ri < n_cand)
                with m.If(ri < n_cand):
                    m.d.sync += ri.eq(ri + 1)
                with m.If(s_valid & alive & better):
                    m.d.sync += [have.eq(1), b_m.eq(e.m), b_u.eq(e.u), b_v.eq(e.v), b_val.eq(e.val)]
                with m.If((ri == n_cand) & ~s_valid):
                    with m.If(have):
                        m.next = "WIN"
                    with m.Else():
                        m.next = "SELECT"
            with m.State("WIN"):
                hot = Cat(*(b_m == i for i in range(M)))
                m.d.sync += [won.eq(won | hot), step_won.eq(step_won | hot),
                             ri.eq(0), have.eq(0)]
                for k in range(H):
                    with m.If(row_in[k]):
                        m.d.sync += blk[k].eq(blk[k] | col_in)
                if homeo:
                    for i, cnt in enumerate(counts):
                        with m.If((b_m == i) & (cnt != thr)):
                            m.d.sync += cnt.eq(cnt + 1)
                m.d.comb += [wt_wr.addr.eq(b_m), wt_wr.data.u.eq(b_u), wt_wr.data.v.eq(b_v),
                             wt_wr.en.eq(1)]
                m.next = "PASS"
            with m.State("SELECT"):
                m.d.sync += [k_iss.eq(0), ch.eq(0), kr.eq(0), kc.eq(0)]
                with m.If(supp.any()):
                    m.d.sync += [upd_m.eq(supp_lo), op.eq(_DECAY), addr.eq(group_of[supp_lo]),
                                 supp.eq(supp & ~Cat(*(supp_lo == i for i in range(M))))]
                    m.next = "RUN"
                with m.Elif(step_won.any()):
                    m.d.sync += [upd_m.eq(won_lo), op.eq(_LTP), addr.eq(group_of[won_lo]),
                                 step_won.eq(step_won & ~Cat(*(won_lo == i for i in range(M))))]
                    m.d.comb += [wt_rd.addr.eq(won_lo), wt_rd.en.eq(1)]
                    m.next = "WINNER"
                with m.Else():
                    m.next = "DONE"
            with m.State("WINNER"):
                # The winner table's read data is here: emit the winner, then update its patch.
                with m.If(win_free):
                    m.d.sync += [upd_r.eq(wt_rd.data.u), upd_c.eq(wt_rd.data.v),
                                 owin.valid.eq(1), owin.payload.m.eq(upd_m),
                                 owin.payload.u.eq(wt_rd.data.u), owin.payload.v.eq(wt_rd.data.v),
                                 owin.payload.t.eq(self.t), owin.payload.step_end.eq(0),
                                 owin.payload.last.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    m.d.comb += [wt_rd.addr.eq(upd_m), wt_rd.en.eq(1)]
            with m.State("RUN"):
                m.d.comb += issue.eq(k_iss < CKK)
                with m.If((k_iss == CKK) & ~p_valid):
                    m.next = "SELECT"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        # Issue stage of the update engine: read weight k of map upd_m.
        m.d.comb += [self.rd_en.eq(issue), self.rd_addr.eq(addr)]
        m.d.sync += p_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [k_iss.eq(k_iss + 1), addr.eq(addr + G), p_addr.eq(addr),
                         p_pre.eq(pre_now)]
            with m.If(kc == K - 1):
                m.d.sync += kc.eq(0)
                with m.If(kr == K - 1):
                    m.d.sync += [kr.eq(0), ch.eq(ch + 1)]
                with m.Else():
                    m.d.sync += kr.eq(kr + 1)
            with m.Else():
                m.d.sync += kc.eq(kc + 1)

        # ----- end of step / image ------------------------------------------------------------
        with m.If(self.step_done):
            m.d.sync += [n_cand.eq(0),
                         owin.valid.eq(1), owin.payload.m.eq(0), owin.payload.u.eq(0),
                         owin.payload.v.eq(0), owin.payload.t.eq(self.t),
                         owin.payload.step_end.eq(1), owin.payload.last.eq(self.last_step),
                         g_started.eq(1), lr_cnt.eq(Mux(lr_cnt == lr_period - 1, 0, lr_cnt + 1))]
            rise = (lr_cnt == 0) & (g_started | Const(int(opts.step0_doubling), 1))
            with m.If(rise & (shift > smin)):
                m.d.sync += shift.eq(shift - 1)
            with m.If(self.last_step):
                m.d.sync += [won.eq(0), img_mod.eq(Mux(img_mod == hconst - 1, 0, img_mod + 1))]
                m.d.sync += [row.eq(0) for row in blk]
                m.d.comb += pre.clear.eq(1)
        pre.build(m)
