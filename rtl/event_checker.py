"""The event checker: an AXI4-Stream of spike tokens in, a well-formed token stream out.

Why: the conv core's result is undefined for a malformed token stream (a coordinate out of
range, an input spiking twice, a wrong number of end-of-step markers), and the stream comes from
outside the chip. The checker makes every frame (the beats up to ``tlast``) exactly one image of
``T`` steps for the core, drops what would break it, and reports what it dropped: an error never
vanishes, and never silently becomes a class (the image's flags travel with it to the result).

Input frame (one image): the conv core's tokens (:func:`~spykehw.rtl.layouts.token_layout` in the
low bits of ``tdata``), one per beat: per step the input spikes in any order, then one
end-of-step marker (``step_end``); ``tlast`` on the ``T``-th marker.

Checks and what the checker does (the flags are :class:`ErrorFlag` bits):

``RANGE``
    A spike with ``c >= C``, ``y >= S`` or ``x >= S``, or with a bit of ``tdata`` above the token
    set (``tdata`` is whole bytes, the token's bits are fewer): dropped. An end-of-step marker
    with such a bit set still counts, and raises ``RANGE`` too.
``DUPLICATE``
    A spike of an input that already spiked in this image (Conv1 inputs spike at most once,
    which is what sizes the core's potentials): dropped.
``SHORT``
    ``tlast`` before the ``T``-th marker: the missing markers are inserted, the image ends.
``LONG``
    The ``T``-th marker without ``tlast``: the image ends there, the beats up to ``tlast`` are
    dropped.

Outputs: ``o_events`` (tokens to the conv core), ``o_image`` (one transfer per image when it is
complete towards the core: that image's flags, possibly 0), ``errors`` (the flags raised this
cycle, for the sticky register), ``in_image`` (an image has started and is not complete).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AxiStreamSignature
from .layouts import token_layout

__all__ = ["ErrorFlag", "ERROR_BITS", "token_beat_bits", "EventChecker"]


class ErrorFlag(enum.IntFlag, shape=8):
    """Error flags of the event stream and the weight window (bit positions are the register's)."""
    RANGE = 1 << 0          # spike coordinate out of range (dropped)
    DUPLICATE = 1 << 1      # an input spiked twice in one image (dropped)
    SHORT = 1 << 2          # tlast before the T-th end-of-step marker (markers inserted)
    LONG = 1 << 3           # beats after the T-th marker before tlast (dropped)
    LOAD_BUSY = 1 << 4      # weight write while an image was in flight (dropped)
    LOAD_ADDR = 1 << 5      # weight write to a target/address that does not exist (dropped)
    AXI_READ = 1 << 6       # an external W2 read answered with an error response


ERROR_BITS = 8


def token_beat_bits(channels: int, in_size: int) -> int:
    """``tdata`` width of the event stream: the token layout rounded up to whole bytes."""
    return -(-token_layout(channels, in_size).size // 8) * 8


class EventChecker(wiring.Component):
    """See the module docstring.

    Parameters
    ----------
    channels, in_size, steps : int
        ``C``, ``S``, ``T`` of the conv core.
    check_duplicates : bool
        Track which inputs spiked (``C*S*S`` flag flip-flops, cleared per image); for layers
        whose inputs spike at most once.

    Members
    -------
    s_axis : In(AxiStreamSignature(token_beat_bits(C, S)))
    o_events : Out(stream.Signature(token_layout(C, S)))
    o_image : Out(stream.Signature(ERROR_BITS))
    errors : Out(ERROR_BITS)
    in_image : Out(1)
    enable : In(1)
        Accept beats (``tready`` is low otherwise).
    """

    def __init__(self, channels: int, in_size: int, steps: int, *, check_duplicates: bool = True) -> None:
        self._C, self._S, self._T = channels, in_size, steps
        self._dup = check_duplicates
        super().__init__({
            "s_axis": In(AxiStreamSignature(token_beat_bits(channels, in_size))),
            "o_events": Out(stream.Signature(token_layout(channels, in_size))),
            "o_image": Out(stream.Signature(ERROR_BITS)),
            "errors": Out(ERROR_BITS),
            "in_image": Out(1),
            "enable": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        C, S, T = self._C, self._S, self._T
        layout = token_layout(C, S)
        ax, oe, oi = self.s_axis, self.o_events, self.o_image
        tok = layout(ax.tdata[:layout.size])
        high_ok = Signal()                  # tdata's bits above the token are all zero
        m.d.comb += high_ok.eq(ax.tdata[layout.size:] == 0 if len(ax.tdata) > layout.size else 1)
        high_err = Signal(ERROR_BITS)
        m.d.comb += high_err.eq(Mux(high_ok, 0, ErrorFlag.RANGE))

        t = Signal(range(max(2, T)))         # markers passed to the core in this image
        started = Signal()
        drain = Signal()                    # dropping beats after a LONG image's T-th marker
        pad = Signal()                      # inserting the markers a SHORT image lacks
        img_err = Signal(ERROR_BITS)
        can_out = Signal()
        m.d.comb += [can_out.eq(~oe.valid | oe.ready), self.in_image.eq(started)]
        with m.If(oe.valid & oe.ready):
            m.d.sync += oe.valid.eq(0)

        # Which inputs spiked in this image: C*S rows of S flags.
        rows = [Signal(S, name=f"seen_r{r}") for r in range(C * S)] if self._dup else []
        # Whole nets as operands (a slice operand of an adder makes Verilator warn WIDTHEXPAND).
        tc, ty, tx = (Signal(len(f), name=f"tok_{n}") for n, f in (("c", tok.c), ("y", tok.y), ("x", tok.x)))
        m.d.comb += [tc.eq(tok.c), ty.eq(tok.y), tx.eq(tok.x)]
        # Rows are indexed by (c, y) as a two-level multiplexer: no adder for c*S + y.
        seen = Signal()
        if self._dup:
            row = Signal(S)
            grid = Array(Array(rows[c * S + y] for y in range(S)) for c in range(C))
            m.d.comb += [row.eq(grid[tc][ty]), seen.eq(Array(row[i] for i in range(S))[tx])]
        x_onehot = Signal(S)
        m.d.comb += x_onehot.eq(Cat(tx == i for i in range(S)))
        in_range = Signal()
        # Only the fields that can hold an out-of-range value are compared.
        m.d.comb += in_range.eq(Cat(*(v < n for v, n in ((tc, C), (ty, S), (tx, S)) if n < 1 << len(v)), high_ok).all())

        new_err = Signal(ERROR_BITS)
        m.d.comb += self.errors.eq(new_err)
        finish = Signal()                   # the image's T-th marker goes to the core now
        m.d.comb += [oi.payload.eq(img_err | new_err), oi.valid.eq(finish)]

        def emit_marker():
            m.d.sync += [oe.valid.eq(1), oe.payload.eq(layout.const({"step_end": 1}))]
            with m.If(t == T - 1):
                m.d.comb += finish.eq(1)
            with m.Else():
                m.d.sync += t.eq(t + 1)

        # oi.ready is required for every beat: a completing image always finds room.
        m.d.comb += ax.tready.eq(self.enable & ~pad & can_out & oi.ready)
        with m.If(pad):
            with m.If(can_out & oi.ready):
                emit_marker()
        with m.Elif(ax.tvalid & ax.tready):
            with m.If(drain):
                with m.If(ax.tlast):
                    m.d.sync += drain.eq(0)
            with m.Elif(tok.step_end):
                m.d.sync += started.eq(1)
                emit_marker()
                m.d.comb += new_err.eq(high_err)
                with m.If(t == T - 1):
                    with m.If(~ax.tlast):
                        m.d.comb += new_err.eq(ErrorFlag.LONG | high_err)
                        m.d.sync += drain.eq(1)
                with m.Elif(ax.tlast):
                    m.d.comb += new_err.eq(ErrorFlag.SHORT | high_err)
                    m.d.sync += pad.eq(1)
            with m.Else():
                m.d.sync += started.eq(1)
                bad = Signal(ERROR_BITS)
                with m.If(~in_range):
                    m.d.comb += bad.eq(ErrorFlag.RANGE)
                with m.Elif(seen):
                    m.d.comb += bad.eq(ErrorFlag.DUPLICATE)
                with m.Else():
                    m.d.sync += [oe.valid.eq(1), oe.payload.eq(tok)]
                    if self._dup:
                        for c in range(C):
                            for y in range(S):
                                with m.If((tc == c) & (ty == y)):
                                    m.d.sync += rows[c * S + y].eq(rows[c * S + y] | x_onehot)
                m.d.comb += new_err.eq(bad | Mux(ax.tlast, ErrorFlag.SHORT, 0))
                with m.If(ax.tlast):
                    m.d.sync += pad.eq(1)
        # Last, so that it wins over the beat's own updates (`started`, `pad`).
        with m.If(finish):
            m.d.sync += [t.eq(0), started.eq(0), img_err.eq(0), pad.eq(0)]
            m.d.sync += [r.eq(0) for r in rows]
        with m.Elif(new_err.any()):
            m.d.sync += img_err.eq(img_err | new_err)
        return m
