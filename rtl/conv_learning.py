"""The learning unit of the conv core: STDP competition, homeostasis and the integer STDP update.

``ConvCoreConfig(learning=True)`` elaborates this unit inside :class:`~spykehw.rtl.conv_core.ConvCore`
(the inference datapath is reused as is: integration, firing, pool features); with
``learning=False`` nothing here exists and the core is the inference core, unchanged.

What it computes: :mod:`spykehw.golden.conv_training` (``_train_kernel`` with the integer
:mod:`spykehw.golden.arithmetic`), bit for bit, for ``competition="greedy"`` (the
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
6. if the epoch-local step ``s`` satisfies ``s % snapshot_period == 0``, the weights are
   copied into the snapshot memory (:mod:`spykehw.rtl.conv_snapshot`, ``weight_words + 1``
   cycles): the golden snapshot, taken after the step's updates, possibly inside an image;
7. at the end of the step the learning-rate shift drops by one (never below
   ``stdp_shift_min``) when the global step ``g`` satisfies ``g % lr_period == 0`` and
   (``g > 0`` or ``step0_doubling``).

Host-visible state: **all learning state is internal and starts at reset**: the global step
counter (``g mod lr_period`` and whether ``g > 0``), the epoch-local step modulo
``snapshot_period``, the current STDP shift, the image counter modulo ``homeostasis_const``, the
per-map win counts (saturating at the suppression limit) and the LFSR (seeded with
``stdp.lfsr_seed``). One reset = one training run from image 0; weights are loaded over the
weight bus before the first image and read back after the last (or between images, while
``idle``). Epochs: the host pulses ``new_epoch`` while idle before every epoch's first image
but the first; the image counter and the epoch-local step restart (the golden model restarts
its homeostasis image index and its snapshot phase at each epoch), while the global step, the
shift, the win counts and the LFSR go on, as in the golden ``train_conv(epochs=E)``. The weight
bus reads the current weights (the golden ``final_weights`` at the end) at words
``0 .. weight_words-1`` and the last snapshot (the golden ``weights`` with
``last_snapshot_weights``, the default) at ``snapshot_base + word``.

Per-image state (cleared at the end of every image): the ``H x H`` blocked-position flags, the
``M`` won-map flags and the ``C x S x S`` *pre* flags (an input spiked at a step ``<= t`` of
this image: set when its token is accepted).

Winners stream ``o_winners`` (:func:`~spykehw.rtl.layouts.spike_layout`): each step's winners
``(m, u=r, v=c, t)`` in ascending map order (the golden order), as they are applied, then an
end-of-step marker (``step_end``, ``last`` on the image's last step), like ``o_spikes``.

Cycles of the LEARN phase of a step with ``n`` candidates, ``w`` winners and ``d`` suppressed
maps (no stalls): ``(w + 1) * (n + 3) + w`` for the competition (one pass per winner, plus the
last, empty-handed one), ``d * (CKK + 3) + w * (CKK + 4)`` for the weight updates
(``CKK = C*K*K`` read-modify-writes per map, pipelined), plus 3; 2 cycles when ``n = 0``; plus
``weight_words + 2`` in a snapshot step.
Conv1 on MNIST (L = 30): about 6,100 cycles per training image in all, against about 5,500
for inference.
"""

from __future__ import annotations

import math

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import FlagGrid
from .conv_competition import Competition
from .conv_config import ConvCoreConfig
from .conv_ports import capture_signature
from .conv_snapshot import Snapshot
from .conv_stdp import UpdateEngine, weight_read_signature, weight_write_signature
from .layouts import index_bits, spike_layout

__all__ = ["LearningUnit", "LearnControl", "Schedule", "suppression_count"]


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


class Schedule(wiring.Component):
    """Learning state across images: the per-map win counts (saturating at the suppression
    limit, cleared at every step of an image whose counter is a multiple of
    ``homeostasis_const``), the image counter, and the learning-rate shift (steps 1, 3 and 6).

    Members
    -------
    start : In(1)
        A step's learning starts (the counts are cleared in such an image).
    win, win_m : In
        Map ``win_m`` wins.
    step_done, last_step : In(1)
    new_epoch : In(1)
        While idle: the next image is an epoch's first (the image counter and the epoch-local
        step counter restart; the global step, the shift and the win counts go on).
    supp_now : Out(M)
        The maps over the limit (none at the start of a window).
    shift : Out(range(stdp_shift + 1), init=stdp_shift)
        The current STDP shift.
    snap_now : Out(1)
        The current step is a snapshot step (epoch-local step ``% snapshot_period == 0``).
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        smax = cfg.formats.stdp.stdp_shift
        super().__init__({
            "start": In(1), "win": In(1), "win_m": In(index_bits(cfg.maps)),
            "step_done": In(1), "last_step": In(1), "new_epoch": In(1),
            "supp_now": Out(cfg.maps), "shift": Out(range(smax + 1), init=smax), "snap_now": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        opts, st, M = self._cfg.options, self._cfg.formats.stdp, self._cfg.maps
        homeo, hconst = bool(opts.homeostasis), opts.homeostasis_const
        thr = suppression_count(opts.homeostasis_limit)
        smin, lr_period, shift = st.stdp_shift_min, opts.lr_period, self.shift
        counts = [Signal(range(thr + 1), name=f"wins{i}") for i in range(M)] if homeo else []
        img_mod = Signal(range(max(2, hconst)), name="img_mod")
        lr_cnt = Signal(range(max(2, lr_period)), name="lr_cnt")
        g_started = Signal(name="g_started")
        snap_period = opts.snapshot_period
        snap_cnt = Signal(range(max(2, snap_period)), name="snap_cnt")   # epoch-local step mod period
        m.d.comb += self.snap_now.eq(snap_cnt == 0)
        if homeo:
            m.d.comb += self.supp_now.eq(Mux(img_mod == 0, 0, Cat(*(cnt >= thr for cnt in counts))))
            with m.If(self.start & (img_mod == 0)):
                m.d.sync += [cnt.eq(0) for cnt in counts]
            with m.If(self.win):
                for i, cnt in enumerate(counts):
                    with m.If((self.win_m == i) & (cnt != thr)):
                        m.d.sync += cnt.eq(cnt + 1)
        with m.If(self.step_done):
            m.d.sync += [g_started.eq(1), lr_cnt.eq(Mux(lr_cnt == lr_period - 1, 0, lr_cnt + 1))]
            rise = (lr_cnt == 0) & (g_started | Const(int(opts.step0_doubling), 1))
            with m.If(rise & (shift > smin)):
                m.d.sync += shift.eq(shift - 1)
            m.d.sync += snap_cnt.eq(Mux(snap_cnt == snap_period - 1, 0, snap_cnt + 1))
            with m.If(self.last_step):
                m.d.sync += img_mod.eq(Mux(img_mod == hconst - 1, 0, img_mod + 1))
        with m.If(self.new_epoch):
            m.d.sync += [img_mod.eq(0), snap_cnt.eq(0)]
        return m


class LearnControl(wiring.Component):
    """The learning unit's FSM: IDLE until the core's LEARN phase (``req``), then passes of the
    competition (PASS, WIN) until none finds a winner, then the weight updates (SELECT: the
    suppressed maps ascending, then the winners ascending; WINNER emits a winner on
    ``o_winners``; RUN updates the map's patch), then DONE (one cycle). It holds the maps still
    to decay or update and the winners' positions (a table by map), and the ``o_winners``
    register (a winner, and at ``step_done`` the end-of-step marker).

    Members
    -------
    req, step_done, last_step : In(1); t : In(index_bits(T))
    supp_now : In(M)
        From :class:`Schedule`.
    empty, pass_done, have, best_m, best_u, best_v : In
        From :class:`~spykehw.rtl.conv_competition.Competition`.
    upd_m, upd_finished : In
        From :class:`~spykehw.rtl.conv_stdp.UpdateEngine`.
    snap_now : In(1); snap_finished : In(1)
        From :class:`Schedule` and :class:`~spykehw.rtl.conv_snapshot.Snapshot`.
    snap_run : Out(1)
        Command to the snapshot copy (SNAP, after the updates of a snapshot step).
    start, scan, win : Out(1)
        Commands to the competition (``start`` and ``win`` also to the schedule).
    select, load, load_m, load_decay, load_rc, r, c, run : Out
        Commands to the update engine.
    done : Out(1); win_free : Out(1)
        The step's learning is over (one cycle); the winners register can take a transfer.
    o_winners : Out(stream.Signature(spike_layout(M, H, T)))
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        M, H = cfg.maps, cfg.out_size
        mb, hb = index_bits(M), index_bits(H)
        super().__init__({
            "req": In(1), "step_done": In(1), "last_step": In(1), "t": In(index_bits(cfg.steps)),
            "supp_now": In(M),
            "empty": In(1), "pass_done": In(1), "have": In(1),
            "best_m": In(mb), "best_u": In(hb), "best_v": In(hb),
            "upd_m": In(mb), "upd_finished": In(1), "snap_now": In(1), "snap_finished": In(1),
            "snap_run": Out(1), "start": Out(1), "scan": Out(1), "win": Out(1),
            "select": Out(1), "load": Out(1), "load_m": Out(mb), "load_decay": Out(1),
            "load_rc": Out(1), "r": Out(hb), "c": Out(hb), "run": Out(1),
            "done": Out(1), "win_free": Out(1),
            "o_winners": Out(stream.Signature(spike_layout(M, H, cfg.steps))),
        })

    def elaborate(self, platform):
        m = Module()
        M, H = self._cfg.maps, self._cfg.out_size
        owin = self.o_winners
        supp = Signal(M, name="supp")          # suppressed maps still to decay
        step_won = Signal(M, name="step_won")  # this step's winners still to update
        m.submodules.win_tab = wtab = memory.Memory(
            shape=data.StructLayout({"u": unsigned(index_bits(H)), "v": unsigned(index_bits(H))}),
            depth=M, init=[])
        wt_wr = wtab.write_port()
        wt_rd = wtab.read_port()
        supp_lo = _lowest(m, supp, M, "supp_lo")
        won_lo = _lowest(m, step_won, M, "won_lo")
        m.d.comb += [self.win_free.eq(~owin.valid | owin.ready), self.r.eq(wt_rd.data.u),
                     self.c.eq(wt_rd.data.v)]
        with m.If(owin.valid & owin.ready):
            m.d.sync += owin.valid.eq(0)

        def after_updates():
            with m.If(self.snap_now):
                m.next = "SNAP"
            with m.Else():
                m.next = "DONE"

        with m.FSM(init="IDLE", name="learn_fsm"):
            with m.State("IDLE"):
                with m.If(self.req):
                    m.d.comb += self.start.eq(1)
                    m.d.sync += supp.eq(self.supp_now)
                    with m.If(self.empty):
                        after_updates()
                    with m.Else():
                        m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += self.scan.eq(1)
                with m.If(self.pass_done):
                    with m.If(self.have):
                        m.next = "WIN"
                    with m.Else():
                        m.next = "SELECT"
            with m.State("WIN"):
                m.d.comb += [self.win.eq(1), wt_wr.addr.eq(self.best_m), wt_wr.data.u.eq(self.best_u),
                             wt_wr.data.v.eq(self.best_v), wt_wr.en.eq(1)]
                m.d.sync += step_won.eq(step_won | Cat(*(self.best_m == i for i in range(M))))
                m.next = "PASS"
            with m.State("SELECT"):
                m.d.comb += self.select.eq(1)
                with m.If(supp.any()):
                    m.d.comb += [self.load.eq(1), self.load_m.eq(supp_lo), self.load_decay.eq(1)]
                    m.d.sync += supp.eq(supp & ~Cat(*(supp_lo == i for i in range(M))))
                    m.next = "RUN"
                with m.Elif(step_won.any()):
                    m.d.comb += [self.load.eq(1), self.load_m.eq(won_lo),
                                 wt_rd.addr.eq(won_lo), wt_rd.en.eq(1)]
                    m.d.sync += step_won.eq(step_won & ~Cat(*(won_lo == i for i in range(M))))
                    m.next = "WINNER"
                with m.Else():
                    after_updates()
            with m.State("WINNER"):
                # The winner table's read data is here: emit the winner, then update its patch.
                with m.If(self.win_free):
                    m.d.comb += self.load_rc.eq(1)
                    m.d.sync += [owin.valid.eq(1), owin.payload.m.eq(self.upd_m),
                                 owin.payload.u.eq(wt_rd.data.u), owin.payload.v.eq(wt_rd.data.v),
                                 owin.payload.t.eq(self.t), owin.payload.step_end.eq(0),
                                 owin.payload.last.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    m.d.comb += [wt_rd.addr.eq(self.upd_m), wt_rd.en.eq(1)]
            with m.State("RUN"):
                m.d.comb += self.run.eq(1)
                with m.If(self.upd_finished):
                    m.next = "SELECT"
            with m.State("SNAP"):
                m.d.comb += self.snap_run.eq(1)
                with m.If(self.snap_finished):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        with m.If(self.step_done):
            m.d.sync += [owin.valid.eq(1), owin.payload.m.eq(0), owin.payload.u.eq(0),
                         owin.payload.v.eq(0), owin.payload.t.eq(self.t),
                         owin.payload.step_end.eq(1), owin.payload.last.eq(self.last_step)]
        return m


class LearningUnit(wiring.Component):
    """The learning logic of one ConvCore (see the module docstring): the *pre* flags, the
    :class:`~spykehw.rtl.conv_competition.Competition`, the :class:`Schedule`, the
    :class:`~spykehw.rtl.conv_stdp.UpdateEngine` and the :class:`LearnControl` FSM.

    Members
    -------
    cap : In(capture_signature(cfg, value=True))
        A position fires, in the firing stage's capture cycle (``en``, ``m``, ``u``, ``v``,
        ``val``; the window fields are unused).
    pre : In(Signature(en, c, y, x))
        An input token is accepted.
    req, step_done, last_step : In(1); t : In(index_bits(T))
        The core waits in its LEARN state; it ends a step in this cycle; the step.
    w_data : In(B).array(L)
        The weight memories' read data.
    done : Out(1)
        One cycle: the step's learning is over.
    w_rd : Out(Signature(en, addr)); w_wr : Out(Signature(en, addr, data, lanes))
        Weight read; weight write of one lane.
    win_free : Out(1)
        The winners register can take the end-of-step marker.
    o_winners : Out(stream.Signature(spike_layout(M, H, T)))
    new_epoch : In(1)
        See :class:`Schedule`.
    snap_en, snap_addr : In; snap_data : Out(L*B)
        A host read of the snapshot copy (data one cycle later).
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        C, S = cfg.channels, cfg.in_size
        super().__init__({
            "cap": In(capture_signature(cfg, value=True)),
            "pre": In(wiring.Signature({"en": Out(1), "c": Out(index_bits(C)),
                                        "y": Out(index_bits(S)), "x": Out(index_bits(S))})),
            "req": In(1), "step_done": In(1), "last_step": In(1), "t": In(index_bits(cfg.steps)),
            "w_data": In(cfg.weight_bits).array(cfg.parallelism),
            "done": Out(1), "win_free": Out(1),
            "w_rd": Out(weight_read_signature(cfg)), "w_wr": Out(weight_write_signature(cfg)),
            "o_winners": Out(stream.Signature(spike_layout(cfg.maps, cfg.out_size, cfg.steps))),
            "new_epoch": In(1), "snap_en": In(1), "snap_addr": In(index_bits(cfg.weight_words)),
            "snap_data": Out(cfg.weight_bits * cfg.parallelism),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        C, S = cfg.channels, cfg.in_size
        m.submodules.competition = comp = Competition(cfg)
        m.submodules.schedule = sched = Schedule(cfg)
        m.submodules.update = upd = UpdateEngine(cfg)
        m.submodules.control = ctl = LearnControl(cfg)
        m.submodules.snapshot = snap = Snapshot(cfg)
        # the pre flags (inputs that spiked so far in this image), read by the update engine
        m.submodules.pre = pre = FlagGrid(rows=C * S, cols=S, row_reads=1)
        m.d.comb += [pre.set_en.eq(self.pre.en), pre.set_col.eq(self.pre.x),
                     pre.clear.eq(self.step_done & self.last_step),
                     upd.pre_word.eq(pre.row0)]
        if C * S > 1:
            # row c*S + y from a table indexed by Cat(y, c): no adder on the token's slices
            yb = len(self.pre.y)
            rows = Array(Const(min(c * S + y, C * S - 1), len(pre.set_row))
                         for c in range(1 << len(self.pre.c)) for y in range(1 << yb))
            m.d.comb += [pre.set_row.eq(rows[Cat(self.pre.y, self.pre.c)]),
                         pre.row0_idx.eq(upd.pre_row)]
        m.d.comb += [
            *(getattr(comp.cap, k).eq(getattr(self.cap, k)) for k in ("en", "m", "u", "v", "val")),
            comp.supp.eq(sched.supp_now), comp.start.eq(ctl.start), comp.scan.eq(ctl.scan),
            comp.win.eq(ctl.win), comp.step_done.eq(self.step_done), comp.last_step.eq(self.last_step),
            sched.start.eq(ctl.start), sched.win.eq(ctl.win), sched.win_m.eq(comp.best_m),
            sched.step_done.eq(self.step_done), sched.last_step.eq(self.last_step),
            *(getattr(upd, k).eq(getattr(ctl, k))
              for k in ("select", "load", "load_m", "load_decay", "load_rc", "r", "c", "run")),
            upd.shift.eq(sched.shift),
            *(upd.w_data[lane].eq(self.w_data[lane]) for lane in range(cfg.parallelism)),
            ctl.req.eq(self.req), ctl.step_done.eq(self.step_done), ctl.last_step.eq(self.last_step),
            ctl.t.eq(self.t), ctl.supp_now.eq(sched.supp_now),
            *(getattr(ctl, k).eq(getattr(comp, k))
              for k in ("empty", "pass_done", "have", "best_m", "best_u", "best_v")),
            ctl.upd_m.eq(upd.m), ctl.upd_finished.eq(upd.finished),
            self.done.eq(ctl.done), self.win_free.eq(ctl.win_free),
            sched.new_epoch.eq(self.new_epoch), ctl.snap_now.eq(sched.snap_now),
            snap.start.eq(ctl.start), snap.run.eq(ctl.snap_run), ctl.snap_finished.eq(snap.finished),
            *(snap.w_data[lane].eq(self.w_data[lane]) for lane in range(cfg.parallelism)),
            snap.host_en.eq(self.snap_en), snap.host_addr.eq(self.snap_addr),
            self.snap_data.eq(snap.host_data),
            # the update engine and the copy pass never read in the same step phase
            self.w_rd.en.eq(upd.rd.en | snap.rd.en),
            self.w_rd.addr.eq(Mux(snap.rd.en, snap.rd.addr, upd.rd.addr)),
        ]
        wiring.connect(m, upd.wr, wiring.flipped(self.w_wr))
        wiring.connect(m, ctl.o_winners, wiring.flipped(self.o_winners))
        return m
