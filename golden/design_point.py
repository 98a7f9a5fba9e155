"""One design point: what fixes a generated accelerator, its vectors, its export and its reports.

A design point is the network shape (Conv1 layer options, hidden size, classes, time steps), the
:class:`~spykehw.golden.formats.NumberFormats`, and the hardware choices (map lanes of the conv
core, hidden lanes of the classifier, where the classifier's ``W2`` lives). It is a pure
description (no Amaranth), so the export, the golden model, the RTL generators and the reports
all take the same object; :func:`spykehw.rtl.design.conv_core_config` and
:func:`spykehw.rtl.design.classifier_config` turn it into the blocks' configs.

:meth:`DesignPoint.digest` hashes the canonical JSON of :meth:`DesignPoint.to_dict` (sorted
keys, no whitespace); :attr:`DesignPoint.id32` is its first 32 bits, which the accelerator
reports in a read-only register so a host can check that an export belongs to a bitstream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from dataclasses import dataclass, field
from typing import Any

from .formats import DEFAULT_PRESET, NumberFormats, preset
from .options import CONV1, TIME_STEPS, ConvOptions, OptionsError

__all__ = ["DesignPoint", "WEIGHT_PLACEMENTS", "DesignPointError"]

WEIGHT_PLACEMENTS = ("on-chip", "external")
"""``on-chip``: every memory in block RAM; ``external``: ``W2`` read over an AXI4 master."""


class DesignPointError(OptionsError):
    """A design point that cannot be built (names the field)."""


def _default_formats() -> NumberFormats:
    return preset(DEFAULT_PRESET)


@dataclass(frozen=True)
class DesignPoint:
    """Network shape + number formats + hardware choices (see the module docstring).

    Parameters
    ----------
    formats : NumberFormats
        The number formats of the integer model and the RTL.
    conv : ConvOptions
        The conv layer (Conv1 by default): channels, input size, maps, kernel, threshold.
    hidden, classes : int
        Classifier shape ``F -> hidden -> classes`` with ``F = conv.features``.
    steps : int
        Time steps per image.
    conv_lanes : int
        Maps updated per cycle by the conv core; divides ``conv.maps``.
    classifier_lanes : int
        Hidden accumulators updated per cycle by the classifier.
    weights : str
        ``"on-chip"`` or ``"external"`` (:data:`WEIGHT_PLACEMENTS`).
    """

    formats: NumberFormats = field(default_factory=_default_formats)
    conv: ConvOptions = CONV1
    hidden: int = 1000
    classes: int = 10
    steps: int = TIME_STEPS
    conv_lanes: int = 30
    classifier_lanes: int = 64
    weights: str = "on-chip"

    def __post_init__(self) -> None:
        if not isinstance(self.formats, NumberFormats):
            raise TypeError(f"formats must be a NumberFormats, not {self.formats!r}")
        if not isinstance(self.conv, ConvOptions):
            raise TypeError(f"conv must be a ConvOptions, not {self.conv!r}")
        for name in ("hidden", "classes", "steps", "conv_lanes", "classifier_lanes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise DesignPointError(f"{name}: must be an integer, not {value!r}")
            object.__setattr__(self, name, operator.index(value))
            if value < 1:
                raise DesignPointError(f"{name}: must be >= 1, not {value}")
        if self.conv.maps % self.conv_lanes:
            raise DesignPointError(f"conv_lanes: must divide the {self.conv.maps} maps, not {self.conv_lanes}")
        if self.classifier_lanes > self.hidden:
            raise DesignPointError(f"classifier_lanes: must be <= hidden ({self.hidden}), not "
                                   f"{self.classifier_lanes}")
        if self.weights not in WEIGHT_PLACEMENTS:
            raise DesignPointError(f"weights: must be one of {', '.join(WEIGHT_PLACEMENTS)}, not {self.weights!r}")

    @property
    def features(self) -> int:
        return self.conv.features

    def to_dict(self) -> dict[str, Any]:
        return {
            "formats": self.formats.to_dict(),
            "conv": dataclasses.asdict(self.conv),
            "hidden": self.hidden,
            "classes": self.classes,
            "steps": self.steps,
            "conv_lanes": self.conv_lanes,
            "classifier_lanes": self.classifier_lanes,
            "weights": self.weights,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DesignPoint":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DesignPointError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        kwargs = dict(d)
        if "formats" in kwargs:
            kwargs["formats"] = NumberFormats.from_dict(kwargs["formats"])
        if "conv" in kwargs:
            kwargs["conv"] = ConvOptions(**kwargs["conv"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "DesignPoint":
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def id32(self) -> int:
        """The first 32 bits of :meth:`digest`: the accelerator's ID register."""
        return int(self.digest()[:8], 16)
