"""Simulation harness of the conv core: a free-running wrapper, token packing, output checking.

:class:`ConvHarness` wraps a :class:`~spykehw.rtl.conv_core.ConvCore` so that a simulator can
run a batch of images without Python stepping the clock: the testbench fills the *event memory*
(``ev_mem``, input tokens packed several to a 64-bit word) and then pulses ``start``; the
harness streams the tokens into the core and writes every output transfer into two capture
memories (``spike_cap`` and ``feature_cap``, payloads packed the same way) until the core has
ended ``n_images`` images, then raises ``done`` (sticky until the next ``start``). ``cycles``
counts the clock cycles from ``start`` to ``done``. The testbench then reads the capture
memories. A cocotb testbench reaches the three memories directly through VPI
(``dut.harness.ev_mem[i]``), one 64-bit word per call; the Amaranth simulator through
``harness.ev_mem.data[i]``.

With ``stall`` high the harness inserts pseudo-random idle cycles (a 16-bit LFSR) on the input
stream and holds ``ready`` low on the two output streams at random, so the core's back-pressure
is exercised in the generated Verilog too. The weight bus is passed through unchanged.

:func:`build_conv_cosim` generates the harness Verilog and builds it for Verilator or Icarus
(optionally inside :func:`sim_top_verilog`, a simulation-only top whose clock runs inside the
simulator); :func:`run_conv_cosim` runs the cocotb testbench :mod:`spykehw.sim.conv.tb` on a
vector file and, on a mismatch, re-runs the first failing image alone with a waveform;
:func:`cosim_vector_file` does that chunk by chunk for long runs. :func:`simulate_core` runs a
bare ConvCore in the Amaranth simulator.

With a learning core (``ConvCoreConfig(learning=True)``) the harness also captures the
``o_winners`` stream into ``winner_cap`` (``winner_count`` payloads, packed like the spikes), and
``done`` waits for the core to be ``idle`` as well (every output drained), so that the weights
can be read back over the bus as soon as ``done`` rises; ``new_epoch`` goes to the core as is
(the testbench pulses it between batches).

The functions below are shared by the Amaranth-simulator tests, the cocotb testbench and the
benchmark: :func:`image_tokens` (the token sequence of one image), :func:`split_outputs` (the
captured payloads back into per-image, per-step spike sets and feature lists) and
:func:`compare_image` (every difference from the expected spikes and features, as
:class:`ConvMismatch` records naming image, step, map and position).
"""

from __future__ import annotations

from typing import Any

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ...rtl.conv_config import ConvCoreConfig, WeightBusSignature
from ...rtl.conv_core import ConvCore
from ...rtl.layouts import feature_layout, spike_layout, token_layout
from ..framework.stall import stall_lfsr

__all__ = [
    "ConvHarness",
    "HARNESS_DEFAULTS",
    "WINNER_DEPTH",
    "LONG_RUN_DEPTHS",
    "packing",
]

# Payload capacities: a batch holds what surely fits (an image's worst case is H*H + T spike
# words and min(H*H, F) + 1 feature words), about 7 Conv1 images with the defaults, which keep
# the generated Verilog (memory initialisers) small; long runs use LONG_RUN_DEPTHS.
HARNESS_DEFAULTS = {"ev_depth": 1 << 13, "spike_depth": 1 << 13, "feature_depth": 1 << 12}
WINNER_DEPTH = 1 << 12      # learning cores: winners and step markers of a batch
LONG_RUN_DEPTHS = {"ev_depth": 1 << 15, "spike_depth": 1 << 15, "feature_depth": 1 << 15}
PACK_BITS = 64


def packing(bits: int) -> int:
    """Payloads per word of a harness memory: as many as fit 64 bits (VPI moves one word per
    call, so fewer, wider words make the testbench's transfers several times faster)."""
    return max(1, PACK_BITS // bits)


class ConvHarness(wiring.Component):
    """Free-running wrapper of a ConvCore (see the module docstring).

    With ``pack`` the three memories hold ``k = packing(bits)`` payloads per word, payload
    ``j`` in word ``j // k``, bits ``(j % k) * bits ..`` (``params()["harness"]["pack"]`` gives
    each ``k``); without it one payload per word. ``ev_depth``, ``spike_depth`` and
    ``feature_depth`` count payloads.

    Members
    -------
    weights : In(WeightBusSignature)
        The core's weight bus.
    start : In(1)
        Pulse: stream tokens ``0 .. n_tokens-1`` of ``ev_mem`` and capture until ``n_images``
        images have ended. Only while not ``busy``.
    n_tokens, n_images : In
        Batch size, sampled during ``start``.
    stall : In(1)
        Pseudo-random idle cycles on all three streams.
    busy, done : Out(1)
        A batch is running / has finished (``done`` stays high until the next ``start``).
    spike_count, feature_count : Out
        Payloads written to ``spike_cap`` and ``feature_cap`` in this batch.
    overflow : Out(1)
        A capture memory was full (further outputs were dropped).
    cycles : Out(32)
        Clock cycles from ``start`` to ``done``.
    idle : Out(1)
        The core's ``idle``.
    cap_addr : In, spike_word, feature_word : Out
        Asynchronous read of the capture memories' words (an alternative to reading them
        directly).
    """

    def __init__(self, config: ConvCoreConfig, *, ev_depth: int = HARNESS_DEFAULTS["ev_depth"],
                 spike_depth: int = HARNESS_DEFAULTS["spike_depth"],
                 feature_depth: int = HARNESS_DEFAULTS["feature_depth"], pack: bool = False,
                 winner_depth: int = WINNER_DEPTH) -> None:
        for name, v in (("ev_depth", ev_depth), ("spike_depth", spike_depth),
                        ("feature_depth", feature_depth)):
            if not isinstance(v, int) or v < 2:
                raise ValueError(f"{name} must be an integer >= 2, not {v!r}")
        self._cfg = config
        self._depths = {"ev_depth": ev_depth, "spike_depth": spike_depth, "feature_depth": feature_depth}
        self.core = ConvCore(config)
        self._token = token_layout(config.channels, config.in_size)
        self._spike = spike_layout(config.maps, config.out_size, config.steps)
        self._feature = feature_layout(config.features)
        self._pack = {k: packing(lay.size) if pack else 1 for k, lay in
                      (("ev", self._token), ("spike", self._spike), ("feature", self._feature))}

        def mem(kind: str, bits: int, items: int) -> memory.Memory:
            k = self._pack[kind]
            return memory.Memory(shape=bits * k, depth=-(-items // k), init=[])

        self.ev_mem = mem("ev", self._token.size, ev_depth)
        self.spike_cap = mem("spike", self._spike.size, spike_depth)
        self.feature_cap = mem("feature", self._feature.size, feature_depth)
        # Ports are made here, once: elaborate() may run several times (Verilog, RTLIL).
        self._ev_rd = self.ev_mem.read_port()
        self._spk_wr = self.spike_cap.write_port(granularity=self._spike.size)
        self._ft_wr = self.feature_cap.write_port(granularity=self._feature.size)
        self._spk_rd = self.spike_cap.read_port(domain="comb")
        self._ft_rd = self.feature_cap.read_port(domain="comb")
        self._learning = bool(config.learning)
        if self._learning:
            self._depths["winner_depth"] = winner_depth
            self._pack["winner"] = self._pack["spike"]
            self.winner_cap = mem("winner", self._spike.size, winner_depth)
            self._win_wr = self.winner_cap.write_port(granularity=self._spike.size)
        members = {
            "weights": In(WeightBusSignature(config.weight_bus_words, config.parallelism,
                                             config.weight_bits)),
            "start": In(1),
            "n_tokens": In(range(ev_depth + 1)),
            "n_images": In(16),
            "stall": In(1),
            "busy": Out(1),
            "done": Out(1),
            "spike_count": Out(range(spike_depth + 1)),
            "feature_count": Out(range(feature_depth + 1)),
            "overflow": Out(1),
            "cycles": Out(32),
            "idle": Out(1),
            "cap_addr": In(range(max(self.spike_cap.depth, self.feature_cap.depth))),
            "spike_word": Out(self.spike_cap.shape),
            "feature_word": Out(self.feature_cap.shape),
        }
        if self._learning:
            members["winner_count"] = Out(range(winner_depth + 1))
            members["new_epoch"] = In(1)
        super().__init__(members)

    @property
    def config(self) -> ConvCoreConfig:
        return self._cfg

    def params(self) -> dict[str, Any]:
        out = {**self._cfg.to_dict(), "harness": {**self._depths, "pack": dict(self._pack)}}
        if self._learning:
            out["layouts"] = {**out["layouts"], "winner": out["layouts"]["spike"]}
        return out

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.ev_mem = self.ev_mem
        m.submodules.spike_cap = self.spike_cap
        m.submodules.feature_cap = self.feature_cap
        wiring.connect(m, wiring.flipped(self.weights), core.weights)
        m.d.comb += [
            self.idle.eq(core.idle),
            self._spk_rd.addr.eq(self.cap_addr), self.spike_word.eq(self._spk_rd.data),
            self._ft_rd.addr.eq(self.cap_addr), self.feature_word.eq(self._ft_rd.data),
        ]

        ev_rd, spk_wr, ft_wr = self._ev_rd, self._spk_wr, self._ft_wr
        k_ev, k_spk, k_ft = self._pack["ev"], self._pack["spike"], self._pack["feature"]

        lfsr = stall_lfsr(m)

        n_tokens = Signal.like(self.n_tokens)
        n_images = Signal.like(self.n_images)
        sent = Signal.like(self.n_tokens)        # tokens taken by the core
        ev_word = Signal(range(self.ev_mem.depth + 1))
        ev_slot = Signal(range(max(2, k_ev)))   # token ev_word*k + ev_slot is on offer
        primed = Signal()
        images_done = Signal(16)
        busy, done = self.busy, self.done

        # --- input: tokens sent .. n_tokens-1, valid held until taken ------------------------
        have = Signal()
        offering = Signal()
        m.d.comb += have.eq(busy & primed & (sent < n_tokens))
        valid = Signal()
        m.d.comb += [
            valid.eq(have & (offering | ~self.stall | lfsr[0])),
            core.i_events.valid.eq(valid),
            core.i_events.payload.eq(ev_rd.data.word_select(ev_slot, self._token.size)
                                     if k_ev > 1 else ev_rd.data),
        ]
        xfer = Signal()
        next_word = Signal()
        m.d.comb += [xfer.eq(valid & core.i_events.ready), next_word.eq(xfer & (ev_slot == k_ev - 1))]
        m.d.sync += offering.eq(valid & ~core.i_events.ready)
        # The read port always shows word ev_word; the next one is read as the last token of
        # this one is taken.
        m.d.comb += ev_rd.addr.eq(ev_word + next_word)
        with m.If(self.start):
            m.d.comb += ev_rd.addr.eq(0)
        with m.If(xfer):
            m.d.sync += [sent.eq(sent + 1), ev_slot.eq(Mux(ev_slot == k_ev - 1, 0, ev_slot + 1))]
            with m.If(next_word):
                m.d.sync += ev_word.eq(ev_word + 1)

        # --- outputs: capture every transfer, k payloads per word --------------------------------
        spk_ready = Signal()
        ft_ready = Signal()
        m.d.comb += [
            spk_ready.eq(~self.stall | lfsr[1]),
            ft_ready.eq(~self.stall | lfsr[2]),
            core.o_spikes.ready.eq(spk_ready),
            core.o_features.ready.eq(ft_ready),
        ]

        def capture(port, stream, count, depth, k, ready):
            word = Signal(len(port.addr) + 1)
            slot = Signal(range(max(2, k)))
            x = Signal()
            room = Signal()
            m.d.comb += [
                x.eq(stream.valid & ready),
                room.eq(count < depth),
                port.addr.eq(word),
                port.data.eq(Cat(*([stream.payload.as_value()] * k))),
                port.en.eq(Mux(x & room, 1 << slot, 0) if k > 1 else (x & room)),
            ]
            with m.If(x):
                with m.If(room):
                    m.d.sync += [count.eq(count + 1), slot.eq(Mux(slot == k - 1, 0, slot + 1))]
                    with m.If(slot == k - 1):
                        m.d.sync += word.eq(word + 1)
                with m.Else():
                    m.d.sync += self.overflow.eq(1)
            return word, slot, x

        spk_word, spk_slot, _ = capture(spk_wr, core.o_spikes, self.spike_count,
                                        self._depths["spike_depth"], k_spk, spk_ready)
        ft_word, ft_slot, ft_x = capture(ft_wr, core.o_features, self.feature_count,
                                         self._depths["feature_depth"], k_ft, ft_ready)
        with m.If(ft_x & core.o_features.payload.last):
            m.d.sync += images_done.eq(images_done + 1)
        finished = (images_done == n_images) & (sent == n_tokens)
        if self._learning:
            m.submodules.winner_cap = self.winner_cap
            win_ready = Signal()
            m.d.comb += [win_ready.eq(~self.stall | lfsr[3]), core.o_winners.ready.eq(win_ready),
                         core.new_epoch.eq(self.new_epoch)]
            win_word, win_slot, _ = capture(self._win_wr, core.o_winners, self.winner_count,
                                            self._depths["winner_depth"], self._pack["winner"],
                                            win_ready)
            finished = finished & core.idle    # winners drained, weights readable
            with m.If(self.start & ~busy):
                m.d.sync += [self.winner_count.eq(0), win_word.eq(0), win_slot.eq(0)]

        # --- control ------------------------------------------------------------------------------
        with m.If(busy):
            m.d.sync += [self.cycles.eq(self.cycles + 1), primed.eq(1)]
            with m.If(finished):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(self.start & ~busy):
            m.d.sync += [
                busy.eq(1), done.eq(0), primed.eq(0), sent.eq(0), ev_word.eq(0), ev_slot.eq(0),
                images_done.eq(0), n_tokens.eq(self.n_tokens), n_images.eq(self.n_images),
                self.spike_count.eq(0), self.feature_count.eq(0), self.overflow.eq(0),
                self.cycles.eq(0), spk_word.eq(0), spk_slot.eq(0), ft_word.eq(0), ft_slot.eq(0),
            ]
        return m


