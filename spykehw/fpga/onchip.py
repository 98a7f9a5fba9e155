"""On-chip memory need of the classifier, in block RAMs of a device: an estimate before synthesis.

With every weight on chip (``DesignPoint.weights == "on-chip"``), the classifier of a design
point holds, as the RTL builds them (:mod:`spykehw.rtl.classifier`, ``rtl/classifier_layers.py``):

``W2``
    one memory of ``features * G`` words of ``lanes * hidden_weight_bits`` bits,
    ``G = ceil(hidden / lanes)`` (word ``r*G + g`` holds lanes ``g*L ..`` of feature ``r``'s row;
    padding lanes when ``lanes`` does not divide ``hidden``);
``b2``
    ``G`` words of ``lanes * hidden_bias_bits``;
``W3``
    one memory per class, ``hidden`` words of ``output_weight_bits`` each;
``b3``
    a register of ``classes * output_bias_bits`` (no block RAM);
``hidden_acc``
    the hidden accumulators, ``G`` words of ``lanes * hidden_acc_bits`` (working memory, not a
    weight; a register when ``G = 1``).

:func:`bram_blocks` is the number of blocks one memory takes when it is mapped onto one block
configuration (``Device.bram_shapes``, e.g. ECP5 DP16KD 512 x 36 .. 16,384 x 1): the fewest over
the configurations of ``ceil(width / w) * ceil(depth / d)``. :func:`placement` then does what
Yosys' ``memory_libmap`` does on ECP5 with the costs of its mapping libraries: a memory goes to
LUT RAM (TRELLIS_DPR16X4, 16 x 4, cost 4 each) when that costs less than its block RAMs (cost
128 each); so ``b2``, the accumulators and a narrow ``W3`` end in LUT RAM, ``W2`` in block
RAM. Yosys' own choice differs in details: it splits a deep memory into depth chunks of
different configurations (``W2`` of 3630 -> 128 -> 10 at 4 bits: estimated 116 DP16KD, mapped
113), did not use the 512 x 36 configuration for ``W2`` (2 bits: estimated 58, mapped 60), and
puts ``W3`` in block RAM at some widths where this rule says LUT RAM (its cost model also counts
the read multiplexers). Over the 30 MNIST points 3630 -> {128..512} -> 10 at 2..8 bits the
estimate is within -11..+7 blocks of the synthesised count (``reports/design_points_mnist.json``);
the synthesised count (``tools/measure_classifier_bram.py``) is the measurement, this estimate
ranks design points before synthesis.

:func:`choose_design_point` picks among points with a measured accuracy and their blocks
(synthesised or estimated): the fewest blocks among those that fit and reach the target
accuracy, else the most accurate that fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..golden.fixed import accumulator_range, signed_width
from ..golden.formats import ClassifierFormat
from ..golden.options import CONV1
from .devices import Device

__all__ = ["OnChipMemory", "bram_blocks", "placement", "classifier_memories", "classifier_bram",
           "choose_design_point", "DEFAULT_CLASSIFIER_LANES", "YOSYS_LUTRAM"]

DEFAULT_CLASSIFIER_LANES = 32
"""The accelerator's classifier lanes (``spykehw verilog accelerator`` default)."""


YOSYS_LUTRAM = {"ecp5": ((4, 16), 4, 128)}
"""Per family: the LUT RAM cell's ``(width, depth)``, its cost and a block RAM's cost in Yosys'
``memory_libmap`` (``share/lattice/lutrams_trellis.txt``: TRELLIS_DPR16X4, ``cost 4``;
``share/lattice/brams_16kd.txt``: DP16KD, ``cost 128``). iCE40 has no LUT RAM."""


def bram_blocks(width: int, depth: int, device: Device) -> int:
    """Fewest block RAMs of ``device`` holding a ``width`` x ``depth`` memory in one block
    configuration: ``min over (w, d) of ceil(width / w) * ceil(depth / d)``."""
    if width < 1 or depth < 1:
        raise ValueError(f"a memory needs width and depth >= 1, not {width} x {depth}")
    if not device.bram_shapes:
        raise ValueError(f"{device.name}: no block RAM configurations known")
    return min(-(-width // w) * -(-depth // d) for w, d in device.bram_shapes)


def placement(width: int, depth: int, device: Device) -> tuple[str, int]:
    """``("bram", blocks)`` or ``("lutram", 0)``: LUT RAM when its Yosys cost is lower than
    the block RAMs' (:data:`YOSYS_LUTRAM`; a tie stays in block RAM)."""
    blocks = bram_blocks(width, depth, device)
    lut = YOSYS_LUTRAM.get(device.family)
    if lut is not None:
        (lw, ld), lut_cost, bram_cost = lut
        if -(-width // lw) * -(-depth // ld) * lut_cost < blocks * bram_cost:
            return "lutram", 0
    return "bram", blocks


@dataclass(frozen=True)
class OnChipMemory:
    """``copies`` memories of ``depth`` words of ``width`` bits; ``in_bram`` False: a register;
    ``weight`` False: working memory (accumulators), not a parameter."""

    name: str
    width: int
    depth: int
    copies: int = 1
    in_bram: bool = True
    weight: bool = True

    @property
    def bits(self) -> int:
        return self.copies * self.width * self.depth

    def placement(self, device: Device) -> str:
        return placement(self.width, self.depth, device)[0] if self.in_bram else "register"

    def blocks(self, device: Device) -> int:
        return self.copies * placement(self.width, self.depth, device)[1] if self.in_bram else 0


def classifier_memories(fmt: ClassifierFormat, hidden: int, *, features: int = CONV1.features,
                        classes: int = 10, lanes: int = DEFAULT_CLASSIFIER_LANES) -> list[OnChipMemory]:
    """The classifier's memories with ``W2`` on chip (see the module docstring)."""
    groups = -(-hidden // lanes)
    acc_bits = signed_width(*accumulator_range(features, fmt.hidden_weight_bits, fmt.hidden_bias_bits))
    return [
        OnChipMemory("W2", lanes * fmt.hidden_weight_bits, features * groups),
        OnChipMemory("b2", lanes * fmt.hidden_bias_bits, groups, in_bram=groups > 1),
        OnChipMemory("W3", fmt.output_weight_bits, hidden, copies=classes),
        OnChipMemory("b3", classes * fmt.output_bias_bits, 1, in_bram=False),
        OnChipMemory("hidden_acc", lanes * acc_bits, groups, in_bram=groups > 1, weight=False),
    ]


def classifier_bram(fmt: ClassifierFormat, hidden: int, device: Device, **shape: Any) -> dict[str, Any]:
    """Per memory and in total: bits and estimated blocks of ``device``; ``weight_bits`` counts
    the parameters only (``W2`` padding lanes included), ``blocks`` every memory."""
    mems = classifier_memories(fmt, hidden, **shape)
    return {
        "memories": {m.name: {"width": m.width, "depth": m.depth, "copies": m.copies, "bits": m.bits,
                              "blocks": m.blocks(device), "placement": m.placement(device),
                              "weight": m.weight}
                     for m in mems},
        "weight_bits": sum(m.bits for m in mems if m.weight),
        "blocks": sum(m.blocks(device) for m in mems),
    }


def choose_design_point(points: list[dict[str, Any]], target_acc_pct: float, *, margin_pct: float = 0.0,
                        post_training_only: bool = False) -> tuple[dict[str, Any] | None, str]:
    """``(point, why)`` from ``points`` (dicts with ``acc_pct``, ``blocks_total``, ``fits``,
    ``qat_epochs``): the fewest blocks that fit with ``acc_pct >= target_acc_pct + margin_pct``
    (ties: the more accurate), else the most accurate point that fits (ties: fewer blocks), else
    ``None``. ``margin_pct``: the uncertainty of a measured accuracy (one seed on a finite test
    set); ``post_training_only``: leave out points that need quantization-aware training (the
    main flow, ``spykehw run`` -> ``export``, quantizes after training)."""
    pool = [p for p in points if not (post_training_only and p.get("qat_epochs"))]
    fitting = [p for p in pool if p["fits"]]
    need = target_acc_pct + margin_pct
    meeting = [p for p in fitting if p["acc_pct"] >= need]
    what = "post-training-quantized " if post_training_only else ""
    if meeting:
        best = min(meeting, key=lambda p: (p["blocks_total"], -p["acc_pct"]))
        return best, (f"fewest blocks among the {len(meeting)} fitting {what}points at >= "
                      f"{target_acc_pct}%" + (f" + {margin_pct:.2f} points of margin" if margin_pct else ""))
    if fitting:
        best = max(fitting, key=lambda p: (p["acc_pct"], -p["blocks_total"]))
        return best, (f"no fitting {what}point reaches {need:.2f}%: the most accurate fitting "
                      f"point misses it by {need - best['acc_pct']:.2f} points")
    return None, "no point fits"
