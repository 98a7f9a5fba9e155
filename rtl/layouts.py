"""Payload layouts of the conv core's streams and weight bus, and their pure-Python packing.

The layouts depend on the layer's shape, so they are built by functions from plain integers
(rather than fixed ``data.Struct`` classes). The same functions serve the RTL, the Amaranth
simulator tests and the cocotb testbenches (which rebuild them from the ``layouts`` entry of the
design's JSON description), so the bit positions are defined once.

As everywhere in ``lib.data``, the first field sits in the least significant bits of the flat
Verilog port.

Layouts
-------
``token_layout(C, S)`` (input spike token)
    ``c``, ``y``, ``x``: an input spike of channel ``c`` at row ``y``, column ``x``;
    ``step_end``: 1 = end-of-step marker (``c``, ``y``, ``x`` are then ignored).
``spike_layout(M, H, T)`` (output conv spike)
    ``m``, ``u``, ``v``: a spike of map ``m`` at output position ``(u, v)``; ``t``: its step;
    ``step_end``: 1 = end-of-step marker of step ``t`` (``m``, ``u``, ``v`` are 0);
    ``last``: 1 on the end-of-step marker of the image's last step;
    ``p`` (only with ``potential_bits``, above the others): the spike's potential (0 on markers).
``feature_layout(F)`` (output pool feature)
    ``index``: a feature index ``m*P*P + i*P + j`` that became 1; ``last``: 1 = end-of-image
    marker (``index`` is then 0).
"""

from __future__ import annotations

from typing import Any, Mapping

from amaranth import unsigned
from amaranth.lib import data
from amaranth.utils import ceil_log2

__all__ = [
    "index_bits",
    "token_layout",
    "spike_layout",
    "feature_layout",
    "layout_fields",
    "pack",
    "unpack",
]


def index_bits(n: int) -> int:
    """Unsigned width of an index ``0 .. n-1`` (at least 1 bit, so that every field exists)."""
    return max(1, ceil_log2(max(1, n)))


def token_layout(channels: int, in_size: int) -> data.StructLayout:
    return data.StructLayout({
        "c": unsigned(index_bits(channels)),
        "y": unsigned(index_bits(in_size)),
        "x": unsigned(index_bits(in_size)),
        "step_end": unsigned(1),
    })


def spike_layout(maps: int, out_size: int, steps: int, potential_bits: int = 0) -> data.StructLayout:
    fields = {
        "m": unsigned(index_bits(maps)),
        "u": unsigned(index_bits(out_size)),
        "v": unsigned(index_bits(out_size)),
        "t": unsigned(index_bits(steps)),
        "step_end": unsigned(1),
        "last": unsigned(1),
    }
    if potential_bits:
        fields["p"] = unsigned(potential_bits)
    return data.StructLayout(fields)


def feature_layout(features: int) -> data.StructLayout:
    return data.StructLayout({
        "index": unsigned(index_bits(features)),
        "last": unsigned(1),
    })


def layout_fields(layout: data.StructLayout) -> list[dict[str, int | str]]:
    """``[{name, offset, width}]`` of a flat struct layout (JSON-friendly; all fields unsigned)."""
    return [{"name": name, "offset": f.offset, "width": f.width} for name, f in layout]


def _fields(layout: data.StructLayout | list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return layout_fields(layout) if isinstance(layout, data.StructLayout) else list(layout)


def pack(layout: data.StructLayout | list[Mapping[str, Any]], values: Mapping[str, int]) -> int:
    """The flat bit pattern of ``values`` (missing fields are 0); raises on a value too wide."""
    raw = 0
    fields = _fields(layout)
    names = {str(f["name"]) for f in fields}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} (fields: {sorted(names)})")
    for f in fields:
        v = int(values.get(str(f["name"]), 0))
        if not 0 <= v < (1 << int(f["width"])):
            raise ValueError(f"field {f['name']}: {v} does not fit {f['width']} unsigned bits")
        raw |= v << int(f["offset"])
    return raw


def unpack(layout: data.StructLayout | list[Mapping[str, Any]], raw: int) -> dict[str, int]:
    """The fields of a flat bit pattern."""
    return {str(f["name"]): (int(raw) >> int(f["offset"])) & ((1 << int(f["width"])) - 1)
            for f in _fields(layout)}
