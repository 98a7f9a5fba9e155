"""AMBA AXI signatures (AXI4-Stream, AXI4-Lite, AXI4 read master) and conventional port names.

Why this module: the accelerator's ports must be found by name by vendor IP packagers and by
cocotbext-axi (``AxiStreamBus.from_prefix(dut, "s_axis")``, ``AxiLiteBus.from_prefix(dut,
"s_axil")``), which look for ``<prefix>_<signal>`` in lower case with one underscore. Amaranth
names the members of a nested interface ``<member>__<signal>`` (two underscores), so the top
declares *flat* members (:func:`flat_members`: ``s_axis_tdata``, ``s_axis_tvalid``, ...) and
wires them to ordinary nested interfaces inside (:func:`connect_flat`); every block below the top
works with the nested interfaces and ``wiring.connect``.

Signatures are written from the side that *drives* the address/data (the master, the stream
source); a slave or sink takes ``In(...)`` of them. Signal meanings are AMBA's (ARM IHI 0022,
IHI 0051): a transfer happens on a rising edge where ``valid & ready``; ``resp`` codes
:data:`RESP_OKAY` and :data:`RESP_SLVERR`. The clock and the active-high synchronous reset are
the top's ``clk`` and ``rst`` (Amaranth's ``sync`` domain).
"""

from __future__ import annotations

from typing import Any

from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "RESP_OKAY",
    "RESP_SLVERR",
    "AxiStreamSignature",
    "AxiLiteSignature",
    "AxiReadMasterSignature",
    "flat_members",
    "connect_flat",
]

RESP_OKAY = 0b00
RESP_SLVERR = 0b10


class AxiStreamSignature(wiring.Signature):
    """AXI4-Stream from the source: ``tdata`` (``data_bits``, a multiple of 8), ``tvalid``,
    ``tlast`` out, ``tready`` in. No ``tkeep``/``tstrb``: every beat is a whole word."""

    def __init__(self, data_bits: int) -> None:
        if data_bits < 8 or data_bits % 8:
            raise ValueError(f"AXI4-Stream tdata must be a positive multiple of 8 bits, not {data_bits}")
        self._data_bits = data_bits
        super().__init__({
            "tdata": Out(unsigned(data_bits)),
            "tvalid": Out(1),
            "tready": In(1),
            "tlast": Out(1),
        })

    @property
    def data_bits(self) -> int:
        return self._data_bits

    def __eq__(self, other):
        return type(other) is type(self) and other._data_bits == self._data_bits

    def __repr__(self):
        return f"AxiStreamSignature({self._data_bits})"


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite from the master: the five channels AW, W, B, AR, R (no ``*prot``: the slaves
    here do not distinguish protection levels; cocotbext-axi treats ``awprot``/``arprot`` as
    optional)."""

    def __init__(self, addr_bits: int = 12, data_bits: int = 32) -> None:
        if data_bits not in (32, 64):
            raise ValueError(f"AXI4-Lite data must be 32 or 64 bits, not {data_bits}")
        self._key = (addr_bits, data_bits)
        super().__init__({
            "awaddr": Out(unsigned(addr_bits)), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(unsigned(data_bits)), "wstrb": Out(unsigned(data_bits // 8)),
            "wvalid": Out(1), "wready": In(1),
            "bresp": In(unsigned(2)), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(unsigned(addr_bits)), "arvalid": Out(1), "arready": In(1),
            "rdata": In(unsigned(data_bits)), "rresp": In(unsigned(2)), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def addr_bits(self) -> int:
        return self._key[0]

    @property
    def data_bits(self) -> int:
        return self._key[1]

    def __eq__(self, other):
        return type(other) is type(self) and other._key == self._key

    def __repr__(self):
        return f"AxiLiteSignature(addr_bits={self._key[0]}, data_bits={self._key[1]})"


class AxiReadMasterSignature(wiring.Signature):
    """The read half of AXI4 from the master (bursts): AR (``araddr``, ``arlen``, ``arsize``,
    ``arburst``, ``arid``) and R (``rdata``, ``rresp``, ``rlast``, ``rid``). For the external
    weight variant: one INCR burst per active feature row."""

    def __init__(self, addr_bits: int = 32, data_bits: int = 64, id_bits: int = 4) -> None:
        if data_bits < 8 or data_bits & (data_bits - 1):
            raise ValueError(f"AXI4 data must be a power of two >= 8 bits, not {data_bits}")
        self._key = (addr_bits, data_bits, id_bits)
        super().__init__({
            "arid": Out(unsigned(id_bits)), "araddr": Out(unsigned(addr_bits)),
            "arlen": Out(unsigned(8)), "arsize": Out(unsigned(3)), "arburst": Out(unsigned(2)),
            "arvalid": Out(1), "arready": In(1),
            "rid": In(unsigned(id_bits)), "rdata": In(unsigned(data_bits)), "rresp": In(unsigned(2)),
            "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other._key == self._key

    def __repr__(self):
        a, d, i = self._key
        return f"AxiReadMasterSignature(addr_bits={a}, data_bits={d}, id_bits={i})"


def flat_members(prefix: str, member: wiring.Member) -> dict[str, wiring.Member]:
    """The port members of ``member`` (e.g. ``In(AxiStreamSignature(16))``) as flat members
    named ``<prefix>_<signal>`` with the directions they have on the component."""
    out: dict[str, wiring.Member] = {}
    for path, m in member.signature.members.flatten():
        if m.is_port:
            out[prefix + "_" + "_".join(map(str, path))] = m.flow(m.shape, init=m.init)
    return out


def connect_flat(m: Module, owner: Any, prefix: str, member: wiring.Member) -> Any:
    """A nested interface for ``member`` whose signals are wired to ``owner``'s flat ports of
    :func:`flat_members` (inputs copied in, outputs copied out); returns the interface, which
    the owner then uses like a member of its own (``wiring.connect`` to sub-blocks)."""
    iface = member.signature.create(path=(prefix,))
    for path, mem in member.signature.members.flatten():
        if not mem.is_port:
            continue
        inner = iface
        for p in path:
            inner = getattr(inner, p)
        flat = getattr(owner, prefix + "_" + "_".join(map(str, path)))
        m.d.comb += inner.eq(flat) if mem.flow == In else flat.eq(inner)
    return iface
