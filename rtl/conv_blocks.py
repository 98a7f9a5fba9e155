"""Building blocks of the conv core (flag grids, window mask, lane adders, comparator tree) that the
inference datapath and the learning unit share, each a :class:`amaranth.lib.wiring.Component`.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import index_bits

__all__ = [
    "FlagGrid",
    "WindowMask",
    "LaneUpdate",
    "LaneArgmax",
    "argmax_levels",
    "drive",
    "select_bit",
    "table",
    "decode",
    "at_most_one",
    "flag_members",
    "member_or_zero",
]


# ----- building blocks --------------------------------------------------------------------------
# Each block is its own module: the Verilog keeps them as separate modules, and the Amaranth
# simulator re-evaluates a module's combinational logic only when one of its inputs changes
# (one process per module), which makes the unit tests several times faster.
#
# Arithmetic takes whole nets (registers, memory read registers, cell outputs) as operands and
# truncates only where a value is stored or used as an address: a slice as the operand of an
# adder is what makes Verilator's WIDTHEXPAND fire on the Verilog that Yosys writes, since
# Amaranth drops the zero-extension of narrower operands. Dynamic bit selects are case
# multiplexers (``Array``), not shifters whose wide result would be truncated.
#
# An index into a dimension of size 1 is not a member (a constant 0 would be an unused port):
# :func:`member_or_zero` reads such a member as ``Const(0, 1)`` and :func:`drive` skips it.


def drive(target, value) -> list:
    """``[target.eq(value)]``, or nothing when the target is a constant (an index into a
    dimension of size 1)."""
    return [] if isinstance(target, Const) else [target.eq(value)]


def member_or_zero(component: wiring.Component, name: str):
    """The member ``name`` of ``component``, or ``Const(0, 1)`` when the signature leaves it out
    (an index into a dimension of size 1)."""
    return getattr(component, name) if name in component.signature.members else Const(0, 1)


def select_bit(m: Module, value, index, name: str) -> Signal:
    """``value[index]`` as a multiplexer (``index`` must be in range)."""
    out = Signal(name=name)
    m.d.comb += out.eq(Array(value[i] for i in range(len(value)))[index])
    return out


def table(values: list[int], index, width: int):
    """``values[index]`` as a constant table (a case multiplexer); indexes past the end read 0."""
    n = 1 << len(index)
    return Array(Const(values[i] if i < len(values) else 0, width) for i in range(n))[index]


def decode(m: Module, index, width: int, name: str) -> Signal:
    """One-hot ``1 << index`` over ``width`` bits, as ``width`` comparators."""
    out = Signal(width, name=name)
    m.d.comb += out.eq(Cat(*(index == i for i in range(width))))
    return out


def at_most_one(m: Module, bits, name: str) -> Signal:
    """At most one of ``bits`` is set, as a balanced tree of ``(any, several)`` pairs
    (``several = several_l | several_r | any_l & any_r``): a few LUT levels, no carry chain."""
    nodes = [(bits[i], Const(0, 1)) for i in range(len(bits))]
    while len(nodes) > 1:
        pairs = [((al | ar), (sl | sr | (al & ar))) for (al, sl), (ar, sr) in zip(nodes[::2], nodes[1::2])]
        nodes = pairs + ([nodes[-1]] if len(nodes) % 2 else [])
    out = Signal(name=name)
    m.d.comb += out.eq(~nodes[0][1])
    return out


def flag_members(*, rows: int, cols: int, bit_reads: int = 0, row_reads: int = 0,
                 read_enables: bool = False) -> dict:
    """The signature members a ``rows x cols`` flag store shares with the others (:class:`FlagGrid`,
    :class:`~spykehw.rtl.conv_memories.FlagMemory`): ``set_en``, ``set_col``, ``clear``,
    ``set_row`` (absent for one row), then ``bit_reads`` bit read ports and ``row_reads`` row read
    ports (with ``row{k}_en`` when ``read_enables``)."""
    rb, cb = index_bits(rows), index_bits(cols)
    members = {"set_en": In(1), "set_col": In(cb), "clear": In(1)}
    if rows > 1:
        members["set_row"] = In(rb)
    for k in range(bit_reads):
        if rows > 1:
            members[f"bit{k}_row"] = In(rb)
        members[f"bit{k}_col"] = In(cb)
        members[f"bit{k}"] = Out(1)
    for k in range(row_reads):
        if read_enables:
            members[f"row{k}_en"] = In(1)
        if rows > 1:
            members[f"row{k}_idx"] = In(rb)
        members[f"row{k}"] = Out(cols)
    return members


class FlagGrid(wiring.Component):
    """``rows x cols`` flip-flop flags (one register per row), cleared all at once.

    Parameters
    ----------
    rows, cols : int
    bit_reads, row_reads : int
        Number of combinational read ports of one bit, of one row.

    Members
    -------
    set_en : In(1); set_row : In(index_bits(rows)) (absent for one row); set_col : In(index_bits(cols))
        Set one flag.
    clear : In(1)
        Clear every flag (wins over a set in the same cycle).
    bit{k}_row : In (absent for one row); bit{k}_col : In; bit{k} : Out(1)
        Read port ``k`` of one bit.
    row{k}_idx : In (absent for one row); row{k} : Out(cols)
        Read port ``k`` of one row.
    """

    def __init__(self, *, rows: int, cols: int, bit_reads: int = 0, row_reads: int = 0) -> None:
        self._rows, self._cols = rows, cols
        self._bit_reads, self._row_reads = bit_reads, row_reads
        super().__init__(flag_members(rows=rows, cols=cols, bit_reads=bit_reads, row_reads=row_reads))

    def elaborate(self, platform):
        m = Module()
        regs = [Signal(self._cols, name=f"r{r}") for r in range(self._rows)]
        rows = Array(regs) if self._rows > 1 else None

        def read_row(index, name):
            row = Signal(self._cols, name=name)
            m.d.comb += row.eq(rows[index] if rows is not None else regs[0])
            return row

        for k in range(self._bit_reads):
            row = read_row(member_or_zero(self, f"bit{k}_row"), f"bit{k}_bits")
            m.d.comb += getattr(self, f"bit{k}").eq(
                select_bit(m, row, getattr(self, f"bit{k}_col"), f"bit{k}_sel"))
        for k in range(self._row_reads):
            m.d.comb += getattr(self, f"row{k}").eq(read_row(member_or_zero(self, f"row{k}_idx"),
                                                             f"row{k}_bits"))
        col = decode(m, self.set_col, self._cols, "col_hot")
        for k, row in enumerate(regs):
            hit = self.set_en & (self.set_row == k) if self._rows > 1 else self.set_en
            with m.If(self.clear):
                m.d.sync += row.eq(0)
            with m.Elif(hit):
                m.d.sync += row.eq(row | col)
        return m


class WindowMask(wiring.Component):
    """The ``K*K`` output positions of an input spike at ``(y, x)`` that lie inside the ``H x H``
    output and have not fired: bit ``kr*K + kc`` for position ``(y - kr, x - kc)``.

    Two registered steps, so that nothing but a row multiplexer lies between two registers:
    when ``capture`` (with the token) the window's columns (index and inside-the-output flag)
    and its ``K`` row indices ``y - r`` (with their inside flags) are registered; in the next
    cycle (``loading``) the ``K`` rows of not-fired flags are read at those indices and
    registered. From the cycle after that, ``mask`` is selected from the registers. The fired
    flags must not change between ``loading`` and the use of ``mask`` (they only change between
    steps).

    With ``registered_rows`` the rows come from memory read ports (a
    :class:`~spykehw.rtl.conv_memories.FlagMemory` read with ``loading`` at ``row{r}_idx``):
    they arrive one cycle after ``loading`` and hold until the next token's ``loading``, so they
    are used as they are instead of being registered.

    Members
    -------
    y, x : In(index_bits(S)); capture : In(1)
        The token's coordinates, and its acceptance.
    loading : Out(1)
        The rows of the token captured in the previous cycle are read now: ``mask`` is not
        valid yet.
    mask : Out(K*K)
    row{r}_idx : Out(index_bits(H)); row{r}_fired : In(H)
        For ``r < K``: the fired flags of output row ``y - r`` (read from a :class:`FlagGrid`).
    """

    def __init__(self, *, kernel: int, in_size: int, out_size: int, registered_rows: bool = False) -> None:
        self._K, self._H = kernel, out_size
        self._registered_rows = registered_rows
        members = {"y": In(index_bits(in_size)), "x": In(index_bits(in_size)), "capture": In(1),
                   "loading": Out(1), "mask": Out(kernel * kernel)}
        for r in range(kernel):
            if out_size > 1:
                members[f"row{r}_idx"] = Out(index_bits(out_size))
            members[f"row{r}_fired"] = In(out_size)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        K, H = self._K, self._H
        m.d.sync += self.loading.eq(self.capture)
        col_ok, col_idx = [], []
        for c in range(K):
            ok_now = Signal(name=f"col{c}_ok_now")
            ok = Signal(name=f"col{c}_ok")
            ci = Signal(index_bits(H), name=f"col{c}_idx")
            # (x >= 0 is always true, and Verilator warns about a constant comparison)
            m.d.comb += ok_now.eq(((self.x >= c) if c else 1) & (self.x < H + c))
            with m.If(self.capture):
                m.d.sync += [ok.eq(ok_now), ci.eq(Mux(ok_now, self.x - c, 0))]
            col_ok.append(ok)
            col_idx.append(ci)
        for r in range(K):
            ok_now = Signal(name=f"row{r}_ok_now")
            ok = Signal(name=f"row{r}_ok")
            m.d.comb += ok_now.eq(((self.y >= r) if r else 1) & (self.y < H + r))
            idx = member_or_zero(self, f"row{r}_idx")
            with m.If(self.capture):
                m.d.sync += [ok.eq(ok_now), *drive(idx, Mux(ok_now, self.y - r, 0))]
            free = Signal(H, name=f"row{r}_free")
            if self._registered_rows:
                m.d.comb += free.eq(~getattr(self, f"row{r}_fired") & ok.replicate(H))
            else:
                with m.If(self.loading):
                    m.d.sync += free.eq(~getattr(self, f"row{r}_fired") & ok.replicate(H))
            for c in range(K):
                bit = select_bit(m, free, col_idx[c], f"row{r}_col{c}_free")
                m.d.comb += self.mask[r * K + c].eq(bit & col_ok[c])
        return m


class LaneUpdate(wiring.Component):
    """``L`` potential adders and threshold comparators: ``new[l] = old[l] + w[l]`` (``old`` read
    as 0 for an untouched word) and ``crossed[l] = new[l] >= threshold``. No adder overflows:
    ``V`` bits hold the largest potential an image can reach.

    Members
    -------
    touched : In(1); old : In(V).array(L); w : In(B).array(L)
    new : Out(V).array(L); crossed : Out(L)

    One port per lane (not an ``ArrayLayout``): each adder operand is then a whole net.
    """

    def __init__(self, *, lanes: int, pot_bits: int, weight_bits: int, threshold: int) -> None:
        self._L, self._V, self._thr = lanes, pot_bits, threshold
        super().__init__({
            "touched": In(1),
            "old": In(pot_bits).array(lanes),
            "w": In(weight_bits).array(lanes),
            "new": Out(pot_bits).array(lanes),
            "crossed": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._L):
            base = Signal(self._V, name=f"base{lane}")
            m.d.comb += [
                base.eq(Mux(self.touched, self.old[lane], 0)),
                self.new[lane].eq(base + self.w[lane]),
                self.crossed[lane].eq(self.new[lane] >= self._thr),
            ]
        return m


def argmax_levels(lanes: int) -> int:
    """Comparator levels of :class:`LaneArgmax`'s tree: ``ceil(log2 lanes)``."""
    n, k = lanes, 0
    while n > 1:
        n, k = (n + 1) // 2, k + 1
    return k


class LaneArgmax(wiring.Component):
    """The largest of ``L`` lanes and its lane index, lowest lane on ties: a balanced tree of
    comparators where the left operand (lower lanes) wins ties (strict ``>``), pipelined.

    ``values`` are registered first (register 0, loaded when ``en[0]``), then every level of
    the tree has its own registers (level ``k`` loads when ``en[k]``): ``latency`` =
    ``1 + ceil(log2 L)`` registers from ``values`` to ``index``/``value``. The caller moves
    its items through the registers (``en[k]``: the item in register ``k - 1``, or on
    ``values`` for ``k = 0``, advances), so one comparator level plus a multiplexer is all the
    logic between two registers. Without ``need_value`` the maximum itself is not output (one
    lane group: only the index is used).

    Members
    -------
    values : In(V).array(L); en : In(latency)
    index : Out(index_bits(L)) (absent for one lane: read it with :meth:`lane_index`)
    value : Out(V) (only with ``need_value``)
    """

    def __init__(self, *, lanes: int, pot_bits: int, need_value: bool) -> None:
        self._L, self._V, self._need = lanes, pot_bits, need_value
        members = {"values": In(pot_bits).array(lanes), "en": In(self.latency)}
        if lanes > 1:
            members["index"] = Out(index_bits(lanes))
        if need_value:
            members["value"] = Out(pot_bits)
        super().__init__(members)

    @property
    def latency(self) -> int:
        return 1 + argmax_levels(self._L)

    def lane_index(self):
        return member_or_zero(self, "index")

    def elaborate(self, platform):
        m = Module()
        L, V = self._L, self._V
        ib = index_bits(L)
        regs = [Signal(V, name=f"amax_r0_{i}") for i in range(L)]
        with m.If(self.en[0]):
            m.d.sync += [r.eq(self.values[i]) for i, r in enumerate(regs)]
        if L == 1:
            if self._need:
                m.d.comb += self.value.eq(regs[0])
            return m
        nodes = [(regs[i], Const(i, ib)) for i in range(L)]
        level = 0
        while len(nodes) > 1:
            last_level = len(nodes) == 2
            en = self.en[level + 1]
            nxt = []
            for k in range(0, len(nodes) - 1, 2):
                (va, ia), (vb, ib_) = nodes[k], nodes[k + 1]
                gt = Signal(name=f"l{level}_{k // 2}_gt")
                m.d.comb += gt.eq(vb > va)
                idx = self.index if last_level else Signal(ib, name=f"l{level}_{k // 2}_i")
                val = None
                if not last_level:
                    val = Signal(V, name=f"l{level}_{k // 2}_v")
                elif self._need:
                    val = self.value
                with m.If(en):
                    m.d.sync += idx.eq(Mux(gt, ib_, ia))
                    if val is not None:
                        m.d.sync += val.eq(Mux(gt, vb, va))
                nxt.append((val, idx))
            if len(nodes) % 2:      # the odd node out is registered too (items stay aligned)
                va, ia = nodes[-1]
                val = Signal(V, name=f"l{level}_p_v")
                idx = Signal(ib, name=f"l{level}_p_i")
                with m.If(en):
                    m.d.sync += [val.eq(va), idx.eq(ia)]
                nxt.append((val, idx))
            nodes = nxt
            level += 1
        return m
