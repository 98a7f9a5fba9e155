"""Signatures of the interfaces between the conv core's components (:mod:`spykehw.rtl.conv_core`).

Each is a plain :class:`amaranth.lib.wiring.Signature` built from the core's parameters, seen from
the side that drives ``en``: ``Out(...)`` on the requester, ``In(...)`` on the server (or use
``wiring.connect`` between an ``Out`` and an ``In`` member). Lanes are member arrays
(``In(bits).array(L)``), one net per lane, never a wide word sliced: an adder operand is then a
whole net (a slice as an operand makes Verilator's WIDTHEXPAND fire on the generated Verilog).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .conv_config import ConvCoreConfig
from .layouts import index_bits

__all__ = [
    "read_signature",
    "write_signature",
    "flag_set_signature",
    "capture_signature",
    "lookahead_signature",
]


def read_signature(depth: int, data_shape, lanes: int | None = None) -> wiring.Signature:
    """A synchronous memory read from the reader's side: ``en`` and ``addr`` out, ``data`` in one
    cycle later (``lanes`` memories at one address: ``data`` is a member array)."""
    data = In(data_shape) if lanes is None else In(data_shape).array(lanes)
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(depth)), "data": data})


def write_signature(depth: int, data_shape, lanes: int | None = None) -> wiring.Signature:
    """A memory write from the writer's side: ``en``, ``addr``, ``data`` (a member array with
    ``lanes``)."""
    data = Out(data_shape) if lanes is None else Out(data_shape).array(lanes)
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(depth)), "data": data})


def flag_set_signature(size: int) -> wiring.Signature:
    """Set the flag of output position ``(u, v)`` (``u, v < size``)."""
    return wiring.Signature({"en": Out(1), "u": Out(index_bits(size)), "v": Out(index_bits(size))})


def capture_signature(cfg: ConvCoreConfig, *, value: bool) -> wiring.Signature:
    """A position fires (``en``, one cycle): in map ``m`` at ``(u, v)``, pool window ``win``
    (valid when ``win_ok``); with ``value`` also the winning potential ``val``."""
    H, M, P = cfg.out_size, cfg.maps, cfg.pool_size
    members = {"en": Out(1), "m": Out(index_bits(M)), "u": Out(index_bits(H)),
               "v": Out(index_bits(H)), "win": Out(index_bits(P * P)), "win_ok": Out(1)}
    if value:
        members["val"] = Out(cfg.potential_bits)
    return wiring.Signature(members)


def lookahead_signature(cfg: ConvCoreConfig) -> wiring.Signature:
    """What the firing pipeline tells the feature flags ahead of a capture: the pool window of
    the item two stages before it (``rd_en``, ``rd_win``: read the window's flag word) and of the
    item one stage before it (``load``, ``load_win``: register the flag word)."""
    NWIN = cfg.pool_size ** 2
    return wiring.Signature({"rd_en": Out(1), "rd_win": Out(index_bits(NWIN)),
                             "load": Out(1), "load_win": Out(index_bits(NWIN))})
