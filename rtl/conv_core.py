"""The conv/inhibition core for inference: bit-exact with the golden ``run_conv`` (as a set per step).

What it computes (the module docstring of :mod:`spykehw.golden.conv`, inference part): per
image, per step ``t``, every input spike ``(c, y, x)`` of the step adds ``W[m, c, kr, kc]`` to
``V[m, u, v]`` for ``(u, v) = (y - kr, x - kc)`` inside the ``H x H`` output (potentials start at
0 for each image, never leak, never reset); at the end of the step every position that has not
fired yet and whose ``max_m V >= threshold`` fires once, in map ``argmax_m V`` (lowest map on
ties, over the potentials at the end of the step), and is blocked for the rest of the image.
Pool feature ``m*P*P + (u//2)*P + (v//2)`` is set by a spike ``(m, u, v)`` with ``u, v < 2P``.

Numbers: weights are unsigned ``B = weight_bits`` integers; potentials are unsigned and
``V = formats.potential_bits(C, K, max_spikes_per_input)`` bits wide, which holds the largest
potential an image can produce (every input of a receptive field spiking
``max_spikes_per_input`` times with weight ``2**B - 1``), so no adder can overflow; the
threshold is ``formats.threshold_int(options.threshold)``.

Streams
-------
``i_events`` (:func:`~spykehw.rtl.layouts.token_layout`)
    An image is its steps in order; a step is its input spikes **in any order** followed by one
    end-of-step marker; the image ends after ``T`` markers and the next image may follow at
    once. Coordinates must be in range (``c < C``, ``y, x < S``) and an input may spike at
    most ``max_spikes_per_input`` times per image (what sizes the potentials); otherwise the
    result is undefined.
``o_spikes`` (:func:`~spykehw.rtl.layouts.spike_layout`)
    The spikes of step ``t``, then the end-of-step marker of ``t`` (``last`` on the image's
    final marker). **Within a step the spikes come in the order the positions crossed the
    threshold during integration, not in the golden model's row-major order**: the set of
    spikes of every step equals the golden one, and that is the only freedom taken.
``o_features``
    Each pool feature index that becomes 1 during the image, once, when it is first set (so in
    first-set order), then an end-of-image marker (``last``). A consumer such as the
    classifier only needs the set of active features, which equals the golden ``features``.

Weight bus (``weights``, the host drives ``addr``, ``w_en``, ``w_data``, ``r_en``)
    Word ``addr = index*G + g`` holds the weights ``W[g*L + l, c, kr, kc]`` of lanes
    ``l = 0..L-1`` (lane ``l`` in bits ``l*B .. l*B+B-1`` of ``w_data``/``r_data``) for
    ``index = c*K*K + kr*K + kc``. ``w_en`` is a per-lane write enable: one lane writes a single
    weight, all lanes a whole word; writes are always accepted, in one cycle. A read is
    accepted in a cycle where ``r_en & r_ready`` (``r_ready`` is low only while the core itself
    reads weights); ``r_valid`` and ``r_data`` follow one cycle later. Load weights only while
    ``idle`` (between images): the core does not order bus writes against its own reads.
    :func:`spykehw.sim.conv.packing.weight_words` builds the words from ``(M, C, K, K)``.

Architecture (one potential read-modify-write per cycle)
--------------------------------------------------------
Maps are processed ``L`` at a time (``parallelism``): ``G = M / L`` groups, map ``m`` is lane
``m % L`` of group ``m // L``.

- **Weights**: one memory per lane, ``C*K*K*G`` words of ``B`` bits, common address: together
  the memory of ``C*K*K*G`` words of ``L*B`` bits the bus shows, with lane-granular writes.
- **Potentials**: one memory per lane, ``H*H*G`` words of ``V`` bits, word ``(u*H + v)*G + g``,
  common addresses, with synchronous read ports transparent to the write ports, so
  back-to-back read-modify-writes of one word are correct. (One memory per lane rather than one
  ``L*V``-bit word: the same bits, and no wide word to split and rebuild every cycle, which made
  the Icarus simulation three times slower.) It is never cleared: a per-position *touched*
  flag (``H*H`` flip-flops, cleared in one cycle at the end of an image) makes an untouched word
  read as 0.
- **Integration**: a token is accepted into a token register (which also registers the rows and
  columns of its window); an input spike taken from it becomes a ``K*K`` mask of its output
  positions that are inside the output and have not fired (from the *fired* flags, which only
  change between steps); each set bit costs ``G`` cycles, one per group, lowest bit first, and
  the next token is taken from the register in the cycle the last bit is picked (and the one
  after it accepted), so there are no bubbles between input spikes. Fired positions cost nothing: their potential is never observed again. A
  read-modify-write goes through four stages: P picks the bit and registers the addresses, I
  reads the potential and weight words and the touched flag, X adds and writes back (the
  memories' transparency covers a read in I of the word X writes) and registers the lanes'
  threshold tests (weights are non-negative, so a potential that crosses stays above), and W
  appends a crossed, not-yet-pending position to a *pending* list (memory of ``H*H`` entries,
  plus ``H*H`` pending flags, read in X with W's own append forwarded). A position is
  evaluated at the end of every step it crossed in, which is exactly when the golden model
  fires it: a position whose ``max_m V`` reached the threshold was touched in that step.
- **Firing** (after the end-of-step marker): each pending position's ``G`` words are read again,
  the lanes of a word reduced by a comparator tree (ties to the lower lane) and the words
  combined with a strict ``>`` (ties to the lower group): the lowest map among the maxima. The
  spike is emitted, the position marked fired, and its pool window's flag word (a memory of
  ``P*P`` words of ``M`` bits, with per-window touched flags) says whether the feature is new.
  The pipeline takes one pending position per ``G`` cycles and stalls as a whole while an output
  register is full. The words read are registered, then every level of the comparator tree
  has its own registers (``D = 1 + ceil(log2 L)`` stages), with several groups a combining
  stage follows, and the last stage emits; the feature index is ``m*P*P`` from a table plus
  the window. Then the end-of-step marker (and at the last step the end-of-image marker) is
  emitted and the image state is cleared.

Cycles, partners never stalling: an input spike with ``n`` free output positions costs
``n*G`` cycles (one if ``n = 0``; the first of a step one more); the end of a step costs 5
cycles (every step's first token spends a cycle in the token register), plus 2 when its
marker is taken in the cycle of the step's last pick (the pick still goes through I and X
before firing starts; 1 when it was picked one cycle earlier), plus ``n*G + 2 + ceil(log2 L)``
when ``n`` positions fire (``n*G + 3 + ceil(log2 L)`` with several groups). Conv1 on MNIST at
``L = 30``: about 5,500 cycles per image (``sim/conv/bench.py``).

Learning mode (``ConvCoreConfig(learning=True)``): the same datapath plus the STDP learning unit
of :mod:`spykehw.rtl.conv_learning` (candidates collected while firing, greedy competition,
homeostasis, integer STDP written back into the weight memories between steps, learning-rate
schedule) and an ``o_winners`` stream; a step then ends with a LEARN phase before its markers.
Conv1 STDP on MNIST at ``L = 30``: about 6,100 cycles per training image. With
``learning=False`` (the default) none of it is elaborated and the Verilog is unchanged.

The building blocks (flag grids, window mask, lane adders, comparator tree) are inlined into one
module, so the Verilog is one module (``hierarchy=True`` keeps them as submodules, which the
Amaranth simulator runs several times faster). Only ``formats``/``options`` come from
``golden``: the hardware is checked against the model, never built from it.
"""

from __future__ import annotations

from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import (
    Block,
    BlockModule,
    FlagGrid,
    LaneArgmax,
    LaneUpdate,
    WindowMask,
    decode,
    drive,
    select_bit,
    table,
)
from .conv_config import ConvCoreConfig, WeightBusSignature
from .conv_learning import LearningUnit
from .layouts import feature_layout, index_bits, spike_layout, token_layout

__all__ = [
    "ConvCore",
]


class ConvCore(wiring.Component):
    """Inference conv layer with lateral inhibition and pooling (see the module docstring).

    Parameters
    ----------
    config : ConvCoreConfig
        Or build one from keyword arguments: ``ConvCore(options=..., formats=..., steps=12,
        parallelism=L, max_spikes_per_input=1)``.
    hierarchy : bool
        Keep the building blocks as submodules (the Amaranth simulator re-evaluates only the
        blocks whose inputs changed: several times faster). Default: one flat module, which is
        what the Verilog is generated from (lint-clean, one module per file).

    Members
    -------
    i_events : In(stream.Signature(token_layout(C, S)))
        Input spikes and end-of-step markers.
    o_spikes : Out(stream.Signature(spike_layout(M, H, T)))
        Output spikes and end-of-step markers.
    o_features : Out(stream.Signature(feature_layout(M*P*P)))
        New pool features and end-of-image markers.
    weights : In(WeightBusSignature(C*K*K*G, L, B))
        Weight load and read-back.
    idle : Out(1)
        No image in progress and every output drained: weights may be (re)loaded or read.
    o_winners : Out(stream.Signature(spike_layout(M, H, T)))
        Only with ``learning``: each step's STDP winners ``(m, u=r, v=c, t)`` in ascending map
        order, then an end-of-step marker (see :mod:`spykehw.rtl.conv_learning`).
    """

    def __init__(self, config: ConvCoreConfig | None = None, *, hierarchy: bool = False,
                 **kwargs: Any) -> None:
        self._hierarchy = bool(hierarchy)
        if config is None:
            config = ConvCoreConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a ConvCoreConfig or keyword arguments, not both")
        if not isinstance(config, ConvCoreConfig):
            raise TypeError(f"config must be a ConvCoreConfig, not {config!r}")
        self._cfg = config
        cfg = config
        members = {
            "i_events": In(stream.Signature(token_layout(cfg.channels, cfg.in_size))),
            "o_spikes": Out(stream.Signature(spike_layout(cfg.maps, cfg.out_size, cfg.steps))),
            "o_features": Out(stream.Signature(feature_layout(cfg.features))),
            "weights": In(WeightBusSignature(cfg.weight_words, cfg.parallelism, cfg.weight_bits)),
            "idle": Out(1),
        }
        if cfg.learning:
            members["o_winners"] = Out(stream.Signature(spike_layout(cfg.maps, cfg.out_size, cfg.steps)))
        super().__init__(members)

    @property
    def config(self) -> ConvCoreConfig:
        return self._cfg

    def params(self) -> dict[str, Any]:
        return self._cfg.to_dict()

    # --- hardware ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        C, S, M, K = cfg.channels, cfg.in_size, cfg.maps, cfg.kernel
        H, P, T = cfg.out_size, cfg.pool_size, cfg.steps
        L, G, B, V = cfg.parallelism, cfg.groups, cfg.weight_bits, cfg.potential_bits
        KK, NPOS, NWIN = K * K, H * H, P * P
        ie, osp, oft, bus = self.i_events, self.o_spikes, self.o_features, self.weights

        def idx(n: int, name: str) -> Signal:
            # An index 0..n-1; one bit even when n == 1, so no zero-width wire reaches Verilog.
            return Signal(index_bits(n), name=name)

        learn = None
        if cfg.learning:

            learn = LearningUnit(cfg, self.o_winners)

        # ----- weights: one memory per lane (a lane's read data is then a whole net) -------
        w_rd_addr = idx(cfg.weight_words, "w_rd_addr")
        w_rd_en = Signal()
        host_read = Signal()        # the read ports hold a word the host asked for
        w_lane = []
        for lane in range(L):
            mem = memory.Memory(shape=unsigned(B), depth=cfg.weight_words, init=[])
            m.submodules[f"weight_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            if learn is None:
                m.d.comb += [wp.addr.eq(bus.addr), wp.data.eq(bus.w_data.word_select(lane, B)),
                             wp.en.eq(bus.w_en[lane])]
            else:   # the learning unit writes while it updates (the host only while idle)
                m.d.comb += [
                    wp.addr.eq(Mux(learn.wr_en, learn.wr_addr, bus.addr)),
                    wp.data.eq(Mux(learn.wr_en, learn.wr_data, bus.w_data.word_select(lane, B))),
                    wp.en.eq(Mux(learn.wr_en, learn.wr_lane[lane], bus.w_en[lane])),
                    learn.w_lane[lane].eq(rp.data),
                ]
            m.d.comb += [
                rp.addr.eq(w_rd_addr), rp.en.eq(w_rd_en),
                # Operand isolation: the wide read-back bus only moves for host reads.
                bus.r_data.word_select(lane, B).eq(Mux(host_read, rp.data, 0)),
            ]
            w_lane.append(rp.data)

        # ----- potentials: H*H*G words per lane, read transparent to the write ------------
        # One memory per lane (as for the weights): the same bits as one L*V-bit memory, with
        # a common address, but no wide word to split and rebuild every cycle.
        p_raddr = idx(NPOS * G, "p_raddr")
        p_ren = Signal()
        p_waddr = idx(NPOS * G, "p_waddr")
        p_wen = Signal()
        pot = []
        for lane in range(L):
            mem = memory.Memory(shape=unsigned(V), depth=NPOS * G, init=[])
            m.submodules[f"pot_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [rp.addr.eq(p_raddr), rp.en.eq(p_ren), wp.addr.eq(p_waddr), wp.en.eq(p_wen)]
            pot.append((rp.data, wp.data))

        # ----- the pending list: positions that crossed the threshold in this step ----------
        entry = cfg.pending_layout()
        m.submodules.pending_mem = qmem = memory.Memory(shape=entry, depth=NPOS, init=[])
        q_wr = qmem.write_port()
        q_rd = qmem.read_port()

        # ----- per-position flags ------------------------------------------------------------
        fired = FlagGrid(H, H, "fired")          # fired in this image
        touched = FlagGrid(H, H, "touched")      # potential words written in this image
        pending = FlagGrid(H, H, "pending")      # on the pending list of this step
        blocks: dict[str, Block] = {}      # added at the end, once every read port exists
        blocks["window_mask"] = window = WindowMask(cfg, fired)
        blocks.update(fired=fired, touched=touched, pending=pending)
        n_pend = Signal(range(NPOS + 1))
        t = idx(T, "t") if T > 1 else Const(0, 1)
        started = Signal()          # a token of the current image was accepted

        # ----- integration: pick stage (P) -------------------------------------------------
        # P takes the lowest set bit of the current input spike's mask (one output position,
        # group g) and registers its addresses into stage I, which reads the potential and
        # weight memories and the position's touched flag; stage X adds and writes back; stage
        # W appends a position that crossed to the pending list. Only registers feed the
        # memories' addresses, and the lanes' threshold tests are registered before W
        # combines them.
        cur_mask = Signal(KK)       # output positions of the current input spike still to do
        cur_y = idx(S, "cur_y")
        cur_x = idx(S, "cur_x")
        cur_pbase = idx(S * S * G, "cur_pbase")             # (y*H + x)*G (>= every offset used)
        cur_wbase = idx(cfg.weight_words, "cur_wbase")      # c*K*K*G
        g = idx(G, "g") if G > 1 else Const(0, 1)
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
        single = Signal()           # at most one bit left in the mask
        finishing = Signal()        # the current input spike is done after this cycle
        in_integrate = Signal()
        m.d.comb += [
            issue.eq(cur_mask.any()),
            single.eq((cur_mask ^ low) == 0),
            finishing.eq(~cur_mask.any() | (single & g_last)),
        ]
        with m.If(issue):
            with m.If(g_last):
                m.d.sync += cur_mask.eq(cur_mask ^ low)
                if G > 1:
                    m.d.sync += g.eq(0)
            if G > 1:
                with m.Else():
                    m.d.sync += g.eq(g + 1)

        # Stage I: registered addresses.
        i_valid = Signal()
        i_first = Signal()          # group 0 of a position
        i_pg = idx(NPOS * G, "i_pg")
        i_paddr = idx(NPOS * G, "i_paddr")
        i_waddr = idx(cfg.weight_words, "i_waddr")
        i_u = idx(H, "i_u")
        i_v = idx(H, "i_v")
        # Full-width arithmetic on whole nets; truncated only into registers.
        pg_now = Signal(len(cur_pbase), name="pg_now")
        m.d.comb += pg_now.eq(cur_pbase - off_p)        # >= 0 by the mask
        m.d.sync += i_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [i_first.eq(g == 0), i_pg.eq(pg_now), i_paddr.eq(pg_now + g),
                         i_waddr.eq(cur_wbase + off_b + g), i_u.eq(cur_y - kr), i_v.eq(cur_x - kc)]
        if learn is None:
            m.d.comb += [
                w_rd_addr.eq(Mux(i_valid, i_waddr, bus.addr)),
                w_rd_en.eq(i_valid | bus.r_en),
                bus.r_ready.eq(~i_valid),
            ]
            m.d.sync += bus.r_valid.eq(bus.r_en & ~i_valid)
        else:
            busy_rd = Signal()      # the core reads the weights itself (integration or learning)
            m.d.comb += [
                busy_rd.eq(i_valid | learn.rd_en),
                w_rd_addr.eq(Mux(i_valid, i_waddr, Mux(learn.rd_en, learn.rd_addr, bus.addr))),
                w_rd_en.eq(busy_rd | bus.r_en),
                bus.r_ready.eq(~busy_rd),
            ]
            m.d.sync += bus.r_valid.eq(bus.r_en & ~busy_rd)
        m.d.comb += host_read.eq(bus.r_valid)

        tok = ie.payload
        # (y*H + x)*G and c*K*K*G of the token: tables of the coordinates' multiples (an
        # operand that is a slice of the payload would be zero-extended implicitly)
        tok_pbase = Signal(len(cur_pbase), name="tok_pbase")
        tok_ybase = Signal(len(cur_pbase), name="tok_ybase")
        tok_xbase = Signal(len(cur_pbase), name="tok_xbase")
        m.d.comb += [tok_ybase.eq(table([y * H * G for y in range(S)], tok.y, len(tok_ybase))),
                     tok_xbase.eq(table([x * G for x in range(S)], tok.x, len(tok_xbase))),
                     tok_pbase.eq(tok_ybase + tok_xbase)]
        tok_wbase = Signal(len(cur_wbase), name="tok_wbase")
        if C > 1:
            m.d.comb += tok_wbase.eq(table([c * KK * G for c in range(C)], tok.c, len(tok_wbase)))

        # The token register T: a token is accepted into T (in INTEGRATE only, and not while
        # T's end-of-step marker leaves it) and taken from T when P is done with the previous
        # input spike. The mask of an input spike is read from T's window registers and the
        # fired flags (which only change between steps).
        accept = Signal()
        t_valid = Signal()
        t_end = Signal()
        t_take = Signal()
        t_y = idx(S, "t_y")
        t_x = idx(S, "t_x")
        t_pbase = idx(S * S * G, "t_pbase")
        t_wbase = idx(cfg.weight_words, "t_wbase")
        m.d.comb += [
            t_take.eq(in_integrate & t_valid & finishing),
            ie.ready.eq(in_integrate & (~t_valid | (t_take & ~t_end))),
            accept.eq(ie.valid & ie.ready),
            window.y.eq(tok.y), window.x.eq(tok.x), window.load.eq(accept),
        ]
        with m.If(accept):
            m.d.sync += [t_valid.eq(1), t_end.eq(tok.step_end), t_y.eq(tok.y), t_x.eq(tok.x),
                         t_pbase.eq(tok_pbase), t_wbase.eq(tok_wbase)]
        with m.Elif(t_take):
            m.d.sync += t_valid.eq(0)
        if learn is not None:
            m.d.comb += [learn.pre_en.eq(in_integrate & ie.valid & ie.ready & ~tok.step_end),
                         learn.pre_c.eq(tok.c), learn.pre_y.eq(tok.y), learn.pre_x.eq(tok.x),
                         learn.t.eq(t)]
        # ----- integration: stage X (read data arrives; write back) ------------------------
        s1_valid = Signal()
        s1_first = Signal()
        s1_pg = idx(NPOS * G, "s1_pg")
        s1_paddr = idx(NPOS * G, "s1_paddr")
        s1_u = idx(H, "s1_u")
        s1_v = idx(H, "s1_v")
        m.d.sync += [s1_valid.eq(i_valid), s1_first.eq(i_first), s1_pg.eq(i_pg),
                     s1_paddr.eq(i_paddr), s1_u.eq(i_u), s1_v.eq(i_v)]
        # The touched flag, read in I; the item in X sets it in the same cycle (forwarded).
        t_row, t_col, touched_now = touched.read_bit("touched_now")
        m.d.comb += [*drive(t_row, i_u), t_col.eq(i_v)]
        x_touched = Signal()        # the flag as the item in X sees it (group 0)
        seq_touched = Signal()      # the position's touched flag, as its group 0 saw it
        m.d.comb += [touched.set_en.eq(s1_valid & s1_first), *drive(touched.set_row, s1_u),
                     touched.set_col.eq(s1_v)]
        m.d.sync += x_touched.eq(touched_now | (s1_valid & s1_first & (s1_u == i_u) & (s1_v == i_v)))
        with m.If(s1_valid & s1_first):
            m.d.sync += seq_touched.eq(x_touched)

        blocks["lanes"] = lanes = LaneUpdate(L, V, B, cfg.threshold)
        m.d.comb += [
            lanes.touched.eq(Mux(s1_first, x_touched, seq_touched)),
            *(lanes.old[lane].eq(pot[lane][0]) for lane in range(L)),
            *(lanes.w[lane].eq(w_lane[lane]) for lane in range(L)),
            *(pot[lane][1].eq(lanes.new[lane]) for lane in range(L)),
        ]

        # ----- integration: stage W (append to the pending list) ---------------------------
        w_valid = Signal()
        w_crossed = Signal(L)
        w_pg = idx(NPOS * G, "w_pg")
        w_u = idx(H, "w_u")
        w_v = idx(H, "w_v")
        w_pending = Signal()        # already on the list (read in X, W's append forwarded)
        push = Signal()
        q_row, q_col, pending_now = pending.read_bit("pending_now")
        m.d.comb += [*drive(q_row, s1_u), q_col.eq(s1_v)]
        m.d.sync += [w_valid.eq(s1_valid), w_crossed.eq(lanes.crossed), w_pg.eq(s1_pg),
                     w_u.eq(s1_u), w_v.eq(s1_v),
                     w_pending.eq(pending_now | (push & (w_u == s1_u) & (w_v == s1_v)))]
        m.d.comb += push.eq(w_valid & w_crossed.any() & ~w_pending)
        # The entry's pool window, from tables (no halving arithmetic on the fly).
        w_wrow = idx(NWIN, "w_wrow")
        w_wcol = idx(P, "w_wcol")
        if NWIN:
            m.d.comb += [
                w_wrow.eq(table([(u // 2) * P if u < 2 * P else 0 for u in range(H)], w_u, len(w_wrow))),
                w_wcol.eq(table([v // 2 if v < 2 * P else 0 for v in range(H)], w_v, len(w_wcol))),
            ]
        m.d.comb += [
            q_wr.addr.eq(n_pend),
            q_wr.data.pg.eq(w_pg),
            q_wr.data.u.eq(w_u), q_wr.data.v.eq(w_v),
            q_wr.data.win.eq(w_wrow + w_wcol),
            q_wr.data.win_ok.eq((w_u < 2 * P) & (w_v < 2 * P)),
            q_wr.en.eq(push),
            pending.set_en.eq(push), *drive(pending.set_row, w_u), pending.set_col.eq(w_v),
        ]
        with m.If(push):
            m.d.sync += n_pend.eq(n_pend + 1)

        # ----- firing pipeline ---------------------------------------------------------------
        stall = Signal()            # an output register is full and not being taken
        m.d.comb += stall.eq((osp.valid & ~osp.ready) | (oft.valid & ~oft.ready))
        in_fire = Signal()
        f_idx = Signal(range(NPOS + 1))
        # Stage A reads entry f_idx of the pending list; stage B holds it on q_rd.data and
        # reads its G potential words; stage C has them on the read ports (see below).
        b_valid = Signal()
        b_g = idx(G, "b_g") if G > 1 else Const(0, 1)
        b_last = Signal()
        m.d.comb += b_last.eq(b_g == G - 1)
        a_go = Signal()
        m.d.comb += [
            a_go.eq(in_fire & (f_idx < n_pend) & ~stall & (~b_valid | b_last)),
            q_rd.addr.eq(f_idx), q_rd.en.eq(a_go),
        ]
        with m.If(a_go):
            m.d.sync += f_idx.eq(f_idx + 1)
        b_adv = Signal()
        m.d.comb += b_adv.eq(b_valid & ~stall)
        with m.If(~stall):
            m.d.sync += b_valid.eq(a_go | (b_valid & ~b_last))
        f_paddr = idx(NPOS * G, "f_paddr")
        if G > 1:
            b_next = idx(NPOS * G, "b_next")     # the word of the next group
            m.d.comb += f_paddr.eq(Mux(b_g == 0, q_rd.data.pg, b_next))
            with m.If(b_adv):
                m.d.sync += [b_g.eq(Mux(b_last, 0, b_g + 1)), b_next.eq(f_paddr + 1)]
        else:
            m.d.comb += f_paddr.eq(q_rd.data.pg)

        # Stage C: the potential words are on the read ports. An item then goes through the
        # argmax registers (stage s_k = register k of the tree), with several groups through a
        # combining stage, and is captured in stage Z. Every stage moves while not stalled.
        def stage(name: str, groups: bool = True) -> dict[str, Any]:
            return {"valid": Signal(name=f"{name}_valid"), "last": Signal(name=f"{name}_last"),
                    "g": idx(G, f"{name}_g") if G > 1 and groups else Const(0, 1),
                    "u": idx(H, f"{name}_u"), "v": idx(H, f"{name}_v"),
                    "win": idx(NWIN, f"{name}_win"), "win_ok": Signal(name=f"{name}_win_ok")}

        def advance(dst: dict[str, Any], src: dict[str, Any]) -> list:
            return [dst[k].eq(src[k]) for k in dst if not isinstance(dst[k], Const)]

        c = stage("c")
        with m.If(~stall):
            m.d.sync += advance(c, {"valid": b_valid, "last": b_last, "g": b_g,
                                    "u": q_rd.data.u, "v": q_rd.data.v,
                                    "win": q_rd.data.win, "win_ok": q_rd.data.win_ok})
        blocks["lane_max"] = lane_max = LaneArgmax(L, V, need_value=G > 1 or learn is not None)
        m.d.comb += [lane_max.values[lane].eq(pot[lane][0]) for lane in range(L)]
        chain = [c] + [stage(f"s{k}") for k in range(lane_max.latency)]
        for k in range(1, len(chain)):
            with m.If(~stall):
                m.d.sync += advance(chain[k], chain[k - 1])
        # Operand isolation: the tree's registers load only real items.
        m.d.comb += [lane_max.en[k].eq(chain[k]["valid"] & ~stall) for k in range(lane_max.latency)]
        top = chain[-1]             # the tree's result is on lane_max.index / lane_max.value
        cand_m = idx(M, "cand_m")
        cand_val = Signal(V, name="cand_val") if lane_max.value is not None else None
        if G > 1:
            run_val = Signal(V)         # best of the groups so far
            run_m = idx(M, "run_m")
            take = Signal()
            y_m = idx(M, "y_m")
            y_val = Signal(V, name="y_val")
            gbase = idx(M, "gbase")
            m.d.comb += [
                gbase.eq(table([gi * L for gi in range(G)], top["g"], len(gbase))),
                take.eq((top["g"] == 0) | (lane_max.value > run_val)),  # strict: lower group keeps ties
                y_val.eq(Mux(take, lane_max.value, run_val)),
                y_m.eq(Mux(take, gbase + lane_max.index, run_m)),
            ]
            with m.If(top["valid"] & ~stall):
                m.d.sync += [run_val.eq(y_val), run_m.eq(y_m)]
            z = stage("z", groups=False)
            with m.If(~stall):
                m.d.sync += [*advance(z, top), z["valid"].eq(top["valid"] & top["last"]),
                             cand_m.eq(y_m), cand_val.eq(y_val)]
            pre_z, pre_z2 = top, chain[-2]
        else:
            z = top
            m.d.comb += cand_m.eq(lane_max.index)
            if cand_val is not None:
                m.d.comb += cand_val.eq(lane_max.value)
            pre_z = chain[-2]
            pre_z2 = chain[-3] if len(chain) > 2 else {"valid": b_valid, "last": b_last,
                                                       "win": q_rd.data.win}
        c_u, c_v, c_win, c_win_ok = z["u"], z["v"], z["win"], z["win_ok"]
        pipe_busy = Signal()
        m.d.comb += pipe_busy.eq(Cat(*(st["valid"] for st in chain), z["valid"]).any())
        capture = Signal()
        m.d.comb += capture.eq(z["valid"] & z["last"] & ~stall)
        m.d.comb += [fired.set_en.eq(capture), *drive(fired.set_row, c_u), fired.set_col.eq(c_v)]
        if learn is not None:       # every new spike is offered to the learning unit
            m.d.comb += [learn.cap_en.eq(capture), learn.cap_m.eq(cand_m), learn.cap_u.eq(c_u),
                         learn.cap_v.eq(c_v)]
            learn.cap_val = cand_val

        new_feature = Signal()
        feature_index = idx(cfg.features, "feature_index")
        if NWIN:
            m.submodules.feature_flags = fmem = memory.Memory(shape=M, depth=NWIN, init=[])
            f_wr = fmem.write_port()
            # The window's flag word is read as the item enters the stage before Z
            # (transparent: it sees a capture in that cycle) and registered as it enters Z (with
            # the capture of that cycle forwarded), so Z starts from a register.
            f_rd = fmem.read_port(transparent_for=(f_wr,))
            wtouched = FlagGrid(1, NWIN, "wtouched")   # feature flag words written this image
            blocks["wtouched"] = wtouched
            w_row, w_col, wtouched_now = wtouched.read_bit("wtouched_now")
            flags = Signal(M)       # the window's flag word as the item in Z sees it
            z_load = Signal()
            m.d.comb += z_load.eq(pre_z["valid"] & pre_z["last"] & ~stall)
            with m.If(z_load):
                with m.If(f_wr.en & (c_win == pre_z["win"])):
                    m.d.sync += flags.eq(f_wr.data)
                with m.Else():
                    m.d.sync += flags.eq(Mux(wtouched_now, f_rd.data, 0))
            # The first feature index of each map (a table, no multiplier).
            map_base = idx(cfg.features, "map_base")
            m.d.comb += map_base.eq(table([mm * NWIN for mm in range(M)], cand_m, len(map_base)))
            m.d.comb += [
                w_col.eq(pre_z["win"]),
                f_rd.addr.eq(pre_z2["win"]),
                f_rd.en.eq(pre_z2["valid"] & pre_z2["last"] & ~stall),
                new_feature.eq(c_win_ok & ~select_bit(m, flags, cand_m, "feature_seen")),
                feature_index.eq(map_base + c_win),
                f_wr.addr.eq(c_win),
                f_wr.data.eq(flags | decode(m, cand_m, M, "feature_bit")),
                f_wr.en.eq(capture & new_feature),
                wtouched.set_en.eq(capture & new_feature), wtouched.set_col.eq(c_win),
            ]

        # The potentials' read port: integration or firing.
        m.d.comb += [
            p_raddr.eq(Mux(in_fire, f_paddr, i_paddr)),
            p_ren.eq(Mux(in_fire, b_adv, i_valid)),
            p_waddr.eq(s1_paddr),
            p_wen.eq(s1_valid),
        ]

        # ----- output registers ----------------------------------------------------------------
        with m.If(osp.valid & osp.ready):
            m.d.sync += osp.valid.eq(0)
        with m.If(oft.valid & oft.ready):
            m.d.sync += oft.valid.eq(0)
        with m.If(capture):
            m.d.sync += [
                osp.valid.eq(1),
                osp.payload.m.eq(cand_m), osp.payload.u.eq(c_u), osp.payload.v.eq(c_v),
                osp.payload.t.eq(t), osp.payload.step_end.eq(0), osp.payload.last.eq(0),
            ]
            with m.If(new_feature):
                m.d.sync += [oft.valid.eq(1), oft.payload.index.eq(feature_index),
                             oft.payload.last.eq(0)]

        # ----- control -----------------------------------------------------------------------
        last_step = Signal()
        m.d.comb += last_step.eq(t == T - 1)
        spk_free = Signal()
        feat_free = Signal()
        m.d.comb += [spk_free.eq(~osp.valid | osp.ready), feat_free.eq(~oft.valid | oft.ready)]
        with m.FSM(init="INTEGRATE"):
            with m.State("INTEGRATE"):
                m.d.comb += in_integrate.eq(1)
                with m.If(accept):
                    m.d.sync += started.eq(1)
                with m.If(t_take):
                    with m.If(t_end):
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += [cur_mask.eq(window.mask), cur_y.eq(t_y), cur_x.eq(t_x),
                                     cur_pbase.eq(t_pbase), cur_wbase.eq(t_wbase)]
            with m.State("DRAIN"):
                # The last read-modify-writes finish: FIRE starts once nothing is left in I or
                # X (W's last append, if any, happens in this cycle).
                with m.If(~i_valid & ~s1_valid):
                    m.next = "FIRE"
            with m.State("FIRE"):
                m.d.comb += in_fire.eq(1)
                with m.If((f_idx == n_pend) & ~b_valid & ~pipe_busy):
                    m.next = "STEP_END" if learn is None else "LEARN"
            if learn is not None:
                with m.State("LEARN"):
                    m.d.comb += learn.req.eq(1)
                    with m.If(learn.done):
                        m.next = "STEP_END"
            end_ok = spk_free & (feat_free | ~last_step)
            if learn is not None:
                m.d.comb += learn.last_step.eq(last_step)
                end_ok = end_ok & learn.win_free
            with m.State("STEP_END"):
                with m.If(end_ok):
                    if learn is not None:
                        m.d.comb += learn.step_done.eq(1)
                    m.d.sync += [
                        osp.valid.eq(1),
                        osp.payload.m.eq(0), osp.payload.u.eq(0), osp.payload.v.eq(0),
                        osp.payload.t.eq(t), osp.payload.step_end.eq(1),
                        osp.payload.last.eq(last_step),
                        n_pend.eq(0), f_idx.eq(0),
                    ]
                    m.d.comb += pending.clear.eq(1)
                    with m.If(last_step):
                        m.d.sync += [
                            oft.valid.eq(1), oft.payload.index.eq(0), oft.payload.last.eq(1),
                            started.eq(0),
                        ]
                        if T > 1:
                            m.d.sync += t.eq(0)
                        m.d.comb += [fired.clear.eq(1), touched.clear.eq(1)]
                        if NWIN:
                            m.d.comb += wtouched.clear.eq(1)
                    if T > 1:
                        with m.Else():
                            m.d.sync += t.eq(t + 1)
                    m.next = "INTEGRATE"

        idle = (in_integrate & ~t_valid & ~cur_mask.any() & ~i_valid & ~s1_valid & ~w_valid & ~started
                & ~osp.valid & ~oft.valid)
        m.d.comb += self.idle.eq(idle if learn is None else idle & ~self.o_winners.valid)
        if learn is not None:
            blocks["learning"] = learn
        for name, block in blocks.items():
            if self._hierarchy:
                m.submodules[name] = BlockModule(block)
            else:
                block.build(m)
        return m
