"""Every memory the hardware holds, as described by a design point, and its words.

Why the specs come from the :class:`~spykehw.golden.design_point.DesignPoint` alone: the loader
recomputes them from the design point recorded in ``memory_map.json`` and refuses a map whose
memories differ, so depth, width, packing and number format can never drift from what the
blocks built from that design point consume. The words themselves are built by
:mod:`spykehw.rtl.packing`, the module the co-simulation harnesses use too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..golden.classifier_int import IntClassifier
from ..golden.design_point import DesignPoint
from ..golden.exp_lut import exp_lut
from ..rtl.packing import (
    LOAD_TARGETS,
    conv_weight_rows,
    conv_weights_from_rows,
    from_hidden_rows,
    hidden_rows,
    w2_row_stride,
    word_bytes,
)

__all__ = ["MemorySpec", "memory_specs", "memory_rows", "Decoded", "decode_rows", "conv_threshold"]


@dataclass(frozen=True)
class MemorySpec:
    """One memory: ``depth`` words of ``lanes`` x ``lane_bits`` bits, and where its words go.

    ``bus`` names the port that consumes the words (``none`` for a constant of the generated
    RTL, exported so that a host can check it); ``target`` is the classifier load bus's
    ``sel`` (:data:`~spykehw.rtl.packing.LOAD_TARGETS`) when the words go through it.
    ``value = integer / scale``. ``row_words``: for ``W2``, the words of one feature's row
    (one memory-port request; one burst of ``row_words * word_bytes`` bytes from ``weights.bin``);
    ``row_stride``: the bytes between those rows in ``weights.bin`` (the row's bytes rounded up to
    a power of two when ``W2`` is external, where the accelerator's AXI4 master reads it; the
    row's own bytes otherwise).
    """

    name: str
    depth: int
    lanes: int
    lane_bits: int
    signed: bool
    fraction_bits: int
    scale: int
    bus: str
    target: str | None
    layout: str
    row_words: int | None = None
    row_stride: int | None = None

    @property
    def image_bytes(self) -> int:
        """Bytes this memory takes in ``weights.bin`` (rows at ``row_stride``)."""
        if self.row_words is None or self.row_stride is None:
            return self.depth * self.word_bytes
        return self.depth // self.row_words * self.row_stride

    @property
    def word_bits(self) -> int:
        return self.lanes * self.lane_bits

    @property
    def word_bytes(self) -> int:
        return -(-self.word_bits // 8)

    def to_dict(self) -> dict[str, Any]:
        """The map entry's description part (the writer adds offsets, sizes and hashes)."""
        sign = ", two's complement" if self.signed else ""
        return {
            "name": self.name, "depth": self.depth, "word_bits": self.word_bits,
            "word_bytes": self.word_bytes, "lanes": self.lanes, "lane_bits": self.lane_bits,
            "packing": f"lane k in bits k*{self.lane_bits} .. k*{self.lane_bits}+{self.lane_bits - 1}"
                       f"{sign}; padding lanes 0",
            "number_format": {"signed": self.signed, "bits": self.lane_bits,
                              "fraction_bits": self.fraction_bits, "scale": self.scale},
            "bus": self.bus, "target": self.target,
            "target_code": None if self.target is None else LOAD_TARGETS.index(self.target),
            "layout": self.layout,
            "row_words": self.row_words,
            "row_stride": self.row_stride,
        }


def conv_threshold(point: DesignPoint) -> int:
    """The conv core's firing threshold in potential units (a constant of the RTL)."""
    return point.formats.threshold_int(point.conv.threshold)


def memory_specs(point: DesignPoint) -> list[MemorySpec]:
    """The memories of ``point`` in ``weights.bin`` order."""
    fmt, conv = point.formats, point.conv
    B = fmt.conv.weight_bits
    L, G = point.conv_lanes, conv.maps // point.conv_lanes
    cl = point.classifier_lanes
    G2 = -(-point.hidden // cl)
    c, s = fmt.classifier, fmt.softmax
    C, K = conv.in_channels, conv.kernel
    on_chip = point.weights == "on-chip"
    w2_word_bits = cl * c.hidden_weight_bits
    w2_stride = G2 * word_bytes(w2_word_bits) if on_chip else w2_row_stride(G2, w2_word_bits)
    return [
        MemorySpec("conv1_weights", C * K * K * G, L, B, False, B, 1 << B, "conv_core.weights", None,
                   f"word index*{G} + g holds W[g*{L} + l, c, kr, kc] in lane l, index = c*{K * K} + "
                   f"kr*{K} + kc (the weight bus's w_data/r_data)"),
        MemorySpec("conv1_threshold", 1, 1, fmt.potential_bits(C, K, 1), False, B, 1 << B, "none",
                   None, "one word: the conv core's firing threshold round_half_up(threshold * 2^B) "
                   "(a constant of the generated RTL, for checking)"),
        MemorySpec("W2", point.features * G2, cl, c.hidden_weight_bits, True, c.hidden_weight_frac,
                   1 << c.hidden_weight_frac,
                   "classifier.load" if on_chip else "classifier.w2 (row memory port)",
                   "W2" if on_chip else None,
                   f"word r*{G2} + g holds W2[r, g*{cl} + l] in lane l (lanes >= {point.hidden} are "
                   f"padding); row r = words r*{G2} .. r*{G2}+{G2 - 1}, what the memory port returns "
                   f"for feature r", row_words=G2, row_stride=w2_stride),
        MemorySpec("b2", G2, cl, c.hidden_bias_bits, True, c.hidden_weight_frac,
                   1 << c.hidden_weight_frac, "classifier.load", "B2",
                   f"word g holds b2[g*{cl} + l] in lane l"),
        MemorySpec("W3", point.hidden, point.classes, c.output_weight_bits, True, c.output_weight_frac,
                   1 << c.output_weight_frac, "classifier.load", "W3",
                   "word h holds W3[h, k] in lane k (class k)"),
        MemorySpec("b3", 1, point.classes, c.output_bias_bits, True, c.output_weight_frac,
                   1 << c.output_weight_frac, "classifier.load", "B3",
                   "one word (load address 0): b3[k] in lane k"),
        MemorySpec("exp_lut", s.exp_lut_entries, 1, s.exp_lut_bits, False, s.exp_lut_bits,
                   (1 << s.exp_lut_bits) - 1, "none", None,
                   "word d = EXP_LUT[d] = round_half_up((2^bits - 1) * exp(-d)) (the softmax unit's "
                   "ROM, a constant of the generated RTL, for checking)"),
    ]


def memory_rows(point: DesignPoint, conv_weights: np.ndarray, q: IntClassifier) -> dict[str, np.ndarray]:
    """``{name: (depth, lanes) int64}``: the words of every memory as lane values."""
    return {
        "conv1_weights": conv_weight_rows(conv_weights, point.conv_lanes),
        "conv1_threshold": np.array([[conv_threshold(point)]], np.int64),
        "W2": hidden_rows(q.W2q, point.classifier_lanes),
        "b2": hidden_rows(q.b2q, point.classifier_lanes),
        "W3": np.asarray(q.W3q, np.int64),
        "b3": np.asarray(q.b3q, np.int64)[None, :],
        "exp_lut": exp_lut(point.formats.softmax).astype(np.int64)[:, None],
    }


@dataclass(frozen=True, eq=False)
class Decoded:
    """The integer model's parameters read back from the memories."""

    conv_weights: np.ndarray     # (M, C, K, K) int64
    threshold: int
    classifier: IntClassifier
    exp_lut: np.ndarray          # (entries,) int64


def decode_rows(point: DesignPoint, rows: dict[str, np.ndarray]) -> Decoded:
    """The inverse of :func:`memory_rows` (padding lanes must be 0: a
    :class:`~spykehw.rtl.packing.PackingError` names the memory otherwise)."""
    conv = point.conv
    shape = (conv.maps, conv.in_channels, conv.kernel, conv.kernel)
    W2q = from_hidden_rows(rows["W2"], point.hidden, "W2")
    b2q = from_hidden_rows(rows["b2"], point.hidden, "b2")[0]
    q = IntClassifier(W2q, b2q, np.ascontiguousarray(rows["W3"]), rows["b3"][0].copy(), point.formats)
    return Decoded(conv_weights_from_rows(rows["conv1_weights"], shape), int(rows["conv1_threshold"][0, 0]),
                   q, rows["exp_lut"][:, 0].copy())
