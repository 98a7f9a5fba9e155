"""Building blocks of the conv core (flag grids, window mask, lane adders, comparator tree) that the
inference datapath and the learning unit share.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Elaboratable, Module, Mux, Signal

from .conv_config import ConvCoreConfig
from .layouts import index_bits

__all__ = [
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

class Block:
    """A building block: ``build(m)`` adds its logic to a module. ``ConvCore`` either inlines
    it (``build`` into its own module: one flat Verilog module, the default) or makes it a
    submodule (:class:`BlockModule`, with ``hierarchy=True``: faster in the Amaranth
    simulator)."""

    def build(self, m: Module) -> None:
        raise NotImplementedError


class BlockModule(Elaboratable):
    def __init__(self, block: Block) -> None:
        self._block = block

    def elaborate(self, platform):
        m = Module()
        self._block.build(m)
        return m


def drive(target, value) -> list:
    """``[target.eq(value)]``, or nothing when the target is a constant (an index into a
    dimension of size 1)."""
    return [] if isinstance(target, Const) else [target.eq(value)]


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


class FlagGrid(Block):
    """``rows x cols`` flip-flop flags (one register per row), cleared all at once.

    ``read_bit(r, c)`` and ``read_row(r)`` add read ports (combinational); one set port
    (``set_en``, ``set_row``, ``set_col``) and ``clear`` (wins over a set in the same cycle).
    """

    def __init__(self, rows: int, cols: int, name: str) -> None:
        self.name = name
        self.cols = cols
        self.rows = [Signal(cols, name=f"{name}_r{r}") for r in range(rows)]
        self.set_en = Signal(name=f"{name}_set_en")
        # One row: no row index (a constant 0 would be an unused wire in the Verilog).
        self.set_row = Signal(index_bits(rows), name=f"{name}_set_row") if rows > 1 else Const(0, 1)
        self.set_col = Signal(index_bits(cols), name=f"{name}_set_col")
        self.clear = Signal(name=f"{name}_clear")
        self._reads: list[tuple[str, Signal, Signal | None, Signal]] = []

    def _row_index(self, name: str):
        return Signal(index_bits(len(self.rows)), name=f"{name}_row") if len(self.rows) > 1 else Const(0, 1)

    def read_row(self, name: str) -> tuple[Signal, Signal]:
        """(row index in, row bits out)."""
        r = self._row_index(name)
        out = Signal(self.cols, name=name)
        self._reads.append(("row", r, None, out))
        return r, out

    def read_bit(self, name: str) -> tuple[Signal, Signal, Signal]:
        """(row index in (a constant for one row), column index in, bit out)."""
        r = self._row_index(name)
        c = Signal(index_bits(self.cols), name=f"{name}_col")
        out = Signal(name=name)
        self._reads.append(("bit", r, c, out))
        return r, c, out

    def build(self, m: Module) -> None:
        rows = Array(self.rows) if len(self.rows) > 1 else None
        for kind, r, c, out in self._reads:
            row = Signal(self.cols, name=f"{out.name}_bits")
            m.d.comb += row.eq(rows[r] if rows is not None else self.rows[0])
            if kind == "row":
                m.d.comb += out.eq(row)
            else:
                m.d.comb += out.eq(select_bit(m, row, c, f"{out.name}_sel"))
        col = decode(m, self.set_col, self.cols, f"{self.name}_col_hot")
        for k, row in enumerate(self.rows):
            hit = self.set_en & (self.set_row == k) if len(self.rows) > 1 else self.set_en
            with m.If(self.clear):
                m.d.sync += row.eq(0)
            with m.Elif(hit):
                m.d.sync += row.eq(row | col)


class WindowMask(Block):
    """The ``K*K`` output positions of an input spike at ``(y, x)`` that lie inside the ``H x H``
    output and have not fired: bit ``kr*K + kc`` for position ``(y - kr, x - kc)``.

    When ``load`` (with the token) the window's ``K`` rows of not-fired flags and its columns
    (index and inside-the-output flag) are registered; ``mask`` is selected from those
    registers. The fired flags must not change between ``load`` and the use of ``mask`` (they
    only change between steps)."""

    def __init__(self, cfg: "ConvCoreConfig", fired: FlagGrid) -> None:
        K, S, H = cfg.kernel, cfg.in_size, cfg.out_size
        self._K, self._H = K, H
        self.y = Signal(index_bits(S))
        self.x = Signal(index_bits(S))
        self.load = Signal()
        self.mask = Signal(K * K)
        self._rows = [fired.read_row(f"win{r}_fired") for r in range(K)]

    def build(self, m: Module) -> None:
        K, H = self._K, self._H
        col_ok, col_idx = [], []
        for c in range(K):
            ok_now = Signal(name=f"col{c}_ok_now")
            ok = Signal(name=f"col{c}_ok")
            ci = Signal(index_bits(H), name=f"col{c}_idx")
            # (x >= 0 is always true, and Verilator warns about a constant comparison)
            m.d.comb += ok_now.eq(((self.x >= c) if c else 1) & (self.x < H + c))
            with m.If(self.load):
                m.d.sync += [ok.eq(ok_now), ci.eq(Mux(ok_now, self.x - c, 0))]
            col_ok.append(ok)
            col_idx.append(ci)
        for r, (row_idx, fired_row) in enumerate(self._rows):
            row_ok = Signal(name=f"row{r}_ok")
            m.d.comb += row_ok.eq(((self.y >= r) if r else 1) & (self.y < H + r))
            m.d.comb += drive(row_idx, Mux(row_ok, self.y - r, 0))
            free = Signal(H, name=f"row{r}_free")
            with m.If(self.load):
                m.d.sync += free.eq(~fired_row & row_ok.replicate(H))
            for c in range(K):
                bit = select_bit(m, free, col_idx[c], f"row{r}_col{c}_free")
                m.d.comb += self.mask[r * K + c].eq(bit & col_ok[c])


class LaneUpdate(Block):
    """``L`` potential adders and threshold comparators: ``new[l] = old[l] + w[l]`` (``old`` read
    as 0 for an untouched word) and ``crossed[l] = new[l] >= threshold``. No adder overflows:
    ``V`` bits hold the largest potential an image can reach."""

    def __init__(self, lanes: int, pot_bits: int, weight_bits: int, threshold: int) -> None:
        self._L, self._V, self._thr = lanes, pot_bits, threshold
        self.touched = Signal()
        self.old = [Signal(pot_bits, name=f"old{lane}") for lane in range(lanes)]
        self.w = [Signal(weight_bits, name=f"w{lane}") for lane in range(lanes)]
        self.new = [Signal(pot_bits, name=f"new{lane}") for lane in range(lanes)]
        self.crossed = Signal(lanes)

    def build(self, m: Module) -> None:
        for lane in range(self._L):
            base = Signal(self._V, name=f"base{lane}")
            m.d.comb += [
                base.eq(Mux(self.touched, self.old[lane], 0)),
                self.new[lane].eq(base + self.w[lane]),
                self.crossed[lane].eq(self.new[lane] >= self._thr),
            ]


class LaneArgmax(Block):
    """The largest of ``L`` lanes and its lane index, lowest lane on ties: a balanced tree of
    comparators where the left operand (lower lanes) wins ties (strict ``>``), pipelined.

    ``values`` are registered first (register 0, loaded when ``en[0]``), then every level of
    the tree has its own registers (level ``k`` loads when ``en[k]``): ``latency`` =
    ``1 + ceil(log2 L)`` registers from ``values`` to ``index``/``value``. The caller moves
    its items through the registers (``en[k]``: the item in register ``k - 1``, or on
    ``values`` for ``k = 0``, advances), so one comparator level plus a multiplexer is all the
    logic between two registers. Without ``need_value`` the maximum itself is not output (one
    lane group: only the index is used)."""

    def __init__(self, lanes: int, pot_bits: int, need_value: bool) -> None:
        self._L, self._V, self._need = lanes, pot_bits, need_value
        self.values = [Signal(pot_bits, name=f"in{lane}") for lane in range(lanes)]
        self.value = Signal(pot_bits) if need_value else None
        self.index = Signal(index_bits(lanes)) if lanes > 1 else Const(0, 1)
        self.en = [Signal(name=f"amax_en{k}") for k in range(self.latency)]

    @property
    def latency(self) -> int:
        return 1 + self.levels(self._L)

    @staticmethod
    def levels(lanes: int) -> int:
        """Comparator levels of the tree: ``ceil(log2 lanes)``."""
        n, k = lanes, 0
        while n > 1:
            n, k = (n + 1) // 2, k + 1
        return k

    def build(self, m: Module) -> None:
        L, V = self._L, self._V
        ib = index_bits(L)
        regs = [Signal(V, name=f"amax_r0_{i}") for i in range(L)]
        with m.If(self.en[0]):
            m.d.sync += [r.eq(v) for r, v in zip(regs, self.values)]
        if L == 1:
            if self._need:
                m.d.comb += self.value.eq(regs[0])
            return
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
