"""The conv/inhibition core for inference: bit-exact with the golden ``run_conv`` (as a set per step).

What it computes (the module docstring of :mod:`spykehw.golden.conv`): per
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
  common addresses, with plain synchronous read ports (no transparency: the integration
  forwards the words its reads miss). (One memory per lane rather than one
  ``L*V``-bit word: the same bits, and no wide word to split and rebuild every cycle, which made
  the Icarus simulation three times slower.) It is never cleared: a per-position *touched*
  flag (``H*H`` flip-flops, cleared in one cycle at the end of an image) makes an untouched word
  read as 0.
- **Integration**: a token is accepted into a token register (which also registers the row
  indices and columns of its window; in the next cycle the window's rows of *fired* flags are
  registered, so an input spike stays at least two cycles in the register); an input spike
  taken from it becomes a ``K*K`` mask of its output positions that are inside the output and
  have not fired (the fired flags only change between steps); each set bit costs ``G`` cycles,
  one per group, lowest bit first, and the next token is taken from the register in the cycle
  the last bit is picked (and the one after it accepted), so there are no bubbles between input
  spikes with at least two positions' work. Fired positions cost
  nothing: their potential is never observed again. A read-modify-write goes through six
  stages, one item per cycle: P picks the bit and registers the addresses, I reads the
  potential word and the touched flag, R registers the word straight from the block RAM's
  output and reads the weight word, X adds and writes back and registers the sum and the
  lanes' threshold tests (weights are non-negative, so a potential that crosses stays above),
  W reduces the tests and reads the position's *pending* flag, and Q appends a crossed,
  not-yet-pending position to a *pending* list (memory of ``H*H`` entries, plus ``H*H``
  pending flags, Q's own append forwarded to W). A read in I
  misses the writes of the two items ahead of it (in X and W when it reaches R); an item
  there with the same address forwards its sum (the newer one wins), so back-to-back
  read-modify-writes of one word are exact in every order the stream allows. A position is
  evaluated at the end of every step it crossed in, which is exactly when the golden model
  fires it: a position whose ``max_m V`` reached the threshold was touched in that step.
- **Firing** (after the end-of-step marker): each pending position's ``G`` words are read again,
  the lanes of a word reduced by a comparator tree (ties to the lower lane) and the words
  combined with a strict ``>`` (ties to the lower group): the lowest map among the maxima. The
  spike is emitted, the position marked fired, and its pool window's flag word (a memory of
  ``P*P`` words of ``M`` bits, with per-window touched flags) says whether the feature is new.
  The pipeline takes one pending position per ``G`` cycles and stalls as a whole while an output
  register is full. A pending entry is registered before its potential words are read (the
  list's block RAM output never drives the potential memories' addresses directly). The words
  read are registered, then every level of the comparator tree
  has its own registers (``D = 1 + ceil(log2 L)`` stages), with several groups a combining
  stage follows, and the last stage emits; the feature index is ``m*P*P`` from a table plus
  the window. Then the end-of-step marker (and at the last step the end-of-image marker) is
  emitted and the image state is cleared.

Cycles, partners never stalling: an input spike with ``n`` free output positions costs
``max(n*G, 2)`` cycles (the first of a step one more); the end of a step costs 5
cycles (every step's first token spends a cycle in the token register), plus 4 when its
marker is taken in the cycle of the step's last pick (the pick still goes through I, R, X and
W before firing starts; 3 when it was picked one cycle earlier, and so on), plus ``n*G + 3 + ceil(log2 L)``
when ``n`` positions fire (``n*G + 4 + ceil(log2 L)`` with several groups). Conv1 on MNIST at
``L = 30``: about 5,540 cycles per image (``sim/conv/bench.py``).

UP5K configuration (``ConvCoreConfig(potential_memory="spram")``, inference only): the
potentials are single-port RAMs (:class:`~spykehw.rtl.conv_memories.SinglePortRam`: the iCE40
``SB_SPRAM256KA`` with ``spram_primitive=True``, else its behavioural model). The pick stage issues
an item only in every other cycle (a slot register alternates from reset) and the write-back moves
from X to W, so reads (I) and writes (W, three cycles later) never share a cycle; the forwarding
from W covers the item behind. The fired flags (one block-RAM copy per kernel row, read with the
token's acceptance: the rows arrive when the window mask would have registered them), the touched
flags (read in I, selected in R) and the pending flags (read in W, selected in Q) are
:class:`~spykehw.rtl.conv_memories.FlagMemory` rows; after every step the FSM waits in CLEAR
while they are swept (``H + 1`` cycles). An input spike with ``n`` free positions then costs
``2*n*G`` cycles (plus one when its first pick waits for the slot). Conv1 on MNIST at ``L = 2``:
about 160,000 cycles per image.

Learning mode (``ConvCoreConfig(learning=True)``): the same datapath plus the STDP learning unit
of :mod:`spykehw.rtl.conv_learning` (candidates collected while firing, greedy competition,
homeostasis, integer STDP written back into the weight memories between steps, learning-rate
schedule) and an ``o_winners`` stream; a step then ends with a LEARN phase before its markers.
Conv1 STDP on MNIST at ``L = 30``: about 6,100 cycles per training image. With
``learning=False`` (the default) none of it is elaborated and the Verilog is unchanged.

Components (each a :class:`amaranth.lib.wiring.Component` with its signature; the Verilog keeps
them as modules of their own, named ``conv_core.<path>``):

- :class:`~spykehw.rtl.conv_integration.Integration` (``integration``): token register, pick
  stage, read-modify-write with forwarding, pending-list append, the fired/touched/pending flags;
- :class:`~spykehw.rtl.conv_firing.Firing` (``firing``): pending-list read, comparator tree,
  group combine;
- :class:`~spykehw.rtl.conv_output.FeatureOutput` (``output``): pool feature flags and the output
  registers;
- :class:`~spykehw.rtl.conv_control.Control` (``control``): the phase FSM and the step counter;
- :class:`~spykehw.rtl.conv_learning.LearningUnit` (``learning``, learning mode only);
- the weight and potential memories (``weight_mem<l>``, ``pot_mem<l>``) and the pending list
  (``pending_mem``) stay in the core's own module, which connects the components.

The small building blocks (flag grids, window mask, lane adders, comparator tree) are components
of :mod:`spykehw.rtl.conv_blocks`. Only ``formats``/``options`` come from ``golden``: the hardware
is checked against the model, never built from it.
"""

from __future__ import annotations

from typing import Any, Sequence

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_config import ConvCoreConfig, WeightBusSignature
from .conv_control import Control
from .conv_firing import Firing
from .conv_integration import Integration
from .conv_learning import LearningUnit
from .conv_memories import SinglePortRam
from .conv_output import FeatureOutput
from .layouts import feature_layout, spike_layout, token_layout
from .weight_memory import lane_init

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
        Accepted for compatibility and ignored: the core is always built from its components,
        which stay submodules (the Amaranth simulator re-evaluates only the modules whose
        inputs changed, and the Verilog has one module per component).
    read_back : bool
        With ``False`` the weight bus has no read members (a top that never reads the weights
        back: no read-back logic).
    weight_init : sequence of int
        The weight memory's contents after configuration: the weight bus's words by address
        (an export's ``conv1_weights``); empty (the default) for zeros, loaded over the bus.
    spram_primitive : bool
        With ``config.potential_memory == "spram"``: instantiate the iCE40 ``SB_SPRAM256KA``
        (synthesis) instead of its behavioural model (simulation); see
        :class:`~spykehw.rtl.conv_memories.SinglePortRam`.

    Members
    -------
    i_events : In(stream.Signature(token_layout(C, S)))
        Input spikes and end-of-step markers.
    o_spikes : Out(stream.Signature(cfg.spike_layout()))
        Output spikes and end-of-step markers (with ``spike_potentials`` each spike's potential
        ``p``).
    o_features : Out(stream.Signature(feature_layout(M*P*P)))
        New pool features and end-of-image markers.
    weights : In(WeightBusSignature(C*K*K*G, L, B))
        Weight load and read-back.
    idle : Out(1)
        No image in progress and every output drained: weights may be (re)loaded or read.
    o_winners : Out(stream.Signature(spike_layout(M, H, T)))
        Only with ``learning``: each step's STDP winners ``(m, u=r, v=c, t)`` in ascending map
        order, then an end-of-step marker (see :mod:`spykehw.rtl.conv_learning`).
    new_epoch : In(1)
        Only with ``learning``: pulsed while ``idle`` before an epoch's first image (not needed
        after reset); the weight bus also reads the last snapshot at ``snapshot_base + word``.
    """

    def __init__(self, config: ConvCoreConfig | None = None, *, hierarchy: bool = False,
                 weight_init: Sequence[int] = (), read_back: bool = True,
                 spram_primitive: bool = False, **kwargs: Any) -> None:
        self._hierarchy = bool(hierarchy)
        if config is None:
            config = ConvCoreConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a ConvCoreConfig or keyword arguments, not both")
        if not isinstance(config, ConvCoreConfig):
            raise TypeError(f"config must be a ConvCoreConfig, not {config!r}")
        self._cfg = config
        cfg = config
        if len(weight_init) not in (0, cfg.weight_words):
            raise ValueError(f"weight_init: {len(weight_init)} words, the weight memory holds {cfg.weight_words}")
        self._weight_init = tuple(weight_init)
        self._read_back = bool(read_back)
        self._spram_primitive = bool(spram_primitive)
        members = {
            "i_events": In(stream.Signature(token_layout(cfg.channels, cfg.in_size))),
            "o_spikes": Out(stream.Signature(cfg.spike_layout())),
            "o_features": Out(stream.Signature(feature_layout(cfg.features))),
            "weights": In(WeightBusSignature(cfg.weight_bus_words, cfg.parallelism, cfg.weight_bits,
                                             read_back=self._read_back)),
            "idle": Out(1),
        }
        if cfg.learning:
            members["o_winners"] = Out(stream.Signature(spike_layout(cfg.maps, cfg.out_size, cfg.steps)))
            members["new_epoch"] = In(1)
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
        m.submodules.integration = integ = Integration(cfg)
        m.submodules.firing = fire = Firing(cfg)
        m.submodules.output = out = FeatureOutput(cfg)
        m.submodules.control = ctl = Control(cfg)
        learn = None
        if cfg.learning:
            m.submodules.learning = learn = LearningUnit(cfg)
        self._weight_memories(m, integ, learn)
        self._potential_memories(m, integ, fire, ctl)

        # The pending list: positions that crossed the threshold in this step.
        m.submodules.pending_mem = qmem = memory.Memory(shape=cfg.pending_layout(),
                                                        depth=cfg.out_size ** 2, init=[])
        q_wr, q_rd = qmem.write_port(), qmem.read_port()
        m.d.comb += [q_wr.en.eq(integ.q_wr.en), q_wr.addr.eq(integ.q_wr.addr),
                     q_wr.data.eq(integ.q_wr.data),
                     q_rd.en.eq(fire.q_rd.en), q_rd.addr.eq(fire.q_rd.addr),
                     fire.q_rd.data.eq(q_rd.data)]

        # integration -> (pending list) -> firing -> output registers; control over all
        wiring.connect(m, wiring.flipped(self.i_events), integ.i_events)
        cap = fire.capture
        step_clear = ctl.step_end
        image_clear = ctl.step_end & ctl.last_step
        m.d.comb += [
            integ.active.eq(ctl.integrate), integ.step_clear.eq(step_clear),
            integ.image_clear.eq(image_clear),
            integ.fired.en.eq(cap.en), integ.fired.u.eq(cap.u), integ.fired.v.eq(cap.v),
            fire.active.eq(ctl.fire), fire.stall.eq(out.stall), fire.step_clear.eq(step_clear),
            fire.n_pend.eq(integ.n_pend),
            *(getattr(out.capture, k).eq(getattr(cap, k)) for k in ("en", "m", "u", "v", "win", "win_ok")),
            out.t.eq(ctl.t), out.step_end.eq(ctl.step_end), out.last_step.eq(ctl.last_step),
            ctl.accept.eq(integ.accept), ctl.marker.eq(integ.marker),
            ctl.draining.eq(integ.draining), ctl.fire_done.eq(fire.done),
            ctl.spk_free.eq(out.spk_free), ctl.feat_free.eq(out.feat_free),
        ]
        if cfg.spram:
            m.d.comb += ctl.clearing.eq(integ.clearing)
        wiring.connect(m, fire.ahead, out.ahead)
        if cfg.spike_potentials:
            self._spike_potentials(m, out, cap, ctl)
        else:
            wiring.connect(m, out.o_spikes, wiring.flipped(self.o_spikes))
        wiring.connect(m, out.o_features, wiring.flipped(self.o_features))

        idle = (ctl.integrate & ~integ.busy & ~ctl.started
                & ~self.o_spikes.valid & ~self.o_features.valid)
        if learn is None:
            m.d.comb += self.idle.eq(idle)
            return m
        # Every new spike is offered to the learning unit, every accepted input spike too.
        tok = self.i_events.payload
        m.d.comb += [
            *(getattr(learn.cap, k).eq(getattr(cap, k)) for k in ("en", "m", "u", "v", "val")),
            learn.pre.en.eq(integ.accept & ~tok.step_end),
            learn.pre.c.eq(tok.c), learn.pre.y.eq(tok.y), learn.pre.x.eq(tok.x),
            learn.t.eq(ctl.t), learn.last_step.eq(ctl.last_step),
            learn.req.eq(ctl.learn), learn.step_done.eq(ctl.step_end),
            ctl.learn_done.eq(learn.done), ctl.win_free.eq(learn.win_free),
            learn.new_epoch.eq(self.new_epoch),
            self.idle.eq(idle & ~self.o_winners.valid),
        ]
        wiring.connect(m, learn.o_winners, wiring.flipped(self.o_winners))
        return m

    def _spike_potentials(self, m: Module, out: FeatureOutput, cap, ctl: Control) -> None:
        """``o_spikes`` with ``p``: the output register's fields, and beside it the captured
        potential, loaded with the same capture (0 with a marker)."""
        p = Signal(self._cfg.potential_bits, name="spike_p")
        with m.If(cap.en):
            m.d.sync += p.eq(cap.val)
        with m.If(ctl.step_end):
            m.d.sync += p.eq(0)
        src, dst = out.o_spikes, self.o_spikes
        m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready), dst.payload.p.eq(p),
                     *(getattr(dst.payload, k).eq(getattr(src.payload, k))
                       for k in ("m", "u", "v", "t", "step_end", "last"))]

    def _weight_memories(self, m: Module, integ: Integration, learn: LearningUnit | None) -> None:
        """One memory per lane (a lane's read data is then a whole net). The read ports serve
        stage I, then the learning unit, then the host; the write ports the learning unit while
        it updates, else the host (which writes only while idle)."""
        cfg = self._cfg
        L, B = cfg.parallelism, cfg.weight_bits
        bus = self.weights
        w_rd_addr = Signal(len(integ.w_rd.addr), name="w_rd_addr")
        w_rd_en = Signal()
        host_read = Signal()        # the read ports hold a word the host asked for
        if learn is not None:
            # bus addresses from snapshot_base on are the snapshot copy (read only)
            snap_sel = bus.addr[-1]
            snap_read = Signal()    # the word the host asked for is a snapshot word
        for lane in range(L):
            mem = memory.Memory(shape=unsigned(B), depth=cfg.weight_words,
                                init=lane_init(self._weight_init, lane, B))
            m.submodules[f"weight_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            if learn is None:
                m.d.comb += [wp.addr.eq(bus.addr), wp.data.eq(bus.w_data.word_select(lane, B)),
                             wp.en.eq(bus.w_en[lane])]
            else:
                wr = learn.w_wr
                m.d.comb += [
                    wp.addr.eq(Mux(wr.en, wr.addr, bus.addr)),
                    wp.data.eq(Mux(wr.en, wr.data, bus.w_data.word_select(lane, B))),
                    wp.en.eq(Mux(wr.en, wr.lanes[lane], bus.w_en[lane] & ~snap_sel)),
                    learn.w_data[lane].eq(rp.data),
                ]
            m.d.comb += [rp.addr.eq(w_rd_addr), rp.en.eq(w_rd_en), integ.w_rd.data[lane].eq(rp.data)]
            if self._read_back:
                # Operand isolation: the wide read-back bus only moves for host reads.
                word = rp.data if learn is None else Mux(snap_read, learn.snap_data.word_select(lane, B),
                                                         rp.data)
                m.d.comb += bus.r_data.word_select(lane, B).eq(Mux(host_read, word, 0))
        i_valid, i_waddr = integ.w_rd.en, integ.w_rd.addr
        if learn is None:
            busy_rd = i_valid
            m.d.comb += w_rd_addr.eq(Mux(i_valid, i_waddr, bus.addr))
        else:
            busy_rd = Signal()      # the core reads the weights itself (integration or learning)
            m.d.comb += [
                busy_rd.eq(i_valid | learn.w_rd.en),
                w_rd_addr.eq(Mux(i_valid, i_waddr, Mux(learn.w_rd.en, learn.w_rd.addr, bus.addr))),
            ]
        if not self._read_back:
            m.d.comb += w_rd_en.eq(busy_rd)
            return
        m.d.comb += [w_rd_en.eq(busy_rd | bus.r_en), bus.r_ready.eq(~busy_rd),
                     host_read.eq(bus.r_valid)]
        m.d.sync += bus.r_valid.eq(bus.r_en & ~busy_rd)
        if learn is not None:
            m.d.comb += [learn.snap_en.eq(bus.r_en & snap_sel), learn.snap_addr.eq(bus.addr)]
            m.d.sync += snap_read.eq(snap_sel)

    def _potential_memories(self, m: Module, integ: Integration, fire: Firing, ctl: Control) -> None:
        """``H*H*G`` words per lane, read transparent to the write. One memory per lane (as for
        the weights): the same bits as one ``L*V``-bit memory, with a common address, but no
        wide word to split and rebuild every cycle. The read port serves the integration or,
        while firing, the firing pipeline."""
        cfg = self._cfg
        p_raddr = Signal(len(integ.p_rd.addr), name="p_raddr")
        p_ren = Signal()
        m.d.comb += [p_raddr.eq(Mux(ctl.fire, fire.p_rd.addr, integ.p_rd.addr)),
                     p_ren.eq(Mux(ctl.fire, fire.p_rd.en, integ.p_rd.en))]
        if cfg.spram:
            # One port: the write (stage W) and the reads never fall in the same cycle.
            for lane in range(cfg.parallelism):
                m.submodules[f"pot_mem{lane}"] = ram = SinglePortRam(
                    depth=cfg.out_size ** 2 * cfg.groups, width=cfg.potential_bits,
                    primitive=self._spram_primitive)
                m.d.comb += [
                    ram.addr.eq(Mux(integ.p_wr.en, integ.p_wr.addr, p_raddr)),
                    ram.we.eq(integ.p_wr.en), ram.wdata.eq(integ.p_wr.data[lane]), ram.re.eq(p_ren),
                    integ.p_rd.data[lane].eq(ram.rdata), fire.p_rd.data[lane].eq(ram.rdata),
                ]
            return
        for lane in range(cfg.parallelism):
            mem = memory.Memory(shape=unsigned(cfg.potential_bits), depth=cfg.out_size ** 2 * cfg.groups,
                                init=[])
            m.submodules[f"pot_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                rp.addr.eq(p_raddr), rp.en.eq(p_ren),
                wp.addr.eq(integ.p_wr.addr), wp.en.eq(integ.p_wr.en),
                wp.data.eq(integ.p_wr.data[lane]),
                integ.p_rd.data[lane].eq(rp.data), fire.p_rd.data[lane].eq(rp.data),
            ]
