"""Pool1 in hardware: the conv core's spike stream in, the Pool1 spike stream (Conv2's input) out.

What it computes (the golden :func:`spykehw.golden.pool.pool_spikes`, one image after another):
a conv spike ``(m, u, v)`` of step ``t`` with ``u, v < 2P`` reaches pool neuron ``(m, u//2, v//2)``
(row and column ``2P`` of an odd conv output are dropped: VALID pooling). Per
:class:`Pool1Config` ``mode``:

- ``"or"`` (no Pool1 options): pool neuron ``(m, i, j)`` spikes at step ``t`` iff at least one
  conv spike of step ``t`` reached it (duplicates within a step merge into one spike);
- ``"accumulate"`` (``spike_accumulation`` alone): it spikes at every step from the first such
  ``t`` to the image's last step;
- ``"inhibit"`` (``lateral_inhibition``): location ``(i, j)`` spikes once per image, at the first
  step ``t`` at which a conv spike reached it, in the map of the largest potential ``p`` among
  that step's spikes at the location (the lowest map on ties); later spikes there are ignored.

Streams
-------
``i_spikes`` (:func:`~spykehw.rtl.layouts.spike_layout`, with the ``p`` field in ``"inhibit"``
mode): a step's conv spikes in any order, then its end-of-step marker (``last`` on the image's
final one), as the conv core's ``o_spikes`` (``ConvCoreConfig(spike_potentials=True)`` adds
``p``). Spikes must carry the step of the marker that follows them.

``o_events`` (:func:`~spykehw.rtl.layouts.token_layout` ``(M, P)``, Conv2's ``i_events``): the
pool spikes of each step in the golden :class:`~spykehw.golden.spikes.SpikeEvents` order
``(c, y, x)`` (map, then row, then column; the Conv2 core would take any order), then one
end-of-step marker; ``T`` markers per image.

Architecture: a step's spikes are collected into a per-step store (:class:`OrCollector`: a
memory of ``M`` times ``2**ceil(log2 P)`` words of ``P`` bits, word ``(m, i)`` at address
``m * 2**ceil(log2 P) + i``, bit ``j``; :class:`InhibitCollector`:
a memory of ``P`` words of ``P`` entries ``(fired, t, p, m)``, one row of locations per word), one
read-modify-write per spike (an input spike every other cycle). After the step's marker the
:class:`Scanner` reads the store word by word, only for the maps that got a spike (``maps``, an
``M``-bit register), and emits the set bits of each word lowest column first (one cycle per word
plus one per pool spike), then the marker; input is held back meanwhile. In ``"or"`` mode a read
also clears its word; in ``"accumulate"`` mode only at the last step; the inhibition store is
swept to zero after the last step (``P`` cycles). Only ``options`` come from ``golden``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.options import PoolOptions
from .layouts import index_bits, spike_layout, token_layout

__all__ = ["POOL1_MODES", "Pool1Config", "Pool1", "OrCollector", "InhibitCollector", "Scanner"]

POOL1_MODES = ("or", "accumulate", "inhibit")


@dataclass(frozen=True)
class Pool1Config:
    """What fixes a Pool1 block: ``maps`` M, the conv output side ``conv_size`` H (pool side
    ``P = H // 2``), ``steps`` T, the conv potentials' width ``potential_bits`` (inhibition
    only) and ``mode`` (one of :data:`POOL1_MODES`, see :meth:`mode_of`)."""

    maps: int
    conv_size: int
    steps: int
    potential_bits: int
    mode: str = "or"

    def __post_init__(self) -> None:
        if self.mode not in POOL1_MODES:
            raise ValueError(f"mode: one of {', '.join(POOL1_MODES)}, not {self.mode!r}")
        for name in ("maps", "steps", "potential_bits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, not {getattr(self, name)}")
        if self.conv_size < 2:
            raise ValueError(f"conv_size: must be >= 2, not {self.conv_size}")

    @staticmethod
    def mode_of(pool: PoolOptions) -> str:
        """The mode of ``pool``: inhibition wins over accumulation (which then changes nothing,
        see :class:`~spykehw.golden.options.PoolOptions`)."""
        if pool.lateral_inhibition:
            return "inhibit"
        return "accumulate" if pool.spike_accumulation else "or"

    @property
    def pool_size(self) -> int:
        return self.conv_size // 2

    @property
    def inhibit(self) -> bool:
        return self.mode == "inhibit"

    def in_layout(self) -> data.StructLayout:
        return spike_layout(self.maps, self.conv_size, self.steps,
                            self.potential_bits if self.inhibit else 0)

    def out_layout(self) -> data.StructLayout:
        return token_layout(self.maps, self.pool_size)

    def item_layout(self) -> data.StructLayout:
        """A conv spike inside the pool, as the collectors take it."""
        P = self.pool_size
        fields = {"m": unsigned(index_bits(self.maps)), "i": unsigned(index_bits(P)),
                  "j": unsigned(index_bits(P)), "t": unsigned(index_bits(self.steps))}
        if self.inhibit:
            fields["p"] = unsigned(self.potential_bits)
        return data.StructLayout(fields)

    def to_dict(self) -> dict:
        return {"maps": self.maps, "conv_size": self.conv_size, "pool_size": self.pool_size,
                "steps": self.steps, "potential_bits": self.potential_bits, "mode": self.mode}


def lowest_index(m: Module, bits, name: str) -> tuple[Signal, Signal]:
    """``(any, index of the lowest set bit)`` of ``bits`` (index 0 when none is set)."""
    idx = Signal(index_bits(len(bits)), name=name)
    found = Signal(name=f"{name}_any")
    value = Const(0, len(idx))
    for k in reversed(range(len(bits))):
        value = Mux(bits[k], k, value)
    m.d.comb += [idx.eq(value), found.eq(bits.any())]
    return found, idx


def scan_signature(cfg: Pool1Config) -> wiring.Signature:
    """The scanner reads a store word (from the scanner's side): ``en``, map ``m``, row ``i``,
    the step ``t`` and ``last`` (the image's final step) out; one cycle later ``mask``, the
    columns of pool neurons ``(m, i, *)`` that spike at ``t``. ``maps``: the maps with a spike
    to scan in this step (stable while scanning)."""
    return wiring.Signature({
        "en": Out(1), "m": Out(index_bits(cfg.maps)), "i": Out(index_bits(cfg.pool_size)),
        "t": Out(index_bits(cfg.steps)), "last": Out(1),
        "mask": In(cfg.pool_size), "maps": In(cfg.maps),
    })


def collector_members(cfg: Pool1Config) -> dict:
    """The signature both collectors share: ``i_item`` (a conv spike inside the pool; ``ready``
    is low in the cycle of a write), ``scan``, ``step_done`` (the step's scan is over, one
    cycle), ``image_done`` (after the last step's scan, one cycle) and ``busy`` (clearing)."""
    return {"i_item": In(stream.Signature(cfg.item_layout())), "scan": In(scan_signature(cfg)),
            "step_done": In(1), "image_done": In(1), "busy": Out(1)}


class OrCollector(wiring.Component):
    """The ``"or"`` / ``"accumulate"`` store: bit ``j`` of word ``(m, i)`` is pool neuron
    ``(m, i, j)``; a spike sets it (read, then write the word with the bit, so a duplicate
    merges), a scan read returns the word and in ``"or"`` mode (``"accumulate"``: at the last
    step) writes it back as 0 in the same cycle (the read sees the old word). ``maps`` has the
    bit of every map with a spike (kept over the image in ``"accumulate"`` mode)."""

    def __init__(self, cfg: Pool1Config) -> None:
        if cfg.inhibit:
            raise ValueError("OrCollector: modes 'or' and 'accumulate' only")
        self._cfg = cfg
        super().__init__(collector_members(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        M, P = cfg.maps, cfg.pool_size
        m.submodules.words = mem = memory.Memory(shape=P, depth=M << index_bits(P), init=[])
        wr, rd = mem.write_port(), mem.read_port()
        item, scan = self.i_item, self.scan
        maps = Signal(M)
        pending = Signal()                  # a spike's word is on the read port: write it now
        bit = Signal(P)
        waddr = Signal(len(rd.addr))
        clear_on_read = Const(1) if cfg.mode == "or" else scan.last
        m.d.comb += [item.ready.eq(~pending), scan.maps.eq(maps), scan.mask.eq(rd.data),
                     self.busy.eq(0)]
        # word (m, i) at address Cat(i, m): rows padded to a power of two, no multiplier
        scan_addr, item_addr = Cat(scan.i, scan.m), Cat(item.payload.i, item.payload.m)
        with m.If(scan.en):
            m.d.comb += [rd.en.eq(1), rd.addr.eq(scan_addr),
                         wr.en.eq(clear_on_read), wr.addr.eq(scan_addr), wr.data.eq(0)]
        with m.Elif(item.valid & item.ready):
            p = item.payload
            m.d.comb += [rd.en.eq(1), rd.addr.eq(item_addr)]
            m.d.sync += [pending.eq(1), waddr.eq(item_addr),
                         bit.eq(Const(1, P) << p.j), maps.eq(maps | (Const(1, M) << p.m))]
        with m.If(pending):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(waddr), wr.data.eq(rd.data | bit)]
            m.d.sync += pending.eq(0)
        with m.If(self.image_done if cfg.mode == "accumulate" else self.step_done):
            m.d.sync += maps.eq(0)
        return m


def entry_fields(cfg: Pool1Config) -> list[tuple[str, int]]:
    """A location's entry of the inhibition store, lowest bits first."""
    return [("fired", 1), ("t", index_bits(cfg.steps)), ("p", cfg.potential_bits),
            ("m", index_bits(cfg.maps))]


class InhibitCollector(wiring.Component):
    """The ``"inhibit"`` store: word ``i`` holds the ``P`` locations ``(i, j)`` of a pool row,
    each ``(fired, t, p, m)`` (:func:`entry_fields`): the location's first step and, among that
    step's spikes so far, the largest potential and its map. A spike at a location not yet
    fired, or fired at this very step with a larger potential (or an equal one in a lower map),
    replaces the entry (read, then write the row); a spike at a location fired at an earlier
    step is ignored. A scan read of ``(m, i)`` at step ``t`` gives the locations of row ``i``
    with ``fired``, ``t`` and ``m``. After the last step the rows are swept to 0 (``busy``,
    ``P`` cycles). The words are flat bit vectors (no struct views: their per-field aliases
    would be unused nets in the Verilog)."""

    def __init__(self, cfg: Pool1Config) -> None:
        if not cfg.inhibit:
            raise ValueError("InhibitCollector: mode 'inhibit' only")
        self._cfg = cfg
        super().__init__(collector_members(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        M, P = cfg.maps, cfg.pool_size
        fields = entry_fields(cfg)
        E = sum(w for _, w in fields)
        m.submodules.rows = mem = memory.Memory(shape=P * E, depth=P, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        item, scan = self.i_item, self.scan
        maps = Signal(M)
        pending = Signal()
        held = Signal(cfg.item_layout())    # the spike whose row is on the read port
        scan_m = Signal.like(scan.m)
        scan_t = Signal.like(scan.t)
        sweeping = Signal()
        sweep_row = Signal(index_bits(P))
        m.d.comb += [item.ready.eq(~pending & ~sweeping), scan.maps.eq(maps), self.busy.eq(sweeping)]

        def split(word, prefix: str) -> dict[str, Signal]:
            out, at = {}, 0
            for name, width in fields:
                out[name] = Signal(width, name=f"{prefix}_{name}")
                m.d.comb += out[name].eq(word[at:at + width])
                at += width
            return out

        entries = [split(rd.data[j * E:(j + 1) * E], f"loc{j}") for j in range(P)]
        m.d.comb += scan.mask.eq(Cat(*(e["fired"] & (e["t"] == scan_t) & (e["m"] == scan_m)
                                       for e in entries)))
        with m.If(scan.en):
            m.d.comb += [rd.en.eq(1), rd.addr.eq(scan.i)]
            m.d.sync += [scan_m.eq(scan.m), scan_t.eq(scan.t)]
        with m.Elif(item.valid & item.ready):
            m.d.comb += [rd.en.eq(1), rd.addr.eq(item.payload.i)]
            m.d.sync += [pending.eq(1), held.eq(item.payload)]

        old_word = Signal(E, name="old_entry")
        m.d.comb += old_word.eq(Array(rd.data[j * E:(j + 1) * E] for j in range(P))[held.j])
        old = split(old_word, "old")
        wins = Signal()
        m.d.comb += wins.eq(~old["fired"] | ((old["t"] == held.t)
                                             & ((held.p > old["p"]) | ((held.p == old["p"]) & (held.m < old["m"])))))
        new_entry = Signal(E)
        m.d.comb += new_entry.eq(Cat(Const(1, 1), held.t, held.p, held.m))
        new_row = Signal(P * E)
        m.d.comb += new_row.eq(Cat(*(Mux(held.j == j, new_entry, rd.data[j * E:(j + 1) * E])
                                     for j in range(P))))
        with m.If(pending):
            m.d.comb += [wr.en.eq(wins), wr.addr.eq(held.i), wr.data.eq(new_row)]
            m.d.sync += pending.eq(0)
            with m.If(wins):
                m.d.sync += maps.eq(maps | (Const(1, M) << held.m))

        with m.If(self.step_done):
            m.d.sync += maps.eq(0)
        with m.If(self.image_done):
            m.d.sync += [sweeping.eq(1), sweep_row.eq(0)]
        with m.If(sweeping):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(sweep_row), wr.data.eq(0)]
            m.d.sync += sweep_row.eq(sweep_row + 1)
            with m.If(sweep_row == P - 1):
                m.d.sync += sweeping.eq(0)
        return m


class Scanner(wiring.Component):
    """After a step's marker (``start`` with ``t`` and ``last``, one cycle): reads the words
    ``(m, i)`` of the maps in ``scan.maps``, lowest map first, rows in order, and emits the set
    columns of each word lowest first into the ``o_events`` register, then the end-of-step
    marker; ``done`` (one cycle, with ``image_end`` after the last step) when the marker is in
    the register. A word costs one cycle (its
    read overlaps the last spike of the word before), a pool spike one cycle."""

    def __init__(self, cfg: Pool1Config) -> None:
        self._cfg = cfg
        super().__init__({
            "start": In(1), "t": In(index_bits(cfg.steps)), "last": In(1),
            "scan": Out(scan_signature(cfg)),
            "o_events": Out(stream.Signature(cfg.out_layout())),
            "busy": Out(1), "done": Out(1), "image_end": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        M, P = cfg.maps, cfg.pool_size
        scan, out = self.scan, self.o_events
        t = Signal.like(self.t)
        last = Signal()
        todo = Signal(M)                    # maps not scanned yet
        cur_m = Signal.like(scan.m)
        cur_i = Signal.like(scan.i)
        fresh = Signal()                    # the word of (cur_m, cur_i) is on scan.mask
        mask = Signal(P)                    # else its columns left to emit
        word = Signal(P)
        m.d.comb += word.eq(Mux(fresh, scan.mask, mask))
        out_free = Signal()
        m.d.comb += [out_free.eq(~out.valid | out.ready), scan.t.eq(t), scan.last.eq(last)]
        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)

        have_map, first_map = lowest_index(m, scan.maps, "first_map")
        rest = Signal(M)
        m.d.comb += rest.eq(todo & ~(Const(1, M) << cur_m))
        more_maps, next_map = lowest_index(m, rest, "next_map")

        col_any, col = lowest_index(m, word, "col")
        remainder = Signal(P)
        m.d.comb += remainder.eq(word & ~(Const(1, P) << col))

        def read(mm, ii):
            return [scan.en.eq(1), scan.m.eq(mm), scan.i.eq(ii)]

        with m.FSM(name="scanner"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [t.eq(self.t), last.eq(self.last)]
                    m.next = "FIRST"
            with m.State("FIRST"):
                m.d.comb += self.busy.eq(1)
                with m.If(have_map):
                    m.d.comb += read(first_map, 0)
                    m.d.sync += [todo.eq(scan.maps), cur_m.eq(first_map), cur_i.eq(0), fresh.eq(1)]
                    m.next = "WORDS"
                with m.Else():
                    m.next = "MARKER"
            with m.State("WORDS"):
                m.d.comb += self.busy.eq(1)
                advance = Signal()
                with m.If(~col_any):
                    m.d.comb += advance.eq(1)
                with m.Elif(out_free):
                    m.d.sync += [out.valid.eq(1), out.payload.c.eq(cur_m), out.payload.y.eq(cur_i),
                                 out.payload.x.eq(col), out.payload.step_end.eq(0),
                                 mask.eq(remainder), fresh.eq(0)]
                    m.d.comb += advance.eq(~remainder.any())
                with m.Else():
                    m.d.sync += [mask.eq(word), fresh.eq(0)]
                with m.If(advance):
                    with m.If(cur_i != P - 1):
                        m.d.comb += read(cur_m, cur_i + 1)
                        m.d.sync += [cur_i.eq(cur_i + 1), fresh.eq(1)]
                    with m.Elif(more_maps):
                        m.d.comb += read(next_map, 0)
                        m.d.sync += [cur_m.eq(next_map), cur_i.eq(0), todo.eq(rest), fresh.eq(1)]
                    with m.Else():
                        m.next = "MARKER"
            with m.State("MARKER"):
                m.d.comb += self.busy.eq(1)
                with m.If(out_free):
                    m.d.sync += [out.valid.eq(1), out.payload.c.eq(0), out.payload.y.eq(0),
                                 out.payload.x.eq(0), out.payload.step_end.eq(1)]
                    m.d.comb += [self.done.eq(1), self.image_end.eq(last)]
                    m.next = "IDLE"
        return m


class Pool1(wiring.Component):
    """Pool1 (see the module docstring): :class:`OrCollector` or :class:`InhibitCollector`
    (``collector``) and :class:`Scanner` (``scanner``).

    Members
    -------
    i_spikes : In(stream.Signature(cfg.in_layout()))
        Conv spikes and end-of-step markers (the conv core's ``o_spikes``).
    o_events : Out(stream.Signature(token_layout(M, P)))
        Pool spikes and end-of-step markers (the Conv2 core's ``i_events``).
    idle : Out(1)
        Between images with nothing left to emit.
    """

    def __init__(self, cfg: Pool1Config) -> None:
        if not isinstance(cfg, Pool1Config):
            raise TypeError(f"cfg must be a Pool1Config, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "i_spikes": In(stream.Signature(cfg.in_layout())),
            "o_events": Out(stream.Signature(cfg.out_layout())),
            "idle": Out(1),
        })

    @property
    def config(self) -> Pool1Config:
        return self._cfg

    def params(self) -> dict:
        return self._cfg.to_dict()

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        P = cfg.pool_size
        m.submodules.collector = coll = InhibitCollector(cfg) if cfg.inhibit else OrCollector(cfg)
        m.submodules.scanner = scanner = Scanner(cfg)
        wiring.connect(m, scanner.scan, coll.scan)
        wiring.connect(m, scanner.o_events, wiring.flipped(self.o_events))

        spk = self.i_spikes.payload
        i, j = spk.u >> 1, spk.v >> 1
        inside = Signal()
        m.d.comb += inside.eq((i < P) & (j < P))
        item = coll.i_item.payload
        m.d.comb += [item.m.eq(spk.m), item.i.eq(i), item.j.eq(j), item.t.eq(spk.t)]
        if cfg.inhibit:
            m.d.comb += item.p.eq(spk.p)

        collecting = Signal()
        m.d.comb += [
            collecting.eq(~scanner.busy & ~coll.busy),
            coll.step_done.eq(scanner.done),
            coll.image_done.eq(scanner.image_end),
            self.idle.eq(collecting & ~self.i_spikes.valid & ~self.o_events.valid),
        ]
        with m.If(collecting & self.i_spikes.valid):
            with m.If(spk.step_end):
                # the marker waits for the write of the step's last spike
                m.d.comb += [self.i_spikes.ready.eq(coll.i_item.ready), scanner.start.eq(coll.i_item.ready),
                             scanner.t.eq(spk.t), scanner.last.eq(spk.last)]
            with m.Elif(inside):
                m.d.comb += [coll.i_item.valid.eq(1), self.i_spikes.ready.eq(coll.i_item.ready)]
            with m.Else():
                m.d.comb += self.i_spikes.ready.eq(1)   # row/col 2P: dropped
        return m
