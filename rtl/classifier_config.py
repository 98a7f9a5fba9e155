"""What fixes a classifier (:class:`ClassifierConfig`: shape, number formats, lanes, where ``W2``
lives), its load bus and tap signatures; shared by the classifier's layers and the harnesses.
See :mod:`spykehw.rtl.classifier` for what the classifier computes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from amaranth import signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import Out

from ..golden.errors import SpykehwError
from ..golden.fixed import accumulator_range, signed_width
from ..golden.formats import NumberFormats
from .layouts import feature_layout, layout_fields
from .softmax import softmax_output_layout
from .weight_memory import WriteBusSignature

__all__ = [
    "ClassifierError",
    "ClassifierConfig",
    "LoadTarget",
    "LoadBusSignature",
    "TapSignature",
    "hidden_tap_layout",
    "logit_tap_layout",
    "MAX_LANES",
]

MAX_LANES = 1024


class ClassifierError(SpykehwError, ValueError):
    """A classifier configuration that cannot be built (names the parameter)."""


class LoadTarget(enum.Enum, shape=2):
    """``load.sel``: which on-chip memory a load writes."""
    W2 = 0      # word r*G + g: lanes of row r (only with w2_on_chip)
    B2 = 1      # word g: lanes g*L .. g*L+L-1 of b2
    W3 = 2      # word h: W3[h, 0..C-1]
    B3 = 3      # (addr ignored) b3[0..C-1]


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that fixes a classifier: shape, number formats, lanes, where ``W2`` lives.

    Parameters
    ----------
    features, hidden, classes : int
        ``F >= 1``, ``H >= 2``, ``C`` in 2 .. 4096 (the softmax unit's range).
    formats : NumberFormats
        ``classifier`` (weight and bias formats) and ``softmax``.
    lanes : int
        ``L``, hidden accumulators updated per cycle (= weights per memory word), 1 .. 1024 and
        at most ``H``.
    w2_on_chip : bool
        Keep ``W2`` in an on-chip :class:`RowMemory` (loaded through ``load``) instead of
        exposing the memory port.
    """

    features: int
    hidden: int
    classes: int
    formats: NumberFormats
    lanes: int = 64
    w2_on_chip: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.formats, NumberFormats):
            raise TypeError(f"formats must be a NumberFormats, not {self.formats!r}")
        for name in ("features", "hidden", "classes", "lanes"):
            value = getattr(self, name)
            if isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            object.__setattr__(self, name, operator.index(value))
        object.__setattr__(self, "w2_on_chip", bool(self.w2_on_chip))
        if self.features < 1:
            raise ClassifierError(f"features: must be >= 1, not {self.features}")
        if self.hidden < 2:
            raise ClassifierError(f"hidden: must be >= 2, not {self.hidden}")
        if not 2 <= self.classes <= 4096:
            raise ClassifierError(f"classes: must be in 2..4096, not {self.classes}")
        if not 1 <= self.lanes <= min(MAX_LANES, self.hidden):
            raise ClassifierError(f"lanes: must be in 1..{min(MAX_LANES, self.hidden)} (at most the "
                                  f"hidden units), not {self.lanes}")
        if max(self.hidden_acc_bits, self.output_acc_bits) > 63:
            raise ClassifierError("formats: accumulators wider than 63 bits are not supported "
                                  "(the integer model's limit)")
        if not 2 <= self.logit_bits <= 64:
            raise ClassifierError(f"formats: logits of {self.logit_bits} bits are outside the "
                                  "softmax unit's 2..64")

    # --- shape -----------------------------------------------------------------------------

    @property
    def groups(self) -> int:
        """``G = ceil(H / L)``: words per ``W2`` row, and accumulator words."""
        return -(-self.hidden // self.lanes)

    @property
    def padding_lanes(self) -> int:
        return self.groups * self.lanes - self.hidden

    # --- number formats ---------------------------------------------------------------------

    @property
    def hidden_weight_bits(self) -> int:
        return self.formats.classifier.hidden_weight_bits

    @property
    def hidden_bias_bits(self) -> int:
        return self.formats.classifier.hidden_bias_bits

    @property
    def output_weight_bits(self) -> int:
        return self.formats.classifier.output_weight_bits

    @property
    def output_bias_bits(self) -> int:
        return self.formats.classifier.output_bias_bits

    @property
    def output_frac(self) -> int:
        return self.formats.classifier.output_weight_frac

    @property
    def hidden_acc_range(self) -> tuple[int, int]:
        return accumulator_range(self.features, self.hidden_weight_bits, self.hidden_bias_bits)

    @property
    def hidden_acc_bits(self) -> int:
        return signed_width(*self.hidden_acc_range)

    @property
    def output_acc_range(self) -> tuple[int, int]:
        return accumulator_range(self.hidden, self.output_weight_bits, self.output_bias_bits)

    @property
    def output_acc_bits(self) -> int:
        return signed_width(*self.output_acc_range)

    @property
    def logit_bits(self) -> int:
        lo, hi = self.output_acc_range
        return signed_width(lo >> self.output_frac, hi >> self.output_frac)

    # --- memories and the load bus ----------------------------------------------------------

    @property
    def w2_word_bits(self) -> int:
        """Bits of one memory-port word: ``L`` hidden weights."""
        return self.lanes * self.hidden_weight_bits

    @property
    def bytes_per_row(self) -> float:
        """Bytes one active feature fetches (padding lanes included: they cross the port)."""
        return self.groups * self.w2_word_bits / 8

    def load_depth(self, target: LoadTarget) -> int:
        return {LoadTarget.W2: self.features * self.groups, LoadTarget.B2: self.groups,
                LoadTarget.W3: self.hidden, LoadTarget.B3: 1}[target]

    def load_word_bits(self, target: LoadTarget) -> int:
        return {LoadTarget.W2: self.w2_word_bits,
                LoadTarget.B2: self.lanes * self.hidden_bias_bits,
                LoadTarget.W3: self.classes * self.output_weight_bits,
                LoadTarget.B3: self.classes * self.output_bias_bits}[target]

    def load_targets(self) -> tuple[LoadTarget, ...]:
        return tuple(t for t in LoadTarget if t is not LoadTarget.W2 or self.w2_on_chip)

    @property
    def load_addr_depth(self) -> int:
        return max(self.load_depth(t) for t in self.load_targets())

    @property
    def load_data_bits(self) -> int:
        return max(self.load_word_bits(t) for t in self.load_targets())

    def memory_bits(self) -> dict[str, int]:
        G, L = self.groups, self.lanes
        out = {
            "hidden_acc": G * L * self.hidden_acc_bits,
            "b2": G * L * self.hidden_bias_bits,
            "hidden_bits": 2 * G * L,
            "W3": self.hidden * self.classes * self.output_weight_bits,
        }
        if self.w2_on_chip:
            out["W2"] = self.features * G * self.w2_word_bits
        return out

    # --- timing model ------------------------------------------------------------------------

    @property
    def softmax_cycles(self) -> int:
        return self.classes * (self.formats.softmax.softmax_bits + 3) + 2

    def cycles_hidden(self, active: int, latency: int = 3) -> int:
        """Cycles of stage A for an image with ``active`` features, its indices waiting at the
        input, the memory taking a request at once and accepting the first response word
        ``latency`` cycles after it (then one word per cycle): one cycle to take the first index
        and one to offer it, ``latency``, the ``active * G`` words, the last word's write, one
        cycle to see that all is in, the ``G``-cycle scan and its last write. An image without
        active features: its marker, the check, the scan and its last write."""
        if not active:
            return self.groups + 3
        return active * self.groups + latency + 4 + self.groups

    def to_dict(self) -> dict[str, Any]:
        """Parameters for the JSON beside the Verilog (and checks against vector files)."""
        return {
            "features": self.features, "hidden": self.hidden, "classes": self.classes,
            "lanes": self.lanes, "w2_on_chip": self.w2_on_chip, "formats": self.formats.name,
            "groups": self.groups, "padding_lanes": self.padding_lanes,
            "hidden_weight_bits": self.hidden_weight_bits, "hidden_bias_bits": self.hidden_bias_bits,
            "output_weight_bits": self.output_weight_bits, "output_bias_bits": self.output_bias_bits,
            "output_frac": self.output_frac,
            "hidden_acc_bits": self.hidden_acc_bits, "output_acc_bits": self.output_acc_bits,
            "logit_bits": self.logit_bits,
            "w2_word_bits": self.w2_word_bits, "bytes_per_row": self.bytes_per_row,
            "load": {t.name: {"code": t.value, "depth": self.load_depth(t),
                              "word_bits": self.load_word_bits(t)} for t in self.load_targets()},
            "memory_bits": self.memory_bits(),
            "softmax_cycles": self.softmax_cycles,
            "layouts": {
                "feature": layout_fields(feature_layout(self.features)),
                "hidden_tap": layout_fields(hidden_tap_layout(self.lanes)),
                "logit_tap": [dict(f, signed=f["name"] == "logit")
                              for f in layout_fields(logit_tap_layout(self.logit_bits))],
                "output": layout_fields(softmax_output_layout(self.classes,
                                                              self.formats.softmax.softmax_bits)),
            },
        }


class LoadBusSignature(WriteBusSignature):
    """The parameter load bus, driven by the host: ``sel`` (:class:`LoadTarget`), ``addr``,
    ``data``, ``en``. Writes always succeed, one word per cycle."""

    def __init__(self, depth: int, data_bits: int) -> None:
        super().__init__(depth, data_bits, select=LoadTarget)

    def __repr__(self):
        depth, data_bits, _ = self._key
        return f"LoadBusSignature(depth={depth}, data_bits={data_bits})"


class TapSignature(wiring.Signature):
    """An observation port: ``valid`` and ``payload``, no ``ready`` (it never stalls)."""

    def __init__(self, layout: data.StructLayout) -> None:
        self._layout = layout
        super().__init__({"valid": Out(1), "payload": Out(layout)})

    def __eq__(self, other):
        return type(other) is type(self) and other._layout == self._layout

    def __repr__(self):
        return f"TapSignature({self._layout!r})"


def hidden_tap_layout(lanes: int) -> data.StructLayout:
    return data.StructLayout({"bits": unsigned(lanes), "last": unsigned(1)})


def logit_tap_layout(logit_bits: int) -> data.StructLayout:
    return data.StructLayout({"logit": signed(logit_bits), "last": unsigned(1)})


